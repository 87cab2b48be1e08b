//go:build linux

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
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/xbus-dev/xbus/bus"
	"github.com/xbus-dev/xbus/bus/placement"
	"github.com/xbus-dev/xbus/mailbox"
)

// frozenReceiverEnv makes the test binary the receiver of
// TestFrozenReceiverAtClose, listening on the address it names.
const frozenReceiverEnv = "NETBUS_TEST_FROZEN_RECEIVER"

func init() {
	if addr := os.Getenv(frozenReceiverEnv); addr != "" {
		os.Exit(runFrozenReceiver(addr))
	}
}

// downPrinter prints "DOWN" on stdout for each link the bus reports down.
type downPrinter struct{}

func (downPrinter) Enabled(context.Context, slog.Level) bool { return true }
func (downPrinter) WithAttrs([]slog.Attr) slog.Handler       { return downPrinter{} }
func (downPrinter) WithGroup(string) slog.Handler            { return downPrinter{} }
func (downPrinter) Handle(_ context.Context, r slog.Record) error {
	if r.Message == "link down" {
		fmt.Println("DOWN")
	}
	return nil
}

// runFrozenReceiver serves "work": an ask runs (counted) and is answered
// "child", a tell is counted, and the ask "count" is answered with both
// counts. It prints "ADDR <address>", then "DOWN" whenever a link goes
// down, and serves until its stdin closes.
func runFrozenReceiver(listen string) int {
	types := bus.NewTypes()
	registerTestTypes(types)
	tr := New(Config{Listen: []string{listen}})
	b, err := bus.New(bus.WithName("receiver"), bus.WithLogger(slog.New(downPrinter{})), bus.WithTransport(tr), bus.WithTypes(types))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	var ran, tells int
	b.Register("work", bus.ActorFunc(func(c *bus.Context, msg any) error {
		switch {
		case c.IsAsk() && msg == "count":
			return c.Reply(fmt.Sprintf("%d %d", ran, tells))
		case c.IsAsk():
			ran++
			return c.Reply("child")
		}
		if _, ok := msg.(Payload); ok {
			tells++
		}
		return nil
	}), bus.WithMailbox(mailbox.Options{Capacity: 1 << 12}))
	fmt.Printf("ADDR %s\n", tr.Addrs()[0])
	io.Copy(io.Discard, os.Stdin)
	return 0
}

// handBackReasons counts the tells and publishes its transport hands back
// (Host.Undelivered): those in doubt (ErrInDoubt) and the others.
type handBackReasons struct {
	*Transport
	exact, doubt atomic.Int64
}

func (r *handBackReasons) Start(h bus.Host) error {
	return r.Transport.Start(reasonHost{h.(bus.BatchHost), r})
}

type reasonHost struct {
	bus.BatchHost
	r *handBackReasons
}

func (h reasonHost) Undelivered(l bus.Link, env *bus.Envelope, err error) {
	if env.Kind == bus.KindTell || env.Kind == bus.KindPublish {
		if errors.Is(err, ErrInDoubt) {
			h.r.doubt.Add(1)
		} else {
			h.r.exact.Add(1)
		}
	}
	h.BatchHost.Undelivered(l, env, err)
}

// TestFrozenReceiverAtClose: the receiving process stops (SIGSTOP) while
// asks and tells go to it, some of them more than its sockets hold, and
// the sender's bus closes gracefully (or the link ends by the idle
// timeout), over TCP and a Unix socket. The sender's Close ends, bounded
// by the idle timeout; then the receiver resumes and reads what its socket
// holds. An ask runs once at most, on the receiver or on the sender's own
// instance; a tell is processed by the receiver, or a dead letter on the
// sender, and never both unless it was handed back in doubt (ErrInDoubt).
func TestFrozenReceiverAtClose(t *testing.T) {
	for _, end := range []string{"close", "idle"} {
		t.Run(end, func(t *testing.T) {
			network(t, func(t *testing.T, listen string) { frozenReceiverAtClose(t, listen, end == "close") })
		})
	}
}

