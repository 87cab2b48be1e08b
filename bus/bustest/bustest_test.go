package bustest_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/xbus-dev/xbus/bus"
	"github.com/xbus-dev/xbus/bus/bustest"
	"github.com/xbus-dev/xbus/codec"
	"github.com/xbus-dev/xbus/mailbox"
)

// newBus starts a bus on tr and closes it when t ends.
func newBus(t *testing.T, tr bus.Transport, opts ...bus.Option) *bus.Bus {
	t.Helper()
	if tr != nil {
		opts = append(opts, bus.WithTransport(tr))
	}
	b, err := bus.New(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := b.Close(ctx); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return b
}

// kitPair links A and B through a network of their own; A keeps B linked,
// dialing again quickly after a partition heals.
func kitPair(t *testing.T, a, b []bus.Option) (bustest.Pair, *bustest.Network) {
	n := bustest.NewNetwork()
	B := newBus(t, n.Transport(bustest.Config{Addr: "b", Codec: codec.Binary()}), b...)
	A := newBus(t, n.Transport(bustest.Config{Addr: "a", Peers: []string{"mem://b"}, Codec: codec.Binary()}),
		append(a, bus.WithBackoff(time.Millisecond, 20*time.Millisecond))...)
	return bustest.Pair{
		A: A, B: B,
		Break: func() { n.Partition("a", "b") },
		Heal:  func() { n.Heal("a", "b") },
	}, n
}

func TestTransport(t *testing.T) {
	bustest.TestTransport(t, func(t *testing.T, a, b []bus.Option) bustest.Pair {
		p, _ := kitPair(t, a, b)
		return p
	})
}

// TestTransportDelayed runs the suite with every envelope a millisecond on
// its way: order and outcomes must not depend on timing.
func TestTransportDelayed(t *testing.T) {
	bustest.TestTransport(t, func(t *testing.T, a, b []bus.Option) bustest.Pair {
		p, n := kitPair(t, a, b)
		n.SetDelay(time.Millisecond)
		return p
	})
}

// TestInProcess runs the cases that apply to two actors of one bus.
func TestInProcess(t *testing.T) {
	bustest.RunInProcess(t, func(t *testing.T, a, _ []bus.Option) bustest.Pair {
		b := newBus(t, nil, a...)
		return bustest.Pair{A: b, B: b}
	})
}

// twoNodes is a network with nodes a and b, a keeping b linked, and an echo
// actor on b that a has learned of.
func twoNodes(t *testing.T, cfg bustest.Config) (n *bustest.Network, a, b *bus.Bus) {
	t.Helper()
	n = bustest.NewNetwork()
	cfg.Addr = "b"
	b = newBus(t, n.Transport(cfg))
	cfg.Addr, cfg.Peers = "a", []string{"b"}
	a = newBus(t, n.Transport(cfg))
	if _, err := b.Register("echo", bus.ActorFunc(func(c *bus.Context, msg any) error {
		if c.IsAsk() {
			return c.Reply(msg)
		}
		return nil
	})); err != nil {
		t.Fatal(err)
	}
	waitFor(t, a, "echo")
	return n, a, b
}

func waitFor(t *testing.T, b *bus.Bus, name string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := b.WaitFor(ctx, name); err != nil {
		t.Fatalf("%s never reachable: %v", name, err)
	}
}

// TestDelay: under fake time, an ask's round trip takes exactly twice the
// network's delay.
func TestDelay(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n, a, _ := twoNodes(t, bustest.Config{})
		n.SetDelay(50 * time.Millisecond)
		start := time.Now()
		if r, err := a.Ask(context.Background(), "echo", "hi"); err != nil || r != "hi" {
			t.Fatalf("ask: %v, %v", r, err)
		}
		if d := time.Since(start); d != 100*time.Millisecond {
			t.Fatalf("round trip took %v of fake time, want 100ms", d)
		}
	})
}

