//go:build unix

package bus_test

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/xbus-dev/xbus/bus"
	"github.com/xbus-dev/xbus/netbus"
)

// TestFailedPublishGivesItsCreditBack: a peer process subscribes through a
// window of 1 and reads. Stopped with SIGSTOP, its link filled, a publish
// takes the subscription's credit and its send ends at the bound while the
// link applies backpressure: the publisher gets a *PublishError naming the
// subscription with ErrDeadline, and the credit is the subscription's
// again. Once the peer reads again, the next publish reaches it, and the
// failed one never does: a subscriber that stopped reading for a while is
// not stalled for good by a send that did not go out.
func TestFailedPublishGivesItsCreditBack(t *testing.T) {
	cmd, tr := startFrozenPeer(t, "tcp", peerReadEnv+"=1")
	pub := linkedBus(t, bus.WithName("publisher"), bus.WithTransport(tr), bus.WithSendTimeout(200*time.Millisecond))
	received, full := readerReads(t, pub)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	stopAndFill(t, cmd, pub)
	// Each publish takes a credit and fails to send it: with the credit
	// lost, the window (1) would be spent after the first.
	for i := range int(full) + 2 {
		err := pub.Publish("ticks.a", "failed")
		var pe *bus.PublishError
		if !errors.As(err, &pe) || len(pe.Missed) != 1 || !errors.Is(pe.Missed[0].Err, bus.ErrDeadline) {
			t.Fatalf("publish %d to a stopped peer: %v, want a PublishError missing its subscription with ErrDeadline", i, err)
		}
		if _, _, credit := bus.PeerHeld(pub); credit != full {
			t.Fatalf("after publish %d failed to send, credit %d, want %d: the failed send kept its credit", i, credit, full)
		}
	}

	resumeAndPublishSecond(t, ctx, cmd, pub, received)
}

// TestFailedHeldPublishIsADeadLetter: a peer process subscribes through a
// window of 1, SlowDropOldest, and reads. Stopped with SIGSTOP, its link
// filled, publishes take all the subscription's credit and wait on the
// link; one more publish finds no credit and is held, its Publish
// returning nil. When the waiting publishes give up, their credit comes
// back and the held publish is sent from the hold: its send waits out its
// bound on the full link and fails. It is then a dead letter with
// ErrDeadline, and its credit is the subscription's again: once the peer
// reads again, the next publish reaches it, and none of the failed ones
// ever does.
func TestFailedHeldPublishIsADeadLetter(t *testing.T) {
	cmd, tr := startFrozenPeer(t, "tcp", peerReadEnv+"=1", fmt.Sprintf("%s=%d", peerPolicyEnv, bus.SlowDropOldest))
	pub := linkedBus(t, bus.WithName("publisher"), bus.WithTransport(tr), bus.WithSendTimeout(200*time.Millisecond))
	dead, err := pub.Subscribe(context.Background(), bus.DeadLetterSubject, bus.WithWindow(1024))
	if err != nil {
		t.Fatal(err)
	}
	received, full := readerReads(t, pub)
	stopAndFill(t, cmd, pub)

	// Publishes that take the credit and wait on the full link until
	// stopped, each too big for what room a tell left.
	waiting, stop := context.WithTimeout(context.Background(), time.Minute)
	defer stop()
	ended := make(chan error, full)
	for i := range full {
		go func() { ended <- pub.PublishContext(waiting, "ticks.a", fmt.Sprintf("waiting %d %0512d", i, 0)) }()
	}
	eventually(t, "the credit taken by the waiting publishes", func() error {
		if _, _, credit := bus.PeerHeld(pub); credit != 0 {
			return fmt.Errorf("credit %d", credit)
		}
		return nil
	})
	if err := pub.Publish("ticks.a", "held"); err != nil {
		t.Fatalf("a publish without credit to a SlowDropOldest subscription: %v, want it held", err)
	}
	if counted, held, _ := bus.PeerHeld(pub); counted != 1 || len(held) != 1 || held[0] != 1 {
		t.Fatalf("%d held (%v), want 1", counted, held)
	}
	if n := len(ended); n != 0 {
		t.Fatalf("%d of the waiting publishes ended before they were stopped: the test tests nothing", n)
	}
	stop()
	for range full {
		var pe *bus.PublishError
		if err := <-ended; !errors.As(err, &pe) || len(pe.Missed) != 1 || !errors.Is(pe.Missed[0].Err, bus.ErrCanceled) {
			t.Fatalf("a publish waiting on a stopped peer: %v, want a PublishError missing its subscription", err)
		}
	}

	// The held publish goes out on the credit given back, and fails.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute) // a hang detector
	defer cancel()
	for {
		m, err := dead.Next(ctx)
		if err != nil {
			t.Fatalf("no dead letter of the held publish: %v", err)
		}
		if d := m.Msg.(bus.DeadLetter); d.Msg == "held" {
			if !errors.Is(d.Reason, bus.ErrDeadline) {
				t.Fatalf("the held publish a dead letter with %v, want ErrDeadline", d.Reason)
			}
			break
		}
	}
	eventually(t, "nothing held and every credit back", func() error {
		if counted, held, credit := bus.PeerHeld(pub); counted != 0 || held[0] != 0 || credit != full {
			return fmt.Errorf("%d held (%v), credit %d, want 0 held and credit %d", counted, held, credit, full)
		}
		return nil
	})

	resumeAndPublishSecond(t, ctx, cmd, pub, received)
}

