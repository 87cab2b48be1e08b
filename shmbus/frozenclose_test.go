//go:build linux

package shmbus_test

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
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/xbus-dev/xbus/bus"
	"github.com/xbus-dev/xbus/bus/placement"
	"github.com/xbus-dev/xbus/shmbus"
)

// frozenReceiverEnv makes the test binary the receiver of
// TestFrozenReceiverResumes, listening on the path it names.
const frozenReceiverEnv = "SHMBUS_TEST_FROZEN_RECEIVER"

func init() {
	if path := os.Getenv(frozenReceiverEnv); path != "" {
		os.Exit(runFrozenReceiver(path))
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
// counts. It prints "ready", then "DOWN" whenever a link goes down, and
// serves until its stdin closes.
func runFrozenReceiver(path string) int {
	b, err := bus.New(bus.WithName("receiver"), bus.WithLogger(slog.New(downPrinter{})),
		bus.WithTransport(shmbus.New(shmbus.Config{Listen: path})))
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
		if _, ok := msg.(int64); ok {
			tells++
		}
		return nil
	}))
	fmt.Println("ready")
	io.Copy(io.Discard, os.Stdin)
	return 0
}

// handBackReasons counts the tells and publishes its transport hands back
// (Host.Undelivered): those in doubt (shmbus.ErrInDoubt) and the others.
type handBackReasons struct {
	bus.Transport
	exact, doubt atomic.Int64
}

func (r *handBackReasons) Dial(ctx context.Context, addr string) (bus.Link, error) {
	return r.Transport.(bus.Dialer).Dial(ctx, addr)
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
		if errors.Is(err, shmbus.ErrInDoubt) {
			h.r.doubt.Add(1)
		} else {
			h.r.exact.Add(1)
		}
	}
	h.BatchHost.Undelivered(l, env, err)
}

// TestFrozenReceiverResumes: the receiving process stops (SIGSTOP) with
// asks and tells in its ring; its link ends (the heartbeat's timeout, or
// the sender's bus closing), and only then does it resume. The sender may
// not place again an ask the resumed receiver then runs, nor count as
// surely undelivered a tell it then processes: an ask runs once at most,
// here or there, unless it was marked idempotent; a tell is processed, or
// counted as a dead letter (in doubt, shmbus.ErrInDoubt, when it may have
// been processed too). A sender's Close ends, bounded by the wait for the
// peer's reader to drain.
func TestFrozenReceiverResumes(t *testing.T) {
	for _, end := range []string{"heartbeat", "close"} {
		t.Run(end, func(t *testing.T) { frozenReceiverResumes(t, end == "close") })
	}
}

func frozenReceiverResumes(t *testing.T, byClose bool) {
	path := filepath.Join(t.TempDir(), "shm.sock")
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), frozenReceiverEnv+"="+path)
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
	if l := <-lines; l != "ready" {
		t.Fatalf("receiver said %q", l)
	}

	timeout := time.Second // the heartbeat ends the link
	if byClose {
		timeout = time.Hour
	}
	tr := &handBackReasons{Transport: shmbus.New(shmbus.Config{Dial: []string{path}, PeerTimeout: timeout})}
	var first atomic.Uint64 // the first attempt goes to the receiver's instance, a retry here
	b, err := bus.New(bus.WithName("sender"), bus.WithLogger(slog.New(slog.DiscardHandler)), bus.WithTransport(tr),
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
	const asks, tells = 20, 50
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
			case errors.Is(err, bus.ErrPeerGone), byClose && errors.Is(err, bus.ErrClosed):
				gone.Add(1)
			default:
				other.Add(1)
				firstOther.CompareAndSwap(nil, err.Error())
			}
		})
	}
	for i := range int64(tells) {
		if b.Tell(child, i) == nil {
			accepted++
		}
	}
	if accepted == 0 {
		t.Fatal("no tell was accepted: the test did not test a stopped receiver")
	}
	if byClose {
		if err := b.Close(ctx); err != nil {
			t.Fatalf("close: %v", err)
		}
	}
	wg.Wait() // the link ends as the receiver's heartbeat stops, or as the bus closes
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
		bus.WithTransport(shmbus.New(shmbus.Config{Dial: []string{path}})))
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
	t.Logf("%d asks: %d answered by the sender's instance, %d failed, %d run by the resumed receiver; "+
		"%d tells accepted: %d processed by the receiver, handed back %d in doubt and %d not",
		asks, here.Load(), gone.Load(), ran, accepted, processed, doubt, exact)
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
