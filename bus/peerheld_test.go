//go:build unix

package bus_test

import (
	"fmt"
	"slices"
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
	// The credit each announcement granted, then the grant of the peer's
	// buffers: sent, 2*window to each subscription; the peer grants no more.
	publishN(t, pub, "ticks.a", window)
	eventually(t, "the peer's buffers granted", func() error {
		if _, _, credit := bus.PeerHeld(pub); credit != subs*window {
			return fmt.Errorf("credit %d, want %d", credit, subs*window)
		}
		return nil
	})
	publishN(t, pub, "ticks.a", window)
	if counted, held, credit := bus.PeerHeld(pub); counted != 0 || credit != 0 || len(held) != subs {
		t.Fatalf("after %d sent to each: %d held for %d subscriptions, credit %d", 2*window, counted, len(held), credit)
	}
	if n := pub.DeadLetters(); n != 0 {
		t.Fatalf("%d dead letters while credit lasted", n)
	}

	publishN(t, pub, "ticks.a", over)
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

// TestLyingPeersHoldAtMostTheNodeBudget: two peer processes each announce
// subscriptions whose windows together hold more than one peer may make
// this node hold, all SlowDropOldest, and never read; the two peers'
// budgets together are more than the node's. Once their credit is spent,
// the node holds its budget and no more, shared evenly between the peers
// and their subscriptions; every publish beyond it is a dead letter with
// ErrSlowConsumer. A third peer's small subscription, which never reads
// either, then holds its window all the same, taken from the two that hold
// the most. When one of those goes, what was held for it is dead letters
// too, and the other may hold up to its own budget.
func TestLyingPeersHoldAtMostTheNodeBudget(t *testing.T) {
	const (
		liars, subs, window = 2, 8, 64
		peerBudget          = 256 // below subs*window
		nodeBudget          = 384 // below liars*peerBudget
		over                = 100 // publishes once the credit is spent
		small               = 8   // the third peer's window
	)
	env := []string{
		fmt.Sprintf("%s=%d", peerSubsEnv, subs),
		fmt.Sprintf("%s=%d", peerWindowEnv, window),
		fmt.Sprintf("%s=%d", peerPolicyEnv, bus.SlowDropOldest),
	}
	cmd1, tr1 := startFrozenPeer(t, "tcp", env...)
	_, tr2 := startFrozenPeer(t, "tcp", env...)
	_, tr3 := startFrozenPeer(t, "tcp", fmt.Sprintf("%s=%d", peerBigEnv, small), fmt.Sprintf("%s=%d", peerPolicyEnv, bus.SlowDropOldest))
	pub := linkedBus(t, bus.WithName("publisher"), bus.WithTransport(tr1), bus.WithTransport(tr2), bus.WithTransport(tr3),
		bus.WithPeerHeld(peerBudget), bus.WithNodeHeld(nodeBudget))
	eventually(t, "the subscriptions announced", func() error {
		if n, _ := bus.RemoteSubs(pub); n < liars*subs+1 {
			return fmt.Errorf("%d of %d announced", n, liars*subs+1)
		}
		return nil
	})
	credit := func(want int) {
		t.Helper()
		eventually(t, "the buffers granted", func() error {
			if _, _, credit := bus.PeerHeld(pub); credit != uint64(want) {
				return fmt.Errorf("credit %d, want %d", credit, want)
			}
			return nil
		})
	}
	// holds checks what the node holds for each peer, in all, and for each
	// subscription: the peer holding want[0] holds it, and so on.
	holds := func(want ...int) {
		t.Helper()
		by := bus.PeerHeldBy(pub)
		var got []int
		total := 0
		for _, held := range by {
			sum := 0
			for _, h := range held {
				sum += h
			}
			if len(held) == subs && slices.Max(held)-slices.Min(held) > 1 {
				t.Fatalf("a peer's subscriptions hold %v: one holds more than another but for one", held)
			}
			got = append(got, sum)
			total += sum
		}
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Fatalf("the node holds %v for its peers, want %v", got, want)
		}
		if counted, _, _ := bus.PeerHeld(pub); counted != total || bus.NodeHeld(pub) != total {
			t.Fatalf("the node holds %d, counts %d over its peers and %d in all", total, counted, bus.NodeHeld(pub))
		}
	}
	publishN(t, pub, "ticks.a", window)
	credit(liars*subs*window + small)
	publishN(t, pub, "ticks.a", window)
	credit(small)
	holds(0, 0, 0)

	publishN(t, pub, "ticks.a", over)
	holds(0, nodeBudget/liars, nodeBudget/liars)
	dropped := uint64(liars*subs*over - nodeBudget)
	if n := pub.DeadLetterCount(bus.ErrSlowConsumer); n != dropped || pub.DeadLetters() != dropped {
		t.Fatalf("%d dead letters with ErrSlowConsumer (%d in all), want %d", n, pub.DeadLetters(), dropped)
	}

	// The third peer's subscription: its credit, its buffer's, then its
	// window held, each taken from the liar holding the most.
	publishN(t, pub, "big.a", small)
	credit(small)
	publishN(t, pub, "big.a", small+small)
	holds(small, nodeBudget/liars-small/2, nodeBudget/liars-small/2)
	dropped += small
	if n := pub.DeadLetterCount(bus.ErrSlowConsumer); n != dropped {
		t.Fatalf("%d dead letters with ErrSlowConsumer, want %d", n, dropped)
	}

	// One liar goes: what was held for it is dead letters; the other may
	// now hold its own budget.
	cmd1.Process.Kill()
	eventually(t, "the peer gone", func() error {
		if n := pub.DeadLetters(); n != dropped+nodeBudget/liars-small/2 {
			return fmt.Errorf("%d dead letters, want %d", n, dropped+nodeBudget/liars-small/2)
		}
		return nil
	})
	publishN(t, pub, "ticks.a", over)
	holds(small, peerBudget)
}

