package netbus

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/xbus-dev/xbus/bus"
	"github.com/xbus-dev/xbus/mailbox"
)

// The test binary doubles as the peer process: with NETBUS_TEST_HELPER set,
// TestMain runs a node instead of the tests (the os/exec helper-process
// pattern).
func TestMain(m *testing.M) {
	if mode := os.Getenv("NETBUS_TEST_HELPER"); mode != "" {
		os.Exit(helperMain(mode))
	}
	os.Exit(m.Run())
}

// Ordered is what the "sink" actor checks: Seq must count up per Sender.
type Ordered struct {
	Sender string
	Seq    int
}

// Check asks the sink how many messages of Sender it got in order.
type Check struct{ Sender string }

func registerTestTypes(ts *bus.Types) {
	ts.Register("netbus.Payload", Payload{})
	ts.Register("netbus.Ordered", Ordered{})
	ts.Register("netbus.Check", Check{})
	ts.Register("bus.Ref", bus.Ref{})
}

// helperMain runs a node on a bus with netbus listening on
// NETBUS_TEST_LISTEN, prints "ADDR <address>" and serves until stdin closes.
func helperMain(mode string) int {
	types := bus.NewTypes()
	registerTestTypes(types)
	tr := New(Config{Listen: []string{os.Getenv("NETBUS_TEST_LISTEN")}, Secret: []byte(os.Getenv("NETBUS_TEST_SECRET")), PoolSize: 1})
	b, err := bus.New(bus.WithName("helper"), bus.WithTransport(tr), bus.WithTypes(types),
		bus.WithLogger(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	registerServerActors(b)
	fmt.Printf("ADDR %s\n", tr.Addrs()[0])
	io.Copy(io.Discard, os.Stdin)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	b.Close(ctx)
	return 0
}

// registerServerActors registers echo, hold (never answers), held (how many
// asks hold took), fail (answers with bus.ErrMailboxFull) and sink (checks
// per-sender order).
func registerServerActors(b *bus.Bus) {
	b.Register("echo", bus.ActorFunc(func(c *bus.Context, msg any) error {
		if !c.IsAsk() {
			return nil // lifecycle messages
		}
		return c.Reply(msg)
	}))
	b.Register("whoami", bus.ActorFunc(func(c *bus.Context, msg any) error {
		if !c.IsAsk() {
			return nil
		}
		return c.Reply(c.Self())
	}))
	var held atomic.Int64
	b.Register("hold", bus.ActorFunc(func(c *bus.Context, msg any) error {
		if c.IsAsk() {
			c.Promise() // answered never: the asker waits until the link dies
			held.Add(1)
		}
		return nil
	}))
	b.Register("held", bus.ActorFunc(func(c *bus.Context, msg any) error {
		if !c.IsAsk() {
			return nil
		}
		return c.Reply(int(held.Load()))
	}))
	b.Register("fail", bus.ActorFunc(func(c *bus.Context, msg any) error {
		if c.IsAsk() {
			c.ReplyError(fmt.Errorf("remote says: %w", bus.ErrMailboxFull))
		}
		return nil
	}))
	var mu sync.Mutex
	next, bad := map[string]int{}, map[string]int{}
	b.Register("sink", bus.ActorFunc(func(c *bus.Context, msg any) error {
		mu.Lock()
		defer mu.Unlock()
		switch m := msg.(type) {
		case Ordered:
			if m.Seq != next[m.Sender] {
				bad[m.Sender]++
			}
			next[m.Sender] = m.Seq + 1
		case Check:
			if bad[m.Sender] > 0 {
				return c.Reply(-bad[m.Sender])
			}
			return c.Reply(next[m.Sender])
		}
		return nil
	}), bus.WithMailbox(mailbox.Options{Capacity: 1 << 12})) // room for every tell of the tests: the reader refuses what a full mailbox cannot take
}

type helperProc struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	addr  string
}

func startHelper(t *testing.T, listen, secret string) *helperProc {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "NETBUS_TEST_HELPER=server", "NETBUS_TEST_LISTEN="+listen, "NETBUS_TEST_SECRET="+secret)
	cmd.Stderr = os.Stderr
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &helperProc{cmd: cmd, stdin: stdin}
	t.Cleanup(func() {
		stdin.Close()
		cmd.Process.Kill()
		cmd.Wait()
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "ADDR ") {
		t.Fatalf("helper said %q: %v", line, err)
	}
	p.addr = strings.TrimSpace(strings.TrimPrefix(line, "ADDR "))
	return p
}

// clientBus starts a bus with a netbus transport linked to addr, and waits
// until the peer's names are known.
func clientBus(t *testing.T, addr string, cfg Config) (*bus.Bus, *Transport) {
	t.Helper()
	types := bus.NewTypes()
	registerTestTypes(types)
	tr := New(cfg)
	b, err := bus.New(bus.WithName("client"), bus.WithTransport(tr), bus.WithTypes(types),
		bus.WithLogger(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := tr.Dial(ctx, addr); err != nil {
		t.Fatal(err)
	}
	for {
		_, err := b.Ask(ctx, "echo", "ping")
		if err == nil {
			break
		}
		if !errors.Is(err, bus.ErrNoRoute) || ctx.Err() != nil {
			t.Fatalf("waiting for the peer's names: %v", err)
		}
		time.Sleep(time.Millisecond)
	}
	return b, tr
}

// Two processes, each with its own bus: asks by name, remote errors, order
// of tells from several senders over a pool.
func TestProcessBusOverNetbus(t *testing.T) {
	network(t, func(t *testing.T, listen string) {
		before := runtime.NumGoroutine()
		h := startHelper(t, listen, "s3cret")
		b, _ := clientBus(t, h.addr, Config{Secret: []byte("s3cret"), PoolSize: 3})
		ctx := context.Background()
		got, err := bus.AskAs[Payload](ctx, b, "echo", Payload{Seq: 1, Data: []byte("x")})
		if err != nil || got.Seq != 1 || string(got.Data) != "x" {
			t.Fatalf("echo: %+v %v", got, err)
		}
		// By Ref: the peer's actor tells us its Ref, and we ask it by that.
		ref, err := bus.AskAs[bus.Ref](ctx, b, "whoami", "")
		if err != nil || ref.Node == b.NodeID() || ref.Name != "whoami" || ref.ID == 0 {
			t.Fatalf("whoami: %v %v", ref, err)
		}
		if again, err := bus.AskAs[bus.Ref](ctx, b, ref, "by ref"); err != nil || again != ref {
			t.Fatalf("ask by Ref %v: %v %v", ref, again, err)
		}
		if _, err := b.Ask(ctx, "fail", "x"); !errors.Is(err, bus.ErrMailboxFull) {
			t.Fatalf("remote error %v does not match bus.ErrMailboxFull", err)
		}
		const senders, n = 4, 500
		var wg sync.WaitGroup
		for s := range senders {
			name := fmt.Sprintf("s%d", s)
			wg.Go(func() {
				// Each sender is an actor, so its messages carry its Ref and
				// take one connection of the pool.
				done := make(chan error, 1)
				b.Register(name, bus.ActorFunc(func(c *bus.Context, msg any) error {
					if msg != "go" {
						return nil
					}
					for i := range n {
						if err := c.Tell("sink", Ordered{Sender: name, Seq: i}); err != nil {
							done <- err
							return nil
						}
					}
					done <- nil
					return nil
				}))
				b.Tell(name, "go")
				if err := <-done; err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		for s := range senders {
			name := fmt.Sprintf("s%d", s)
			deadline := time.Now().Add(30 * time.Second)
			for {
				got, err := bus.AskAs[int](ctx, b, "sink", Check{Sender: name})
				if err != nil {
					t.Fatal(err)
				}
				if got < 0 {
					t.Fatalf("%s: %d messages out of order", name, -got)
				}
				if got == n {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("%s: %d of %d arrived", name, got, n)
				}
				time.Sleep(5 * time.Millisecond)
			}
		}
		closeCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		if err := b.Close(closeCtx); err != nil {
			t.Fatal(err)
		}
		checkGoroutines(t, before)
	})
}

// SIGKILL of the peer mid-stream fails every ask in flight at once with
// bus.ErrPeerGone, long before the asks' deadline, and leaves no goroutine.
func TestPeerKilledFailsAsks(t *testing.T) {
	network(t, func(t *testing.T, listen string) {
		before := runtime.NumGoroutine()
		h := startHelper(t, listen, "")
		b, _ := clientBus(t, h.addr, Config{})
		const asks = 50
		deadline := 2 * time.Minute
		ctx, cancel := context.WithTimeout(context.Background(), deadline)
		defer cancel()
		errs := make(chan error, asks)
		for range asks {
			go func() {
				_, err := b.Ask(ctx, "hold", Payload{Data: make([]byte, 100)})
				errs <- err
			}()
		}
		// A stream of tells keeps the link busy while the peer dies.
		streamDone := make(chan struct{})
		go func() {
			defer close(streamDone)
			for i := 0; ; i++ {
				if err := b.Tell("sink", Ordered{Sender: "stream", Seq: i}); err != nil {
					return
				}
				if i%64 == 0 {
					time.Sleep(time.Millisecond)
				}
			}
		}()
		// Every hold is in flight before the kill: an ask made after the
		// peer's names went with its link would rightly fail with
		// bus.ErrNoRoute, which is not what this test is about.
		for {
			n, err := bus.AskAs[int](ctx, b, "held", "count")
			if err != nil {
				t.Fatal(err)
			}
			if n == asks {
				break
			}
			time.Sleep(time.Millisecond)
		}
		killed := time.Now()
		h.cmd.Process.Signal(syscall.SIGKILL)
		var slowest time.Duration
		for range asks {
			err := <-errs
			if !errors.Is(err, bus.ErrPeerGone) {
				t.Fatalf("ask ended with %v, want bus.ErrPeerGone", err)
			}
			slowest = max(slowest, time.Since(killed))
		}
		<-streamDone
		t.Logf("all %d asks failed %v after SIGKILL (deadline %v)", asks, slowest, deadline)
		if slowest >= deadline/2 {
			t.Fatalf("asks took %v to fail", slowest)
		}
		h.cmd.Wait()
		closeCtx, cancelClose := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancelClose()
		if err := b.Close(closeCtx); err != nil {
			t.Fatal(err)
		}
		checkGoroutines(t, before)
	})
}

// A process with the wrong secret is refused by a real peer process, and
// the refusal names the reason on the dialing side.
func TestProcessWrongSecretRefused(t *testing.T) {
	h := startHelper(t, "tcp://127.0.0.1:0", "right")
	host := newTestHost(t)
	tr := startTransport(t, host, Config{Secret: []byte("wrong")})
	_, err := tr.Dial(context.Background(), h.addr)
	if !errors.Is(err, ErrAuth) {
		t.Fatalf("dial with the wrong secret: %v", err)
	}
	if ups, _, delivered, _ := host.counts(); ups != 0 || delivered != 0 {
		t.Fatalf("%d links, %d messages", ups, delivered)
	}
}

// A process killed with SIGKILL leaves its Unix socket file behind; a node
// started on the same path takes it over. A live node's socket, and a file
// that is not a socket, are not taken; Close removes the socket file.
func TestStaleUnixSocket(t *testing.T) {
	path := filepath.Join(t.TempDir(), "n.sock")
	addr := "unix://" + path
	h := startHelper(t, addr, "")
	h.cmd.Process.Signal(syscall.SIGKILL)
	h.cmd.Wait()
	if _, err := os.Lstat(path); err != nil {
		t.Fatalf("the killed process left no socket file: %v", err)
	}
	srv := newTestHost(t)
	srvT := New(Config{Listen: []string{addr}})
	if err := srvT.Start(srv); err != nil {
		t.Fatalf("listening where a dead process listened: %v", err)
	}
	t.Cleanup(func() { srvT.Close(context.Background()) })
	cli := newTestHost(t)
	cliT := startTransport(t, cli, Config{})
	if _, err := cliT.Dial(context.Background(), addr); err != nil {
		t.Fatal(err)
	}
	if got, err := cli.ask(context.Background(), cli.link(t), "echo", "x"); err != nil || got != "x" {
		t.Fatalf("echo through the new listener: %v %v", got, err)
	}
	// The live node's socket is not taken over.
	if err := New(Config{Listen: []string{addr}}).Start(newTestHost(t)); err == nil {
		t.Fatal("a second node took over a live node's socket")
	}
	srvT.Close(context.Background())
	if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("socket file after Close: %v", err)
	}
	// A file that is not a socket is never removed.
	if err := os.WriteFile(path, []byte("data"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := New(Config{Listen: []string{addr}}).Start(newTestHost(t)); err == nil {
		t.Fatal("listening over a regular file")
	}
	if b, err := os.ReadFile(path); err != nil || string(b) != "data" {
		t.Fatalf("the regular file was touched: %q %v", b, err)
	}
}
