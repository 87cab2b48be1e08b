//go:build unix

package bus_test

import (
	"fmt"
	"testing"

	"github.com/xbus-dev/xbus/bus"
)

// TestLyingPeerHoldsAtMostTheBudget: a peer process announces subscriptions
// whose windows together hold more than what one peer may make this node
// hold (the budget, small here: bus.MaxPeerHeld by default), all
// SlowDropOldest, and never reads. Once their credit is spent, the publishing
// node holds the budget and no more, spread over the subscriptions; every
// Publish still returns nil, and every publish beyond the budget is a dead
// letter with ErrSlowConsumer: sent + held + dead letters = published. When
// the peer goes, what was held is dead letters too.
func TestLyingPeerHoldsAtMostTheBudget(t *testing.T) {
	const (
		subs, window = 8, 64
		budget       = 256 // below subs*window
		over         = 200 // publishes once the credit is spent
	)
	cmd, tr := startFrozenPeer(t, "tcp",
		fmt.Sprintf("%s=%d", peerSubsEnv, subs),
		fmt.Sprintf("%s=%d", peerWindowEnv, window),
		fmt.Sprintf("%s=%d", peerPolicyEnv, bus.SlowDropOldest))
	pub := linkedBus(t, bus.WithName("publisher"), bus.WithTransport(tr), bus.WithPeerHeld(budget))
	eventually(t, "the subscriptions announced", func() error {
		if n, _ := bus.RemoteSubs(pub); n < subs {
			return fmt.Errorf("%d of %d announced", n, subs)
		}
		return nil
	})
	publish := func(n int) {
		t.Helper()
		for i := range n {
			if err := pub.Publish("ticks.a", i); err != nil {
				t.Fatalf("publish %d: %v", i, err)
			}
		}
	}
	// The credit each announcement granted, then the grant of the peer's
	// buffers: sent, 2*window to each subscription; the peer grants no more.
	publish(window)
	eventually(t, "the peer's buffers granted", func() error {
		if _, _, credit := bus.PeerHeld(pub); credit != subs*window {
			return fmt.Errorf("credit %d, want %d", credit, subs*window)
		}
		return nil
	})
	publish(window)
	if counted, held, credit := bus.PeerHeld(pub); counted != 0 || credit != 0 || len(held) != subs {
		t.Fatalf("after %d sent to each: %d held for %d subscriptions, credit %d", 2*window, counted, len(held), credit)
	}
	if n := pub.DeadLetters(); n != 0 {
		t.Fatalf("%d dead letters while credit lasted", n)
	}

	publish(over)
	counted, held, _ := bus.PeerHeld(pub)
	sum := 0
	for _, h := range held {
		sum += h
		if h != budget/subs {
			t.Errorf("a subscription holds %d, want %d: the budget is shared as the publishes came", h, budget/subs)
		}
	}
	if sum != counted || counted != budget {
		t.Fatalf("the node holds %d for the peer (counted %d), budget %d", sum, counted, budget)
	}
	dropped := pub.DeadLetterCount(bus.ErrSlowConsumer)
	if want := uint64(subs*over - budget); dropped != want || pub.DeadLetters() != want {
		t.Fatalf("%d dead letters with ErrSlowConsumer (%d in all), want %d: sent %d + held %d + dropped = published %d",
			dropped, pub.DeadLetters(), want, subs*2*window, budget, subs*(2*window+over))
	}

	// The peer goes: what was held for it is a dead letter too.
	cmd.Process.Kill()
	eventually(t, "the peer gone", func() error {
		if n := pub.DeadLetters(); n != subs*over {
			return fmt.Errorf("%d dead letters, want %d", n, subs*over)
		}
		return nil
	})
	if counted, held, _ := bus.PeerHeld(pub); counted != 0 || len(held) != 0 {
		t.Fatalf("after the peer went: %d counted held for %d subscriptions", counted, len(held))
	}
}