// TestLyingSubscriptionStarvesNotItsPeersOthers: a peer process announces
// one subscription whose window holds more than what the peer may make
// this node hold, and two small ones, all SlowDropOldest, and never reads.
// Once the big one holds the whole budget, publishes to the small ones are
// held all the same, each up to its window, and the big one's oldest are
// dead letters instead: one subscription cannot take its peer's whole
// budget from the others.
func TestLyingSubscriptionStarvesNotItsPeersOthers(t *testing.T) {
	const (
		small, window = 2, 8
		big, budget   = 256, 64 // budget below big, above small*window
	)
	_, tr := startFrozenPeer(t, "tcp",
		fmt.Sprintf("%s=%d", peerSubsEnv, small),
		fmt.Sprintf("%s=%d", peerWindowEnv, window),
		fmt.Sprintf("%s=%d", peerBigEnv, big),
		fmt.Sprintf("%s=%d", peerPolicyEnv, bus.SlowDropOldest))
	pub := linkedBus(t, bus.WithName("publisher"), bus.WithTransport(tr), bus.WithPeerHeld(budget))
	eventually(t, "the subscriptions announced", func() error {
		if n, _ := bus.RemoteSubs(pub); n < small+1 {
			return fmt.Errorf("%d of %d announced", n, small+1)
		}
		return nil
	})
	// The big one's credit, then the grant of its buffer, then the budget
	// and more: it holds the whole budget.
	publishN(t, pub, "big.a", big)
	eventually(t, "the big buffer granted", func() error {
		if _, _, credit := bus.PeerHeld(pub); credit != big+small*window {
			return fmt.Errorf("credit %d, want %d", credit, big+small*window)
		}
		return nil
	})
	publishN(t, pub, "big.a", big+2*budget)
	if counted, held, _ := bus.PeerHeld(pub); counted != budget || slices.Max(held) != budget {
		t.Fatalf("the big subscription holds %v, %d counted, want the budget, %d", held, counted, budget)
	}

	// The small ones' credit, then their buffers', then more: each holds
	// its window, taken from the big one.
	publishN(t, pub, "ticks.a", window)
	eventually(t, "the small buffers granted", func() error {
		if _, _, credit := bus.PeerHeld(pub); credit != small*window {
			return fmt.Errorf("credit %d, want %d", credit, small*window)
		}
		return nil
	})
	publishN(t, pub, "ticks.a", window+3*window)
	counted, held, _ := bus.PeerHeld(pub)
	slices.Sort(held)
	want := []int{window, window, budget - small*window}
	if counted != budget || !slices.Equal(held, want) {
		t.Fatalf("the subscriptions hold %v (%d counted), want %v: a subscription that holds less loses none while another holds more", held, counted, want)
	}
	// Dropped: the big one's beyond the budget, then as many as the small
	// ones took from it, then theirs beyond their windows.
	if n, want := pub.DeadLetterCount(bus.ErrSlowConsumer), uint64(budget+small*window+small*2*window); n != want {
		t.Fatalf("%d dead letters with ErrSlowConsumer, want %d", n, want)
	}
}

// publishN publishes 0 to n-1 on subject from pub, each Publish returning
// nil.
func publishN(t *testing.T, pub *bus.Bus, subject string, n int) {
	t.Helper()
	for i := range n {
		if err := pub.Publish(subject, i); err != nil {
			t.Fatalf("publish %d on %s: %v", i, subject, err)
		}
	}
}
