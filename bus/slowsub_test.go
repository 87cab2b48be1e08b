package bus_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/xbus-dev/xbus/bus"
	"github.com/xbus-dev/xbus/netbus"
)

// TestSubscriberThatNeverReadsStallsNoOtherLink: two nodes subscribe to
// one subject over their own TCP links to a publisher; one never reads
// (SlowBlock, the default, window 8), the other reads everything. Each Publish ends,
// bounded by its ctx (ErrDeadline once the idle subscriber's window is
// full); the reading subscriber gets every message, in order; and asks
// between the publisher and the reading node go on meanwhile.
func TestSubscriberThatNeverReadsStallsNoOtherLink(t *testing.T) {
	pt := netbus.New(netbus.Config{Listen: []string{"tcp://127.0.0.1:0"}})
	pub := linkedBus(t, bus.WithName("publisher"), bus.WithTransport(pt))
	idle := linkedBus(t, bus.WithName("idle"), bus.WithTransport(netbus.New(netbus.Config{Peers: pt.Addrs()})))
	reader := linkedBus(t, bus.WithName("reader"), bus.WithTransport(netbus.New(netbus.Config{Peers: pt.Addrs()})))
	if _, err := reader.Register("echo", bus.ActorFunc(echo)); err != nil {
		t.Fatal(err)
	}
	if _, err := pub.Register("echo-pub", bus.ActorFunc(echo)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, pub, "echo")
	waitFor(t, reader, "echo-pub")
	const window = 8
	if _, err := idle.Subscribe(context.Background(), "ticks.>", bus.WithWindow(window)); err != nil {
		t.Fatal(err)
	}
	// The reading subscriber's window holds every message; one whose
	// credit runs out is TestSlowSubscriberWaitsBesideOneThatNeverReads's.
	sub, err := reader.Subscribe(context.Background(), "ticks.>", bus.WithWindow(256))
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "both subscriptions announced", func() error {
		if n, _ := bus.RemoteSubs(pub); n < 2 {
			return fmt.Errorf("%d announced", n)
		}
		return nil
	})

	const sent = 60
	got := readInOrder(sub, sent)
	waited := 0
	for i := range sent {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		err := pub.PublishContext(ctx, "ticks.a", i)
		cancel()
		switch {
		case errors.Is(err, bus.ErrDeadline):
			waited++
		case err != nil:
			t.Fatalf("publish %d: %v", i, err)
		}
		if i%10 == 0 { // the reading node's link is not held up meanwhile
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			if r, err := pub.Ask(ctx, "echo", i); err != nil || r != i {
				t.Fatalf("ask the reading node beside publish %d: %v, %v", i, r, err)
			}
			if r, err := reader.Ask(ctx, "echo-pub", i); err != nil || r != i {
				t.Fatalf("the reading node asks beside publish %d: %v, %v", i, r, err)
			}
			cancel()
		}
	}
	if waited == 0 {
		t.Fatal("no publish waited for the idle subscriber: the test tested nothing")
	}
	if err := <-got; err != nil {
		t.Fatalf("the reading subscriber, beside one that never reads: %v", err)
	}
	t.Logf("%d of %d publishes waited out their ctx for the idle subscriber", waited, sent)
}

// TestLocalSubscriberThatNeverReadsStarvesNoRemoteOne: a subscriber in the
// publisher's own process never reads (SlowBlock); one on another node
// reads everything. A Publish whose ctx the local one used up still sends
// the message to the remote one, which has credit: it gets every message,
// in order, and each Publish ends with its ctx.
func TestLocalSubscriberThatNeverReadsStarvesNoRemoteOne(t *testing.T) {
	pt := netbus.New(netbus.Config{Listen: []string{"tcp://127.0.0.1:0"}})
	pub := linkedBus(t, bus.WithName("publisher"), bus.WithTransport(pt))
	reader := linkedBus(t, bus.WithName("reader"), bus.WithTransport(netbus.New(netbus.Config{Peers: pt.Addrs()})))
	if _, err := pub.Subscribe(context.Background(), "ticks.>", bus.WithWindow(8)); err != nil {
		t.Fatal(err)
	}
	sub, err := reader.Subscribe(context.Background(), "ticks.>", bus.WithWindow(256))
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "the remote subscription announced", func() error {
		if n, _ := bus.RemoteSubs(pub); n < 1 {
			return errors.New("not yet")
		}
		return nil
	})
	const sent = 40
	waited := 0
	for i := range sent {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
		err := pub.PublishContext(ctx, "ticks.a", i)
		cancel()
		switch {
		case errors.Is(err, bus.ErrDeadline):
			waited++
		case err != nil:
			t.Fatalf("publish %d: %v", i, err)
		}
	}
	if waited == 0 {
		t.Fatal("no publish waited for the local subscriber: the test tested nothing")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute) // a hang detector
	defer cancel()
	for want := range sent {
		m, err := sub.Next(ctx)
		if err != nil {
			t.Fatalf("the remote subscriber got %d of %d: %v", want, sent, err)
		}
		if m.Msg != want {
			t.Fatalf("the remote subscriber got %v, want %d: lost or out of order", m.Msg, want)
		}
	}
}