// TestFrozenPeerStarvesNoOtherPeersSubscriber: a peer process subscribes
// through a window of 1 and is stopped with SIGSTOP, its link filled; a
// node on another link subscribes through a window of 1 and reads. Every
// publish takes the stopped peer's credit and waits out its bound on its
// link; the reading subscriber still gets every message, in order, and
// every Publish returns a *PublishError naming the stopped peer's
// subscription alone, with ErrDeadline, its credit given back each time.
func TestFrozenPeerStarvesNoOtherPeersSubscriber(t *testing.T) {
	cmd, pub, reader, sub := frozenBesideReader(t, 100*time.Millisecond)
	_, _, full := bus.PeerHeld(pub)
	stopAndFill(t, cmd, pub)

	const sent = 20
	got := readInOrder(sub, sent)
	for i := range sent {
		err := pub.Publish("ticks.a", i)
		var pe *bus.PublishError
		if !errors.As(err, &pe) || len(pe.Missed) != 1 || pe.Missed[0].Pattern != "ticks.>" || !errors.Is(pe.Missed[0].Err, bus.ErrDeadline) {
			t.Fatalf("publish %d: %v, want a PublishError missing the stopped peer's subscription alone with ErrDeadline", i, err)
		}
		if pe.Missed[0].Node == reader.NodeID() {
			t.Fatalf("publish %d missed the reading subscriber: %v", i, err)
		}
	}
	if err := <-got; err != nil {
		t.Fatalf("the reading subscriber, beside a stopped peer's: %v", err)
	}
	eventually(t, "every window whole again", func() error {
		if _, _, credit := bus.PeerHeld(pub); credit != full {
			return fmt.Errorf("credit %d, %d before the publishes", credit, full)
		}
		return nil
	})
}

// TestFrozenPeerDelaysNoOtherPeersPublish: a peer process subscribes and
// is stopped with SIGSTOP, its link filled; a node on another link
// subscribes and reads. Each Publish, bounded by a ctx far longer than the
// test waits, reaches the reading subscriber while it still waits for room
// on the stopped peer's link: sends to different peers do not wait on each
// other, whichever peer the publish comes to first. Once its ctx is
// cancelled the Publish returns a *PublishError naming the stopped peer's
// subscription alone.
func TestFrozenPeerDelaysNoOtherPeersPublish(t *testing.T) {
	cmd, pub, reader, sub := frozenBesideReader(t, 200*time.Millisecond)
	stopAndFill(t, cmd, pub)

	// Each peer comes first in about half the publishes.
	for i := range 8 {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		res := make(chan error, 1)
		go func() { res <- pub.PublishContext(ctx, "ticks.a", i) }()
		got, stop := context.WithTimeout(context.Background(), 30*time.Second) // a hang detector
		m, err := sub.Next(got)
		stop()
		if err != nil || m.Msg != i {
			cancel()
			t.Fatalf("the reading subscriber, while publish %d waited on the stopped peer: %v, %v", i, m.Msg, err)
		}
		select {
		case err := <-res:
			t.Fatalf("publish %d returned before its ctx ended: %v; it did not wait on the stopped peer, so the test tests nothing", i, err)
		default:
		}
		cancel()
		err = <-res
		var pe *bus.PublishError
		if !errors.As(err, &pe) || len(pe.Missed) != 1 || pe.Missed[0].Node == reader.NodeID() || !errors.Is(err, bus.ErrCanceled) {
			t.Fatalf("publish %d: %v, want a PublishError missing the stopped peer's subscription alone", i, err)
		}
	}
}

