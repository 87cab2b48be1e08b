package bus_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/xbus-dev/xbus/bus"
	"github.com/xbus-dev/xbus/mailbox"
	"github.com/xbus-dev/xbus/netbus"
)

// linkedPair returns two buses in this process joined by a netbus link over
// a Unix socket: the routing, naming, interest and cancel logic of package
// bus exercised over a real link. Cross-process tests live with the
// transports.
func linkedPair(t *testing.T) (server, client *bus.Bus) {
	t.Helper()
	sock := "unix:" + filepath.Join(t.TempDir(), "s.sock")
	server, err := bus.New(bus.WithName("server"), bus.WithTransport(netbus.New(netbus.Config{Listen: []string{sock}})))
	if err != nil {
		t.Fatal(err)
	}
	client, err = bus.New(bus.WithName("client"), bus.WithTransport(netbus.New(netbus.Config{Peers: []string{sock}})))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		client.Close(ctx)
		server.Close(ctx)
	})
	return server, client
}

func waitFor(t *testing.T, b *bus.Bus, name string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := b.WaitFor(ctx, name); err != nil {
		t.Fatalf("%s never reachable: %v", name, err)
	}
}

// eventually retries f until it returns nil, for state that crosses the link
// asynchronously (name announcements); it fails after 10 s.
func eventually(t *testing.T, what string, f func() error) {
	t.Helper()
	var err error
	for range 1000 {
		if err = f(); err == nil {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("%s: %v", what, err)
}

func TestRemoteAskCarriesDeadlineAndCancel(t *testing.T) {
	server, client := linkedPair(t)
	gotDeadline := make(chan bool, 1)
	working, sawCancel := make(chan struct{}), make(chan struct{})
	server.Register("slow", bus.ActorFunc(func(c *bus.Context, msg any) error {
		switch msg {
		case "ping":
			return c.Reply("pong")
		case "work":
			_, ok := c.Deadline()
			gotDeadline <- ok
			close(working)
			for !c.Canceled() { // long work that polls for the asker giving up
				time.Sleep(time.Millisecond)
			}
			close(sawCancel)
		}
		return nil
	}))
	waitFor(t, client, "slow")
	// The asker gives up once the actor is at work: an ask whose asker gave
	// up (or whose deadline passed) before the actor took it is never
	// handed to the actor, so a short deadline could leave this test
	// waiting forever for it.
	ctx, cancelDeadline := context.WithTimeout(context.Background(), time.Minute)
	defer cancelDeadline()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		<-working
		cancel()
	}()
	if _, err := client.Ask(ctx, "slow", "work"); !errors.Is(err, bus.ErrCanceled) {
		t.Fatalf("ask: %v, want ErrCanceled", err)
	}
	if !<-gotDeadline {
		t.Fatal("the ask's deadline did not travel with it")
	}
	select {
	case <-sawCancel:
	case <-time.After(10 * time.Second):
		t.Fatal("the far side never saw the ask cancelled")
	}
}

func TestRemoteNamesFollowRegistrations(t *testing.T) {
	server, client := linkedPair(t)
	ref, _ := server.Register("echo", bus.ActorFunc(func(c *bus.Context, msg any) error { return c.Reply(msg) }))
	waitFor(t, client, "echo")
	if r, err := client.Ask(context.Background(), ref, "by ref"); err != nil || r != "by ref" {
		t.Fatalf("ask by Ref: %v, %v", r, err)
	}
	if err := server.Stop(ref); err != nil {
		t.Fatal(err)
	}
	eventually(t, "removal announced", func() error {
		if _, err := client.Ask(context.Background(), "echo", "hi"); !errors.Is(err, bus.ErrNoRoute) {
			return errors.New("still routed")
		}
		return nil
	})
}

func TestRemotePublishAndWatch(t *testing.T) {
	server, client := linkedPair(t)
	ctx := context.Background()
	sub, err := server.Subscribe(ctx, "prices.>")
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "interest announced", func() error {
		if err := client.Publish("prices.eur", 1.5); err != nil {
			return err
		}
		c, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
		defer cancel()
		m, err := sub.Next(c)
		if err != nil {
			return err
		}
		if m.Subject != "prices.eur" || m.Msg != 1.5 {
			t.Fatalf("got %+v", m)
		}
		return nil
	})
	// A watcher of a remote actor hears of it when its node closes: of the
	// actor's stop, or of the link going away, whichever comes first. The
	// watch travels after Started, so it may reach the closing node after
	// the actor left: a node answers a watch of an actor it does not have
	// at once, with ErrNoRoute.
	target, _ := server.Register("target", bus.ActorFunc(func(*bus.Context, any) error { return nil }))
	terminated := make(chan bus.Terminated, 1)
	client.Spawn(bus.ActorFunc(func(c *bus.Context, msg any) error {
		switch m := msg.(type) {
		case bus.Started:
			c.Watch(target)
		case bus.Terminated:
			terminated <- m
		}
		return nil
	}))
	waitFor(t, client, "target")
	server.Close(ctx)
	select {
	case m := <-terminated:
		if m.Ref != target || (m.Reason != nil && !errors.Is(m.Reason, bus.ErrPeerGone) && !errors.Is(m.Reason, bus.ErrNoRoute)) {
			t.Fatalf("terminated: %+v", m)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no Terminated after the peer closed")
	}
}

// TestRemoteTellsKeepTheirSender sends tells from two actors across the
// link: the record of each (reused once Receive returns) must carry its own
// sender to the receiver, and a Promise taken on a tell owes nothing.
func TestRemoteTellsKeepTheirSender(t *testing.T) {
	server, client := linkedPair(t)
	const n = 2000
	got := make(chan string, 2*n)
	server.Register("sink", bus.ActorFunc(func(c *bus.Context, msg any) error {
		s, ok := msg.(string)
		if !ok {
			return nil
		}
		pr := c.Promise() // a tell: Reply must send nothing anywhere
		go pr.Reply("stray")
		got <- c.Sender().Name + ":" + s
		return nil
	}), bus.WithMailbox(mailbox.Options{Capacity: 1 << 13})) // room for every tell: none is refused
	waitFor(t, client, "sink")
	stray := make(chan any, 1)
	for _, name := range []string{"a", "b"} {
		ref, err := client.Register(name, bus.ActorFunc(func(c *bus.Context, msg any) error {
			switch msg.(type) {
			case string:
				select {
				case stray <- msg:
				default:
				}
			case int:
				for i := range n {
					if err := c.Tell("sink", fmt.Sprintf("%s%d", c.Self().Name, i)); err != nil {
						return err
					}
				}
			}
			return nil
		}))
		if err != nil {
			t.Fatal(err)
		}
		if err := client.Tell(ref, 0); err != nil {
			t.Fatal(err)
		}
	}
	next := map[string]int{}
	for range 2 * n {
		select {
		case s := <-got:
			name, rest, _ := strings.Cut(s, ":")
			if want := fmt.Sprintf("%s%d", name, next[name]); rest != want {
				t.Fatalf("from %q got %q, want %q", name, rest, want)
			}
			next[name]++
		case <-time.After(10 * time.Second):
			t.Fatalf("got %v tells, want %d from each", next, n)
		}
	}
	// An ask after the tells is answered after any stray reply would have
	// arrived (one link, in order).
	server.Register("echo", bus.ActorFunc(func(c *bus.Context, msg any) error { return c.Reply(msg) }))
	waitFor(t, client, "echo")
	if _, err := client.Ask(context.Background(), "echo", "x"); err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-stray:
		t.Fatalf("a Promise on a tell sent %v", m)
	default:
	}
}