// TestSlowSubscriberWaitsBesideOneThatNeverReads: a subscriber that never
// reads (SlowBlock, window 1), on another node or in the publisher's own
// process, and one on another node that reads all the time through a
// window of 1, so it is often out of credit when a publish comes. Eight
// goroutines publish together, round after round, each Publish bounded by
// a ctx the idle subscriber uses up. Each subscriber waits for its own
// credit within that ctx, not after the idle one's wait: the reader gets
// every message, each goroutine's in order, and every Publish that missed
// a subscription returns a *PublishError naming the idle one alone.
func TestSlowSubscriberWaitsBesideOneThatNeverReads(t *testing.T) {
	for _, where := range []string{"remote", "local"} {
		t.Run("idle "+where, func(t *testing.T) { slowBesideIdle(t, where == "local") })
	}
}

func slowBesideIdle(t *testing.T, idleLocal bool) {
	pt := netbus.New(netbus.Config{Listen: []string{"tcp://127.0.0.1:0"}})
	pub := linkedBus(t, bus.WithName("publisher"), bus.WithTransport(pt))
	reader := linkedBus(t, bus.WithName("reader"), bus.WithTransport(netbus.New(netbus.Config{Peers: pt.Addrs()})))
	idle := pub
	if !idleLocal {
		idle = linkedBus(t, bus.WithName("idle"), bus.WithTransport(netbus.New(netbus.Config{Peers: pt.Addrs()})))
	}
	if _, err := idle.Subscribe(context.Background(), "ticks.>", bus.WithWindow(1)); err != nil {
		t.Fatal(err)
	}
	sub, err := reader.Subscribe(context.Background(), "ticks.>", bus.WithWindow(1))
	if err != nil {
		t.Fatal(err)
	}
	remote := 2
	if idleLocal {
		remote = 1
	}
	eventually(t, "the remote subscriptions announced", func() error {
		if n, _ := bus.RemoteSubs(pub); n < remote {
			return fmt.Errorf("%d of %d announced", n, remote)
		}
		return nil
	})

	const publishers, rounds = 8, 2
	got := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute) // a hang detector
		defer cancel()
		var next [publishers]int
		for n := range publishers * rounds {
			m, err := sub.Next(ctx)
			if err != nil {
				got <- fmt.Errorf("got %d of %d: %w", n, publishers*rounds, err)
				return
			}
			v, _ := m.Msg.(int)
			g, i := v/100, v%100
			if g < 0 || g >= publishers || i != next[g] {
				got <- fmt.Errorf("got %v after %v: lost or out of order", m.Msg, next)
				return
			}
			next[g]++
		}
		got <- nil
	}()
	var missedIdle atomic.Int64
	for i := range rounds {
		var wg sync.WaitGroup
		errs := make(chan error, publishers)
		for g := range publishers {
			wg.Go(func() {
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				defer cancel()
				err := pub.PublishContext(ctx, "ticks.a", g*100+i)
				if err == nil {
					return
				}
				var pe *bus.PublishError
				if !errors.As(err, &pe) || len(pe.Missed) != 1 || pe.Missed[0].Node != idle.NodeID() || !errors.Is(err, bus.ErrDeadline) {
					errs <- fmt.Errorf("publish %d of goroutine %d: %w; want it to miss the idle subscriber alone", i, g, err)
					return
				}
				missedIdle.Add(1)
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		if t.Failed() {
			t.FailNow()
		}
	}
	if missedIdle.Load() == 0 {
		t.Fatal("no publish waited out its ctx for the idle subscriber: the test tested nothing")
	}
	if err := <-got; err != nil {
		t.Fatalf("the reading subscriber, beside one that never reads: %v", err)
	}
}

// readInOrder reads the ints 0 to n-1 from sub, in order, and reports on
// the channel it returns nil, or what was lost or out of order; it gives
// up after a minute.
func readInOrder(sub *bus.Subscription, n int) <-chan error {
	got := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute) // a hang detector
		defer cancel()
		for want := range n {
			m, err := sub.Next(ctx)
			if err != nil {
				got <- fmt.Errorf("after %d: %w", want, err)
				return
			}
			if m.Msg != want {
				got <- fmt.Errorf("got %v, want %d: lost or out of order", m.Msg, want)
				return
			}
		}
		got <- nil
	}()
	return got
}
