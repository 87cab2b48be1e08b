package bus_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/xbus-dev/xbus/bus"
	"github.com/xbus-dev/xbus/bus/internal/flow"
	"github.com/xbus-dev/xbus/netbus"
)

// subscribeRemote subscribes on server and waits until client knows the
// subscription.
func subscribeRemote(t *testing.T, server, client *bus.Bus, pattern string, opts ...bus.SubOption) *bus.Subscription {
	t.Helper()
	sub, err := server.Subscribe(context.Background(), pattern, opts...)
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "the subscription announced", func() error {
		if n, _ := bus.RemoteSubs(client); n == 0 {
			return errors.New("not yet")
		}
		return nil
	})
	return sub
}

// A remote SlowDropOldest subscriber that never reads: its node holds at
// most its buffer and one window of credit, the publisher's node at most a
// window, and every message is either delivered or dropped as a counted
// dead letter on the publisher's node (the ledger).
func TestRemoteSubscriptionDropOldestBounded(t *testing.T) {
	eachLink(t, func(t *testing.T, rl realLink) {
		server, client := rl.pair(t, nil, nil)
		const window, sent = 8, 200
		sub := subscribeRemote(t, server, client, "ticks.>", bus.WithWindow(window), bus.WithSlowPolicy(bus.SlowDropOldest))
		for i := range sent {
			if err := client.Publish("ticks.a", i); err != nil {
				t.Fatalf("publish %d: %v", i, err)
			}
			if _, held := bus.RemoteSubs(client); held > window {
				t.Fatalf("the publisher's node holds %d, window %d", held, window)
			}
			if q, buf := bus.Queued(sub); q > window || buf > window {
				t.Fatalf("the subscriber's node holds %d queued and %d buffered, window %d", q, buf, window)
			}
		}
		// The subscriber's node fills: its buffer and one window of credit.
		eventually(t, "the subscriber's side full", func() error {
			if q, buf := bus.Queued(sub); q != window || buf != window {
				return errors.New("not yet")
			}
			return nil
		})
		if _, held := bus.RemoteSubs(client); held > window {
			t.Fatalf("the publisher's node holds %d, window %d", held, window)
		}
		// Drops happen on publishing only: the count is final.
		dropped := client.DeadLetterCount(bus.ErrSlowConsumer)
		if dropped < sent-3*window {
			t.Fatalf("%d dropped of %d: more than both sides may hold was kept", dropped, sent)
		}
		// Now the reader reads: what was held arrives, in order, the
		// newest last, and delivered + dropped = sent.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		last := -1
		for delivered := uint64(0); delivered < sent-dropped; delivered++ {
			m, err := sub.Next(ctx)
			if err != nil {
				t.Fatalf("after %d delivered and %d dropped of %d: %v", delivered, dropped, sent, err)
			}
			i := m.Msg.(int)
			if i <= last {
				t.Fatalf("message %d after %d: out of order", i, last)
			}
			last = i
		}
		if last != sent-1 {
			t.Fatalf("the last message delivered is %d, want the newest, %d", last, sent-1)
		}
		if _, held := bus.RemoteSubs(client); held != 0 {
			t.Fatalf("the publisher's node still holds %d once all arrived", held)
		}
		if sub.Dropped() != 0 || server.DeadLetterCount(bus.ErrSlowConsumer) != 0 {
			t.Fatalf("the subscriber's node dropped %d: its credit should have kept it from having to", sub.Dropped())
		}
	})
}