// TestLossBreaksTheLink: a lost envelope is never silent: the link goes
// down, the ask that was lost fails with ErrPeerGone (wrapping ErrLost), and
// the keeper links again once the network stops losing.
func TestLossBreaksTheLink(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n, a, _ := twoNodes(t, bustest.Config{})
		synctest.Wait() // what the link carries as it comes up (names, weights) has arrived: the ask is the first envelope lost
		n.SetLoss(1)
		_, err := a.Ask(context.Background(), "echo", "lost")
		if !errors.Is(err, bus.ErrPeerGone) || !errors.Is(err, bustest.ErrLost) {
			t.Fatalf("lost ask: %v, want ErrPeerGone wrapping ErrLost", err)
		}
		n.SetLoss(0)
		// The ask fails as the link breaks; the bus takes the link down
		// after. Until it has, the name still points at the broken link,
		// so wait for that before waiting for the name to come back.
		synctest.Wait()
		waitFor(t, a, "echo")
		if r, err := a.Ask(context.Background(), "echo", "again"); err != nil || r != "again" {
			t.Fatalf("ask after the loss: %v, %v", r, err)
		}
	})
}

// TestPartition: a partition fails the ask in flight, makes names
// unreachable and refuses dials both ways until Heal; then the keeper links
// again.
func TestPartition(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := bustest.NewNetwork()
		trB := n.Transport(bustest.Config{Addr: "b"})
		b := newBus(t, trB)
		a := newBus(t, n.Transport(bustest.Config{Addr: "a", Peers: []string{"b"}}))
		got := make(chan struct{})
		release := make(chan struct{})
		defer close(release)
		b.Register("hold", bus.ActorFunc(func(c *bus.Context, msg any) error {
			if msg == "hold" {
				close(got)
				<-release
			}
			return nil
		}))
		waitFor(t, a, "hold")
		asked := make(chan error, 1)
		go func() {
			_, err := a.Ask(context.Background(), "hold", "hold")
			asked <- err
		}()
		<-got
		n.Partition("a", "b")
		if err := <-asked; !errors.Is(err, bus.ErrPeerGone) || !errors.Is(err, bustest.ErrPartitioned) {
			t.Fatalf("ask across the partition: %v, want ErrPeerGone wrapping ErrPartitioned", err)
		}
		if _, err := a.Ask(context.Background(), "hold", "x"); !errors.Is(err, bus.ErrNoRoute) {
			t.Fatalf("ask while partitioned: %v, want ErrNoRoute", err)
		}
		if _, err := trB.Dial(context.Background(), "a"); !errors.Is(err, bustest.ErrPartitioned) {
			t.Fatalf("dial across the partition: %v, want ErrPartitioned", err)
		}
		time.Sleep(time.Second) // the keeper retries meanwhile, in vain
		if _, err := a.Ask(context.Background(), "hold", "x"); !errors.Is(err, bus.ErrNoRoute) {
			t.Fatalf("ask while partitioned, later: %v, want ErrNoRoute", err)
		}
		n.Heal("a", "b")
		waitFor(t, a, "hold")
	})
}