func frozenReceiverAtClose(t *testing.T, listen string, byClose bool) {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), frozenReceiverEnv+"="+listen)
	stdin, _ := cmd.StdinPipe()
	out, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGCONT)
		stdin.Close()
		cmd.Process.Kill()
		cmd.Wait()
	})
	lines := make(chan string, 16)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	addr, ok := strings.CutPrefix(<-lines, "ADDR ")
	if !ok {
		t.Fatal("the receiver printed no address")
	}

	cfg := Config{Peers: []string{addr}, HeartbeatInterval: 300 * time.Millisecond, IdleTimeout: time.Second, SettleTimeout: -1}
	if byClose { // the link ends as the bus closes, not before
		cfg.HeartbeatInterval, cfg.IdleTimeout = time.Second, time.Hour
	}
	tr := &handBackReasons{Transport: New(cfg)}
	types := bus.NewTypes()
	registerTestTypes(types)
	var first atomic.Uint64 // the first attempt goes to the receiver's instance, a retry here
	b, err := bus.New(bus.WithName("sender"), bus.WithLogger(slog.New(slog.DiscardHandler)), bus.WithTransport(tr),
		bus.WithTypes(types), bus.WithSendTimeout(100*time.Millisecond),
		bus.WithPlacementFor("work", prefer(&first)), bus.WithRetryBudget(1e6, 1<<20))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close(context.Background())
	var here atomic.Int64
	b.Register("work", bus.ActorFunc(func(c *bus.Context, msg any) error {
		if !c.IsAsk() {
			return nil
		}
		here.Add(1)
		return c.Reply("sender")
	}))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute) // a hang detector
	defer cancel()
	var child bus.Ref
	for child.IsZero() {
		for _, r := range b.Instances("work") {
			if r.Node != b.NodeID() {
				child = r
				first.Store(placement.HashID(r.Node, r.ID))
			}
		}
		if ctx.Err() != nil {
			t.Fatal("the sender never learned the receiver's instance")
		}
		time.Sleep(time.Millisecond)
	}
	if r, err := b.Ask(ctx, child, "count"); err != nil || r != "0 0" {
		t.Fatalf("count before: %v, %v", r, err)
	}

	if err := cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	waitStopped(t, cmd.Process.Pid)
	const asks, tells = 20, 400
	var (
		wg                     sync.WaitGroup
		fromChild, gone, other atomic.Int64
		firstOther             atomic.Value
		accepted               int64
	)
	for range asks {
		wg.Go(func() {
			r, err := b.Ask(ctx, "work", "x")
			switch {
			case err == nil && r == "child":
				fromChild.Add(1)
			case err == nil:
			case errors.Is(err, bus.ErrPeerGone), errors.Is(err, bus.ErrClosed):
				gone.Add(1)
			default:
				other.Add(1)
				firstOther.CompareAndSwap(nil, err.Error())
			}
		})
	}
	body := make([]byte, 32<<10) // 400 of them fill the sockets and the writer's queue
	for i, refused := 0, 0; i < tells && refused < 3; i++ {
		if b.Tell(child, Payload{Seq: i, Data: body}) == nil {
			accepted++
		} else {
			refused++ // the writer's queue is full
		}
	}
	if accepted == 0 {
		t.Fatal("no tell was accepted: the test did not test a stopped receiver")
	}
	start := time.Now()
	if byClose {
		if err := b.Close(ctx); err != nil {
			t.Logf("close: %v", err)
		}
		if ctx.Err() != nil {
			t.Fatal("the sender's Close waited on the stopped receiver until the test's deadline")
		}
	}
	wg.Wait() // the link ends as the bus closes, or by the idle timeout
	took := time.Since(start)
	if n := other.Load(); n > 0 {
		t.Fatalf("%d asks ended otherwise, the first with %v", n, firstOther.Load())
	}

	if err := cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	for l := range lines { // the receiver's old link is down: what it read is in its actor's mailbox
		if l == "DOWN" {
			break
		}
	}
	q, err := bus.New(bus.WithName("query"), bus.WithLogger(slog.New(slog.DiscardHandler)),
		bus.WithTransport(New(Config{Peers: []string{addr}})))
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close(context.Background())
	var ran, processed int64
	for {
		r, err := q.Ask(ctx, child, "count")
		if err == nil {
			if _, err := fmt.Sscan(r.(string), &ran, &processed); err != nil {
				t.Fatal(err)
			}
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("the receiver never answered again: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	exact, doubt := tr.exact.Load(), tr.doubt.Load()
	t.Logf("link ended in %v; %d asks: %d answered by the sender's instance, %d failed, %d run by the resumed receiver; "+
		"%d tells accepted: %d processed by the receiver, handed back %d in doubt and %d not",
		took.Round(time.Millisecond), asks, here.Load(), gone.Load(), ran, accepted, processed, doubt, exact)
	if n := here.Load() + ran; n > asks {
		t.Errorf("%d asks ran %d times: %d here, %d on the resumed receiver", asks, n, here.Load(), ran)
	}
	if here.Load()+gone.Load()+fromChild.Load() != asks {
		t.Errorf("asks: %d answered here, %d by the receiver, %d failed, of %d", here.Load(), fromChild.Load(), gone.Load(), asks)
	}
	if processed+exact > accepted {
		t.Errorf("%d tells processed by the receiver and %d handed back as surely undelivered, of %d", processed, exact, accepted)
	}
	if processed+exact+doubt < accepted {
		t.Errorf("%d tells processed, %d handed back, of %d: some lost silently", processed, exact+doubt, accepted)
	}
	if n := int64(b.DeadLetters()); n != exact+doubt {
		t.Errorf("%d dead letters on the sender, %d tells handed back", n, exact+doubt)
	}
}