// A remote SlowBlock subscriber that never reads: the publisher waits, up
// to its ctx, once the subscriber's buffer and credit are full, and nothing
// is dropped; once the reader reads, every message arrives, in order.
func TestRemoteSubscriptionBlockWaits(t *testing.T) {
	eachLink(t, func(t *testing.T, rl realLink) {
		server, client := rl.pair(t, nil, nil)
		const window = 8
		sub := subscribeRemote(t, server, client, "ticks.>", bus.WithWindow(window))
		sent := 0
		for {
			ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
			err := client.PublishContext(ctx, "ticks.a", sent)
			cancel()
			if errors.Is(err, bus.ErrDeadline) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			sent++
			if sent > 4*window {
				t.Fatalf("%d publishes taken by a subscriber of window %d that never reads", sent, window)
			}
		}
		if sent < window {
			t.Fatalf("the publisher waited after %d, before the window of %d", sent, window)
		}
		if _, held := bus.RemoteSubs(client); held != 0 {
			t.Fatalf("the publisher's node holds %d for a SlowBlock subscriber", held)
		}
		done := make(chan error, 1)
		const more = 100
		go func() {
			for i := range more {
				if err := client.PublishContext(context.Background(), "ticks.a", sent+i); err != nil {
					done <- err
					return
				}
			}
			done <- nil
		}()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		for want := range sent + more {
			m, err := sub.Next(ctx)
			if err != nil {
				t.Fatalf("after %d delivered: %v", want, err)
			}
			if m.Msg != want {
				t.Fatalf("got %v, want %d: lost or out of order", m.Msg, want)
			}
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if sub.Dropped() != 0 || client.DeadLetterCount(bus.ErrSlowConsumer) != 0 || server.DeadLetterCount(bus.ErrSlowConsumer) != 0 {
			t.Fatal("a SlowBlock subscription dropped messages")
		}
	})
}

// A peer that lies about credit loses its link, with a clear reason: one
// that publishes beyond the credit a subscription granted (the subscriber's
// node dead-letters the publish with the reason), and one that grants more
// credit than a window holds.
func TestRemoteSubscriptionLyingPeer(t *testing.T) {
	pair := func(t *testing.T) (server, client *bus.Bus, st, ct *spyTransport) {
		st = newSpy(netbus.Config{Listen: []string{"tcp://127.0.0.1:0"}})
		server = linkedBus(t, bus.WithName("server"), bus.WithTransport(st))
		ct = newSpy(netbus.Config{Peers: st.Addrs()})
		client = linkedBus(t, bus.WithName("client"), bus.WithTransport(ct))
		return server, client, st, ct
	}

	t.Run("publish beyond credit", func(t *testing.T) {
		server, client, _, ct := pair(t)
		const window = 8
		sub := subscribeRemote(t, server, client, "ticks.>", bus.WithWindow(window))
		dead, err := server.Subscribe(context.Background(), bus.DeadLetterSubject, bus.WithWindow(1024))
		if err != nil {
			t.Fatal(err)
		}
		liar := <-ct.links
		epoch := bus.SubEpoch(server, client.NodeID())
		// Its buffer and its credit take 2×window; one more is a lie.
		for i := range 2*window + 1 {
			env := &bus.Envelope{Kind: bus.KindPublish, From: bus.Ref{Node: client.NodeID()},
				To: bus.Ref{Name: "ticks.a", ID: bus.SubID(sub)}, Corr: epoch, Msg: i}
			if err := forge(t, client, liar, env); err != nil {
				t.Fatalf("publish %d: %v", i, err)
			}
		}
		linkClosed(t, client, liar)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		for {
			m, err := dead.Next(ctx)
			if err != nil {
				t.Fatalf("no dead letter for the publish beyond credit: %v", err)
			}
			dl := m.Msg.(bus.DeadLetter)
			if errors.Is(dl.Reason, flow.ErrOverflow) {
				if !errors.Is(dl.Reason, bus.ErrBadEnvelope) || dl.Msg != 2*window {
					t.Fatalf("dead letter %v for %v, want the last publish as a bad envelope", dl.Reason, dl.Msg)
				}
				break
			}
		}
		for i := range 2 * window { // what was within credit arrives
			m, err := sub.Next(ctx)
			if err != nil || m.Msg != i {
				t.Fatalf("got %v, %v, want %d", m.Msg, err, i)
			}
		}
	})

	t.Run("grant beyond a window", func(t *testing.T) {
		server, client, st, _ := pair(t)
		sub := subscribeRemote(t, server, client, "ticks.>", bus.WithWindow(8))
		liar := <-st.links
		epoch := bus.SubEpoch(server, client.NodeID())
		env := &bus.Envelope{Kind: bus.KindSystem, From: bus.Ref{Node: server.NodeID()},
			Msg: bus.ForgedGrant(epoch, bus.SubID(sub), math.MaxUint64)}
		if err := forge(t, server, liar, env); err != nil {
			t.Fatal(err)
		}
		linkClosed(t, server, liar)
	})
}

// When the subscriber's node goes away, what the publisher's node held for
// it is dead-lettered with ErrPeerGone: nothing is lost silently.
func TestRemoteSubscriptionHeldOnPeerGone(t *testing.T) {
	server, client := linkedPair(t)
	const window, sent = 4, 80
	sub := subscribeRemote(t, server, client, "ticks.>", bus.WithWindow(window), bus.WithSlowPolicy(bus.SlowDropOldest))
	publish := func(from, to int) {
		for i := from; i < to; i++ {
			if err := client.Publish("ticks.a", i); err != nil {
				t.Fatal(err)
			}
		}
	}
	// The subscriber's buffer takes a window and grants its credit back
	// at once; the next window waits in its queue and grants nothing. Only
	// then is no grant on its way, and what the publisher holds stays held.
	publish(0, sent/2)
	eventually(t, "the subscriber's buffer and queue full", func() error {
		if queued, buffered := bus.Queued(sub); queued != window || buffered != window {
			return fmt.Errorf("%d queued, %d buffered", queued, buffered)
		}
		return nil
	})
	publish(sent/2, sent)
	eventually(t, "the publisher's node holding a window", func() error {
		if _, held := bus.RemoteSubs(client); held != window {
			return fmt.Errorf("%d held", held)
		}
		return nil
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	server.Close(ctx)
	eventuallyCount(t, "held publishes dead-lettered with ErrPeerGone", window, func() uint64 { return client.DeadLetterCount(bus.ErrPeerGone) })
	// The ledger: each message is buffered for the reader (still readable
	// once the subscription closed) or a dead letter on one node.
	buffered := uint64(len(sub.Messages()))
	if got := client.DeadLetters() + server.DeadLetters() + buffered; got != sent {
		t.Fatalf("%d dead letters on the publisher's node, %d on the subscriber's and %d buffered: %d of %d sent",
			client.DeadLetters(), server.DeadLetters(), buffered, got, sent)
	}
}

// A remote SlowCut subscriber that never reads is cut with ErrSlowConsumer
// when a message finds its buffer full (dead-lettered with that reason on
// its node); what it buffered stays readable, in order, and the publisher's
// node forgets the subscription and what it held for it.
func TestRemoteSubscriptionCut(t *testing.T) {
	server, client := linkedPair(t)
	const window, sent = 4, 40
	sub := subscribeRemote(t, server, client, "ticks.>", bus.WithWindow(window), bus.WithSlowPolicy(bus.SlowCut))
	for i := range sent {
		if err := client.Publish("ticks.a", i); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "the subscription cut", func() error {
		if !errors.Is(sub.Err(), bus.ErrSlowConsumer) {
			return fmt.Errorf("ended with %v", sub.Err())
		}
		return nil
	})
	if server.DeadLetterCount(bus.ErrSlowConsumer) == 0 {
		t.Error("the message that found the buffer full is no dead letter")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i := range window {
		if m, err := sub.Next(ctx); err != nil || m.Msg != i {
			t.Fatalf("got %v, %v, want %d", m.Msg, err, i)
		}
	}
	if _, err := sub.Next(ctx); !errors.Is(err, bus.ErrSlowConsumer) {
		t.Fatalf("after the buffer: %v, want ErrSlowConsumer", err)
	}
	eventually(t, "the publisher's node forgetting the subscription", func() error {
		if subs, held := bus.RemoteSubs(client); subs != 0 || held != 0 {
			return fmt.Errorf("%d subscriptions, %d held", subs, held)
		}
		return nil
	})
}

// The count of what a peer's subscriptions hold, which the budget
// (bus.WithPeerHeld) applies to, stays exact as held publishes are sent on
// new credit and as a subscription ends with publishes held: every
// publish is delivered, or a dead letter on the publisher's node.
func TestRemoteSubscriptionHeldCountExact(t *testing.T) {
	eachLink(t, func(t *testing.T, rl realLink) {
		const window, budget, over = 4, 6, 10
		server, client := rl.pair(t, nil, []bus.Option{bus.WithPeerHeld(budget)})
		a := subscribeRemote(t, server, client, "ticks.>", bus.WithWindow(window), bus.WithSlowPolicy(bus.SlowDropOldest))
		b, err := server.Subscribe(context.Background(), "ticks.>", bus.WithWindow(window), bus.WithSlowPolicy(bus.SlowDropOldest))
		if err != nil {
			t.Fatal(err)
		}
		agrees := func(want int) error {
			counted, held, _ := bus.PeerHeld(client)
			sum := 0
			for _, h := range held {
				sum += h
			}
			if counted != sum || sum != want || bus.NodeHeld(client) != sum {
				return fmt.Errorf("%d held, counted %d for the peer and %d for the node, want %d", sum, counted, bus.NodeHeld(client), want)
			}
			return nil
		}
		eventually(t, "both announced", func() error {
			if _, _, credit := bus.PeerHeld(client); credit != 2*window {
				return fmt.Errorf("credit %d", credit)
			}
			return nil
		})
		sent := 0
		publish := func(n int) {
			t.Helper()
			for range n {
				if err := client.Publish("ticks.a", sent); err != nil {
					t.Fatalf("publish %d: %v", sent, err)
				}
				sent++
			}
		}
		publish(window)
		eventually(t, "the buffers granted", func() error {
			if _, _, credit := bus.PeerHeld(client); credit != 2*window {
				return fmt.Errorf("credit %d", credit)
			}
			return nil
		})
		publish(window + over)
		if err := agrees(budget); err != nil {
			t.Fatal(err)
		}
		if n := client.DeadLetterCount(bus.ErrSlowConsumer); n != 2*over-budget {
			t.Fatalf("%d dropped, want %d", n, 2*over-budget)
		}
		// a reads: its held publishes go on its new credit, the newest last.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		for i := range 2*window + budget/2 {
			m, err := a.Next(ctx)
			if err != nil {
				t.Fatalf("message %d: %v", i, err)
			}
			if i == 2*window+budget/2-1 && m.Msg != sent-1 {
				t.Fatalf("the last message is %v, want the newest, %d", m.Msg, sent-1)
			}
		}
		eventually(t, "a's held sent", func() error { return agrees(budget / 2) })
		// b ends: what it held is dead letters, and the count drops with it.
		b.Close()
		eventually(t, "b's held dropped", func() error { return agrees(0) })
		eventually(t, "b's held dead letters", func() error {
			if n := client.DeadLetters(); n != 2*over-budget+budget/2 {
				return fmt.Errorf("%d dead letters", n)
			}
			return nil
		})
	})
}
