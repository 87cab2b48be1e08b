//go:build linux

package shmbus_test

import (
	"context"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/xbus-dev/xbus/bus"
	"github.com/xbus-dev/xbus/shmbus"
)

// TestPollingAskerRunsNoActor: an asker that takes its reply from the ring
// itself (bus.PollingLink) must not run, on its own goroutine, an actor
// registered WithInline whose message came after its reply. Node there
// answers each ask and then tells node here's inline "waiter", which waits
// until the asker, back from its Ask, lets it go. Run by the link's reader
// (or a worker) the waiter waits a moment; run by the asker inside its
// poll, it waits for the very goroutine it holds, so the Ask never returns.
// The waiter's wait is bounded only to report the hang.
func TestPollingAskerRunsNoActor(t *testing.T) {
	path := filepath.Join(t.TempDir(), "shm.sock")
	there, err := bus.New(bus.WithName("there"), bus.WithLogger(slog.New(slog.DiscardHandler)),
		bus.WithTransport(shmbus.New(shmbus.Config{Listen: path})))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { there.Close(context.Background()) })
	here, err := bus.New(bus.WithName("here"), bus.WithLogger(slog.New(slog.DiscardHandler)),
		bus.WithTransport(shmbus.New(shmbus.Config{Dial: []string{path}})))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { here.Close(context.Background()) })

	var (
		mu       sync.Mutex
		released = map[int]chan struct{}{}
		hung     = make(chan int, 1)
		ran      = make(chan int, 1)
	)
	gate := func(i int) chan struct{} {
		mu.Lock()
		defer mu.Unlock()
		ch := released[i]
		if ch == nil {
			ch = make(chan struct{})
			released[i] = ch
		}
		return ch
	}
	if _, err := here.Register("waiter", bus.ActorFunc(func(c *bus.Context, msg any) error {
		i, ok := msg.(int)
		if !ok {
			return nil
		}
		select {
		case <-gate(i):
		case <-time.After(20 * time.Second): // a hang detector, not a bound of the code
			select {
			case hung <- i:
			default:
			}
		}
		ran <- i
		return nil
	}), bus.WithInline()); err != nil {
		t.Fatal(err)
	}
	if _, err := there.Register("echo", bus.ActorFunc(func(c *bus.Context, msg any) error {
		if !c.IsAsk() {
			return nil
		}
		if err := c.Tell("busy", msg); err != nil {
			return err
		}
		if err := c.Reply(msg); err != nil {
			return err
		}
		return c.Tell("waiter", msg) // on the same link, right behind the reply
	})); err != nil {
		t.Fatal(err)
	}
	// busy holds whoever runs it a moment, so that the reply and the tell
	// behind it are in the ring together when the next poll takes them.
	if _, err := here.Register("busy", bus.ActorFunc(func(c *bus.Context, msg any) error {
		for start := time.Now(); time.Since(start) < 200*time.Microsecond; {
		}
		return nil
	}), bus.WithInline()); err != nil {
		t.Fatal(err)
	}
	close(gate(-1))
	waitRouted(t, there, "waiter")
	waitRouted(t, there, "busy")
	askUntilRouted(t, here, "echo", -1)
	<-ran

	for i := range 1000 {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		r, err := here.Ask(ctx, "echo", i)
		cancel()
		close(gate(i))
		if err != nil || r != i {
			t.Fatalf("ask %d: %v, %v", i, r, err)
		}
		select {
		case j := <-ran:
			if j != i {
				t.Fatalf("waiter took %d, want %d", j, i)
			}
		case j := <-hung:
			t.Fatalf("the waiter of ask %d ran on the goroutine that asked, inside its poll: the Ask returned only after the waiter gave up", j)
		case <-time.After(time.Minute):
			t.Fatalf("the waiter of ask %d never ran", i)
		}
		select {
		case j := <-hung:
			t.Fatalf("the waiter of ask %d ran on the goroutine that asked, inside its poll: the Ask returned only after the waiter gave up", j)
		default:
		}
	}
}

// waitRouted waits until b knows an instance of name on another node.
func waitRouted(t *testing.T, b *bus.Bus, name string) {
	t.Helper()
	for range 10000 {
		if len(b.Instances(name)) > 0 {
			return
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatalf("%s never learned of %s", b.NodeID().Short(), name)
}