// TestKillAndRestart: a killed node's peers see ErrPeerGone wrapping
// ErrKilled; a new node at the same address is linked again.
func TestKillAndRestart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n, a, b := twoNodes(t, bustest.Config{})
		ref, err := b.Register("target", bus.ActorFunc(func(*bus.Context, any) error { return nil }))
		if err != nil {
			t.Fatal(err)
		}
		waitFor(t, a, "target")
		terminated := make(chan bus.Terminated, 1)
		watching := make(chan struct{})
		a.Spawn(bus.ActorFunc(func(c *bus.Context, msg any) error {
			switch m := msg.(type) {
			case bus.Started:
				c.Watch(ref)
				close(watching)
			case bus.Terminated:
				terminated <- m
			}
			return nil
		}))
		<-watching
		n.Kill("b")
		m := <-terminated
		if m.Ref != ref || !errors.Is(m.Reason, bus.ErrPeerGone) || !errors.Is(m.Reason, bustest.ErrKilled) {
			t.Fatalf("terminated: %+v, want %v gone wrapping ErrKilled", m, ref)
		}
		if _, err := a.Ask(context.Background(), "echo", "x"); !errors.Is(err, bus.ErrNoRoute) {
			t.Fatalf("ask to the killed node: %v, want ErrNoRoute", err)
		}
		b2 := newBus(t, n.Transport(bustest.Config{Addr: "b"}))
		b2.Register("echo", bus.ActorFunc(func(c *bus.Context, msg any) error {
			if c.IsAsk() {
				return c.Reply("new")
			}
			return nil
		}))
		waitFor(t, a, "echo")
		if r, err := a.Ask(context.Background(), "echo", "x"); err != nil || r != "new" {
			t.Fatalf("ask to the restarted node: %v, %v", r, err)
		}
	})
}

// TestPause: a paused node reads nothing: a sender blocks once the link's
// queue is full, until its ctx ends; after Resume everything queued arrives
// in order.
func TestPause(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const queue = 4
		n, a, b := twoNodes(t, bustest.Config{QueueLen: queue})
		got := make(chan int, 2*queue+2)
		b.Register("sink", bus.ActorFunc(func(c *bus.Context, msg any) error {
			if v, ok := msg.(int); ok {
				got <- v
			}
			return nil
		}))
		waitFor(t, a, "sink")
		synctest.Wait() // what a sent on linking has arrived
		n.Pause("b")
		// The reader holds one envelope at the pause; the queue the rest.
		for i := range queue + 1 {
			if err := a.Tell("sink", i); err != nil {
				t.Fatalf("tell %d: %v", i, err)
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if err := a.Send(ctx, "sink", queue+1, 0); !errors.Is(err, bus.ErrDeadline) {
			t.Fatalf("send to a paused node with a full queue: %v, want ErrDeadline", err)
		}
		synctest.Wait()
		if len(got) != 0 {
			t.Fatalf("a paused node received %d tells", len(got))
		}
		n.Resume("b")
		for i := range queue + 1 {
			if v := <-got; v != i {
				t.Fatalf("tell #%d is %d after Resume", i, v)
			}
		}
	})
}

// TestUndelivered: what a lossy network swallows with its links is handed
// back to the sending bus (Host.Undelivered), which counts every tell of it
// as a dead letter: each tell is processed, refused to its sender or a dead
// letter, and nothing is left undelivered.
func TestUndelivered(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := bustest.NewNetwork()
		b := newBus(t, n.Transport(bustest.Config{Addr: "b"}))
		a := newBus(t, n.Transport(bustest.Config{Addr: "a", Peers: []string{"b"}}))
		var processed atomic.Int64
		b.Register("sink", bus.ActorFunc(func(c *bus.Context, msg any) error {
			if _, ok := msg.(int); ok {
				processed.Add(1)
			}
			return nil
		}), bus.WithMailbox(mailbox.Options{Capacity: 1 << 12}))
		waitFor(t, a, "sink")
		const sent = 2000
		n.SetLoss(0.01)
		var refused int64
		for i := range sent {
			if err := a.Tell("sink", i); err != nil {
				refused++
			}
		}
		synctest.Wait()
		if n.HandedBack(bus.KindTell) == 0 {
			t.Fatal("a network losing 1% of 2000 tells delivered them all")
		}
		if lost := n.Undelivered(bus.KindTell); lost != 0 {
			t.Fatalf("%d tells accepted and neither delivered nor handed back", lost)
		}
		if a.DeadLetterCount(bus.ErrPeerGone) < n.HandedBack(bus.KindTell) {
			t.Fatalf("%d tells handed back, %d dead letters for a gone peer", n.HandedBack(bus.KindTell), a.DeadLetterCount(bus.ErrPeerGone))
		}
		dead := int64(a.DeadLetters() + b.DeadLetters())
		if got := processed.Load() + refused + dead; got != sent {
			t.Fatalf("processed %d + refused %d + dead letters %d = %d, want %d",
				processed.Load(), refused, dead, got, sent)
		}
	})
}