// readerReads registers on pub the actor "got" that the reading peer
// process (peerReadEnv) tells each message it reads, publishes "first" to
// it and waits until it is read and its credit granted back. It returns
// what "got" has received, as it goes, and the credit of a whole window.
func readerReads(t *testing.T, pub *bus.Bus) (received func() []any, full uint64) {
	t.Helper()
	var (
		mu  sync.Mutex
		got []any
	)
	if _, err := pub.Register("got", bus.ActorFunc(func(_ *bus.Context, msg any) error {
		if _, ok := msg.(string); !ok {
			return nil // lifecycle
		}
		mu.Lock()
		got = append(got, msg)
		mu.Unlock()
		return nil
	})); err != nil {
		t.Fatal(err)
	}
	received = func() []any {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(got)
	}
	eventually(t, "the subscription announced", func() error {
		if n, _ := bus.RemoteSubs(pub); n < 1 {
			return errors.New("not yet")
		}
		return nil
	})
	waitFor(t, pub, "sink")
	if err := pub.Publish("ticks.a", "first"); err != nil {
		t.Fatalf("first publish: %v", err)
	}
	// Read, and its credit granted back: the window whole.
	eventually(t, "the first publish read and its credit back", func() error {
		_, _, credit := bus.PeerHeld(pub)
		if r := received(); len(r) != 1 || credit == 0 {
			return fmt.Errorf("received %v, credit %d", r, credit)
		}
		full = credit
		return nil
	})
	return received, full
}

// stopAndFill stops the peer process cmd and fills pub's link to it with
// tells to its "sink" until a tell waits out its bound: the peer reads
// nothing more.
func stopAndFill(t *testing.T, cmd *exec.Cmd, pub *bus.Bus) {
	t.Helper()
	if err := cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	for _, msg := range []any{make([]byte, 1<<20), make([]byte, 1<<10), ""} {
		var err error
		for i := 0; err == nil; i++ {
			if i == 100_000 {
				t.Fatal("a stopped peer took 100,000 tells")
			}
			err = pub.Tell("sink", msg)
		}
		if !errors.Is(err, bus.ErrDeadline) {
			t.Fatalf("tell to a stopped peer: %v, want ErrDeadline", err)
		}
	}
}

// frozenBesideReader starts a peer process subscribed to "ticks.>" through
// a window of 1 (to be stopped), a publisher linked to it over TCP whose
// sends are bounded by sendTimeout, and a reader node on another link of
// the publisher subscribed to "ticks.>" through a window of 1; it returns
// once the publisher knows both subscriptions and the peer's sink.
func frozenBesideReader(t *testing.T, sendTimeout time.Duration) (*exec.Cmd, *bus.Bus, *bus.Bus, *bus.Subscription) {
	t.Helper()
	cmd, tr := startFrozenPeer(t, "tcp", peerReadEnv+"=1")
	lt := netbus.New(netbus.Config{Listen: []string{"tcp://127.0.0.1:0"}})
	pub := linkedBus(t, bus.WithName("publisher"), bus.WithTransport(tr), bus.WithTransport(lt), bus.WithSendTimeout(sendTimeout))
	reader := linkedBus(t, bus.WithName("reader"), bus.WithTransport(netbus.New(netbus.Config{Peers: lt.Addrs()})))
	sub, err := reader.Subscribe(context.Background(), "ticks.>", bus.WithWindow(1))
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "both subscriptions announced", func() error {
		if n, _ := bus.RemoteSubs(pub); n < 2 {
			return fmt.Errorf("%d announced", n)
		}
		return nil
	})
	waitFor(t, pub, "sink")
	return cmd, pub, reader, sub
}

// resumeAndPublishSecond lets the stopped peer go on, waits for its link
// to drain, publishes "second", and checks that the peer's subscriber read
// "first" and "second" alone: none of the publishes that failed to send
// went out.
func resumeAndPublishSecond(t *testing.T, ctx context.Context, cmd *exec.Cmd, pub *bus.Bus, received func() []any) {
	t.Helper()
	if err := cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	// The link drains; then the subscriber has its window again.
	if _, err := pub.Ask(ctx, "sink", "drained"); err != nil {
		t.Fatalf("ask after the peer went on: %v", err)
	}
	if err := pub.PublishContext(ctx, "ticks.a", "second"); err != nil {
		t.Fatalf("publish once the peer reads again: %v", err)
	}
	eventually(t, "the second publish read", func() error {
		if r := received(); len(r) != 2 {
			return fmt.Errorf("received %v", r)
		}
		return nil
	})
	if r := received(); r[0] != "first" || r[1] != "second" {
		t.Fatalf("received %v, want [first second]: a publish that failed to send went out", r)
	}
}