// TestRemoteAskReturnsWhenAskerCloses: an ask waiting on a peer that never
// answers returns as soon as the asking bus closes, with ErrClosed or
// ErrPeerGone (the links go first), not at its deadline.
func TestRemoteAskReturnsWhenAskerCloses(t *testing.T) {
	server, client := linkedPair(t)
	got := make(chan struct{})
	server.Register("hold", bus.ActorFunc(func(c *bus.Context, msg any) error {
		if c.IsAsk() {
			c.Promise() // never answered
			close(got)
		}
		return nil
	}))
	waitFor(t, client, "hold")
	res := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_, err := client.Ask(ctx, "hold", "x")
		res <- err
	}()
	<-got
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := client.Close(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-res:
		if !errors.Is(err, bus.ErrClosed) && !errors.Is(err, bus.ErrPeerGone) {
			t.Fatalf("ask ended with %v, want ErrClosed or ErrPeerGone", err)
		}
	case <-ctx.Done():
		t.Fatal("the ask did not return after its bus closed")
	}
}

// TestRemoteAsksRecycleOnlyWhatIsDone mixes, over one link, asks answered
// during Receive (whose inbound records the bus recycles), asks answered
// later through a Promise from another goroutine (whose records it must
// not recycle), and asks given up on while the actor works (cancel
// arrives for a record that may be answered meanwhile). Every answer must
// reach the ask it belongs to.
func TestRemoteAsksRecycleOnlyWhatIsDone(t *testing.T) {
	server, client := linkedPair(t)
	server.Register("now", bus.ActorFunc(func(c *bus.Context, msg any) error {
		if c.IsAsk() {
			return c.Reply(msg)
		}
		return nil
	}))
	server.Register("later", bus.ActorFunc(func(c *bus.Context, msg any) error {
		if c.IsAsk() {
			p := c.Promise()
			go func() {
				time.Sleep(time.Duration(len(msg.(string))%3) * time.Millisecond)
				p.Reply(msg)
			}()
		}
		return nil
	}))
	server.Register("slow", bus.ActorFunc(func(c *bus.Context, msg any) error {
		if c.IsAsk() {
			for i := 0; i < 5 && !c.Canceled(); i++ {
				time.Sleep(time.Millisecond)
			}
			return c.Reply(msg)
		}
		return nil
	}))
	for _, name := range []string{"now", "later", "slow"} {
		waitFor(t, client, name)
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				to := []string{"now", "later", "slow"}[(g+i)%3]
				want := fmt.Sprintf("%s-%d-%d-%s", to, g, i, strings.Repeat("x", i%7))
				timeout := 10 * time.Second
				if to == "slow" && i%2 == 0 {
					timeout = 2 * time.Millisecond // given up on while the actor works
				}
				ctx, cancel := context.WithTimeout(context.Background(), timeout)
				got, err := client.Ask(ctx, to, want)
				cancel()
				if err != nil {
					if to == "slow" && timeout < time.Second && errors.Is(err, bus.ErrDeadline) {
						continue
					}
					t.Errorf("ask %s: %v", want, err)
					return
				}
				if got != want {
					t.Errorf("ask %s answered %v", want, got)
					return
				}
			}
		})
	}
	wg.Wait()
}