// TestFrozenPeerStallsNothing: with the peer frozen (Pause) and the link's
// queue full, a Tell fails with ErrDeadline after exactly the bus's send
// timeout, and Register, Subscribe and stopping an actor, which tell the
// peer of the change, return at once: nothing waits on the peer under a
// lock. Under fake time "at once" is exact.
func TestFrozenPeerStallsNothing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const sendTimeout = 2 * time.Second
		n := bustest.NewNetwork()
		b := newBus(t, n.Transport(bustest.Config{Addr: "b", QueueLen: 4}))
		a := newBus(t, n.Transport(bustest.Config{Addr: "a", Peers: []string{"b"}, QueueLen: 4}), bus.WithSendTimeout(sendTimeout))
		b.Register("sink", bus.ActorFunc(func(*bus.Context, any) error { return nil }))
		waitFor(t, a, "sink")
		synctest.Wait()
		n.Pause("b")
		var err error
		var start time.Time
		for i := 0; err == nil; i++ {
			if i == 100 {
				t.Fatal("100 tells to a frozen peer through a queue of 4 all succeeded")
			}
			start = time.Now()
			err = a.Tell("sink", i)
		}
		if !errors.Is(err, bus.ErrDeadline) || time.Since(start) != sendTimeout {
			t.Fatalf("tell to a frozen peer: %v after %v, want ErrDeadline after %v", err, time.Since(start), sendTimeout)
		}
		start = time.Now()
		ref, err := a.Register("x", bus.ActorFunc(func(*bus.Context, any) error { return nil }))
		if err != nil {
			t.Fatal(err)
		}
		sub, err := a.Subscribe(context.Background(), "t.>")
		if err != nil {
			t.Fatal(err)
		}
		if err := a.Stop(ref); err != nil {
			t.Fatal(err)
		}
		sub.Close()
		if d := time.Since(start); d != 0 {
			t.Fatalf("Register, Subscribe, Stop and Close took %v with the peer frozen, want no wait", d)
		}
		n.Resume("b")
	})
}

// TestPeerThatTakesNoRepliesHoldsNoActor: a node that asks and then reads
// nothing (Pause) fills its link with replies; the actor answering it does
// not wait on that link, so another node's ask to the same actor is
// answered at once. Under fake time "at once" is exact.
func TestPeerThatTakesNoRepliesHoldsNoActor(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const queue = 4
		n := bustest.NewNetwork()
		b := newBus(t, n.Transport(bustest.Config{Addr: "b", QueueLen: queue}))
		a := newBus(t, n.Transport(bustest.Config{Addr: "a", Peers: []string{"b"}, QueueLen: queue}))
		c := newBus(t, n.Transport(bustest.Config{Addr: "c", Peers: []string{"b"}, QueueLen: queue}))
		var served atomic.Int64
		b.Register("svc", bus.ActorFunc(func(ctx *bus.Context, msg any) error {
			if !ctx.IsAsk() {
				return nil
			}
			served.Add(1)
			return ctx.Reply(msg)
		}))
		waitFor(t, a, "svc")
		waitFor(t, c, "svc")
		synctest.Wait()
		n.Pause("a")
		t.Cleanup(func() { n.Resume("a") }) // before the buses close
		const asks = 4 * queue
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		for i := range asks {
			go a.Ask(ctx, "svc", i)
		}
		synctest.Wait()
		if got := served.Load(); got != asks {
			t.Fatalf("svc served %d of %d asks from a node that reads no replies", got, asks)
		}
		start := time.Now()
		if v, err := c.Ask(ctx, "svc", "from c"); err != nil || v != "from c" {
			t.Fatalf("ask from c: %v, %v", v, err)
		}
		if d := time.Since(start); d != 0 {
			t.Fatalf("an ask from c waited %v behind replies to a node that reads none, want no wait", d)
		}
	})
}

// countingCodec counts the bodies it encodes.
type countingCodec struct {
	bus.Codec
	appends atomic.Int64
}

func (c *countingCodec) Append(dst []byte, v any) ([]byte, error) {
	c.appends.Add(1)
	return c.Codec.Append(dst, v)
}

// TestPublishEncodesOnce: a publish that goes to several peers over links
// of one codec encodes its body once.
func TestPublishEncodesOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := bustest.NewNetwork()
		cc := &countingCodec{Codec: codec.Binary()}
		b := newBus(t, n.Transport(bustest.Config{Addr: "b", Codec: codec.Binary()}))
		c := newBus(t, n.Transport(bustest.Config{Addr: "c", Codec: codec.Binary()}))
		a := newBus(t, n.Transport(bustest.Config{Addr: "a", Peers: []string{"b", "c"}, Codec: cc}))
		var subs []*bus.Subscription
		for _, x := range []*bus.Bus{b, c} {
			sub, err := x.Subscribe(context.Background(), "t.>")
			if err != nil {
				t.Fatal(err)
			}
			subs = append(subs, sub)
		}
		synctest.Wait() // links up, interest known on a
		if len(a.Links()) != 2 {
			t.Fatalf("a has %d links, want 2", len(a.Links()))
		}
		before := cc.appends.Load()
		if err := a.Publish("t.x", "tick"); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		for i, sub := range subs {
			select {
			case m := <-sub.Messages():
				if m.Msg != "tick" {
					t.Fatalf("subscriber %d got %v", i, m.Msg)
				}
			default:
				t.Fatalf("subscriber %d got nothing", i)
			}
		}
		if got := cc.appends.Load() - before; got != 1 {
			t.Fatalf("a publish to two peers encoded its body %d times, want once", got)
		}
	})
}

// TestStopAbandonedAcrossLink: an actor that blocks on an ask from another
// node and is stopped sees the ask canceled, and once its stop gives up on
// it the remote asker, whose ctx never ends, gets bus.ErrActorStopped (not
// marked as never delivered) and nothing more when the actor replies late.
func TestStopAbandonedAcrossLink(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, a, b := twoNodes(t, bustest.Config{})
		running, release := make(chan struct{}), make(chan struct{})
		sawCancel := make(chan bool, 1)
		ref, err := b.Register("stuck", bus.ActorFunc(func(c *bus.Context, msg any) error {
			if msg != "work" {
				return nil
			}
			close(running)
			<-release
			sawCancel <- c.Canceled()
			return c.Reply("late")
		}), bus.WithShutdownTimeout(time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		waitFor(t, a, "stuck")
		got := make(chan error, 2)
		go func() {
			_, err := a.Ask(context.Background(), "stuck", "work")
			got <- err
		}()
		<-running
		if err := b.Stop(ref); err != nil {
			t.Fatal(err)
		}
		err = <-got
		if !errors.Is(err, bus.ErrActorStopped) || bus.NeverDelivered(err) {
			t.Fatalf("remote ask to an abandoned actor: %v; want bus.ErrActorStopped, not never delivered", err)
		}
		close(release)
		if !<-sawCancel {
			t.Fatal("Context.Canceled was false for an ask whose actor was stopped")
		}
		if r, err := a.Ask(context.Background(), "echo", "after"); err != nil || r != "after" {
			t.Fatalf("ask after the late reply: %v, %v", r, err)
		}
		select {
		case err := <-got:
			t.Fatalf("a second answer: %v", err)
		default:
		}
	})
}
