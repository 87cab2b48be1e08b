package bus_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/xbus-dev/xbus/bus"
	"github.com/xbus-dev/xbus/mailbox"
	"github.com/xbus-dev/xbus/netbus"
)

// bigMailbox holds every ask of TestAskSlotsFreedOnce at once.
var bigMailbox = mailbox.Options{Capacity: 1 << 12}

// TestStaleRepliesAreIgnored: an ask's correlation id names a slot of the
// asker's table and the slot's arming, so a slot is reused by later asks
// to the same peer. The asked peer itself lies here: it replays a reply to
// an ask that was answered, answers an ask whose asker gave up once its
// slot carries another ask, answers twice, and answers with the id of the
// next ask before that ask exists. None completes an ask; each ask takes
// only the reply sent for it.
func TestStaleRepliesAreIgnored(t *testing.T) {
	at := netbus.New(netbus.Config{Listen: []string{"tcp://127.0.0.1:0"}})
	a := linkedBus(t, bus.WithName("a"), bus.WithTransport(at))
	bt := newSpy(netbus.Config{Peers: at.Addrs()})
	b := linkedBus(t, bus.WithName("b"), bus.WithTransport(bt))
	liar := <-bt.links // B's link to A: its replies are what A takes

	// B's actor never answers: every reply A gets is one the test sends.
	if _, err := b.Register("hold", bus.ActorFunc(func(ctx *bus.Context, msg any) error {
		if ctx.IsAsk() {
			ctx.Promise()
		}
		return nil
	})); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Register("echo", bus.ActorFunc(echo)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, a, "hold")
	waitFor(t, b, "echo")

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	types := bus.NewTypes()
	reply := func(kind bus.Kind, corr uint64, msg any) {
		t.Helper()
		env := &bus.Envelope{Kind: kind, Corr: corr, Msg: msg}
		body, err := types.EncodeBody(liar.Codec(), env, nil)
		if err != nil {
			t.Fatal(err)
		}
		env.Body = body
		if err := liar.Send(ctx, env); err != nil {
			t.Fatal(err)
		}
	}
	// Envelopes of one link arrive in order: once B's ask through it is
	// answered, A has taken every reply sent before it.
	seen := func() {
		t.Helper()
		if _, err := b.Ask(ctx, "echo", "sync"); err != nil {
			t.Fatal(err)
		}
	}
	type outcome struct {
		reply any
		err   error
	}
	// ask sends an ask from A with actx and returns its id as B received
	// it and where its outcome will come.
	ask := func(actx context.Context) (uint64, chan outcome) {
		t.Helper()
		n := len(bt.corrs())
		out := make(chan outcome, 1)
		go func() {
			r, err := a.Ask(actx, "hold", "q")
			out <- outcome{r, err}
		}()
		eventually(t, "B holds the ask", func() error {
			if len(bt.corrs()) == n {
				return errors.New("not yet")
			}
			return nil
		})
		return bt.corrs()[n], out
	}
	pending := func(what string, out chan outcome) {
		t.Helper()
		select {
		case o := <-out:
			t.Fatalf("%s: the ask completed with %v, %v", what, o.reply, o.err)
		default:
		}
	}
	answered := func(out chan outcome, want string) {
		t.Helper()
		if o := <-out; o.err != nil || o.reply != want {
			t.Fatalf("the ask completed with %v, %v; want %q", o.reply, o.err, want)
		}
	}

	first, out := ask(ctx)
	reply(bus.KindReply, first, "first")
	answered(out, "first")

	second, out := ask(ctx)
	if second == first {
		t.Fatalf("two asks carried one id, %x", first)
	}
	reply(bus.KindReply, first, "replayed")
	reply(bus.KindError, first, bus.ErrNoRoute)
	seen()
	pending("a replayed reply", out)
	reply(bus.KindReply, second, "second")
	answered(out, "second")

	next := bus.NextAskID(a)
	reply(bus.KindReply, next, "early") // before any ask carries the id
	reply(bus.KindReply, second, "twice")
	seen()
	third, out := ask(ctx)
	if third != next {
		t.Fatalf("the ask carried %x, not the id %x its slot promised", third, next)
	}
	reply(bus.KindReply, second, "twice again")
	seen()
	pending("a reply sent before the ask, or a second reply to another", out)
	reply(bus.KindReply, third, "third")
	answered(out, "third")

	gctx, giveUp := context.WithCancel(ctx)
	fourth, out := ask(gctx)
	giveUp()
	if o := <-out; !errors.Is(o.err, bus.ErrCanceled) {
		t.Fatalf("an ask whose asker gave up completed with %v, %v", o.reply, o.err)
	}
	fifth, out := ask(ctx)
	reply(bus.KindReply, fourth, "late")
	seen()
	pending("a reply to an ask whose asker gave up", out)
	reply(bus.KindReply, fifth, "fifth")
	answered(out, "fifth")

	if total, free, twice := bus.AskSlots(a); free != total || twice != 0 {
		t.Fatalf("ask slots: %d free of %d, %d listed twice; want all free once", free, total, twice)
	}
	if total, _, _ := bus.AskSlots(a); total == 0 {
		t.Fatal("A's asks to B took no slot of its table")
	}
}

// TestAskSlotsFreedOnce: asks to a peer whose askers give up at any moment
// (their deadline racing the reply), actors' asks whose context ends, and
// asks in flight when the peer goes away: once every one has ended, every
// slot of the asker's table is free, each once, and the table holds no
// more slots than asks were in flight at once.
func TestAskSlotsFreedOnce(t *testing.T) {
	at := netbus.New(netbus.Config{Listen: []string{"tcp://127.0.0.1:0"}})
	a := linkedBus(t, bus.WithName("a"), bus.WithTransport(at))
	b := linkedBus(t, bus.WithName("b"), bus.WithTransport(netbus.New(netbus.Config{Peers: at.Addrs()})))
	if _, err := b.Register("slow", bus.ActorFunc(func(ctx *bus.Context, msg any) error {
		if !ctx.IsAsk() {
			return nil
		}
		p := ctx.Promise()
		d := time.Duration(rand.IntN(2000)) * time.Microsecond
		time.AfterFunc(d, func() { p.Reply(msg) })
		return nil
	}), bus.WithMailbox(bigMailbox)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, a, "slow")

	const askers, asks = 16, 40
	var wg sync.WaitGroup
	for range askers {
		wg.Go(func() {
			for range asks {
				d := time.Duration(rand.IntN(2500)) * time.Microsecond
				ctx, cancel := context.WithTimeout(context.Background(), d)
				_, _ = a.Ask(ctx, "slow", "q")
				cancel()
			}
		})
	}
	// An actor's asks, each given up at a moment of its own.
	done := make(chan struct{})
	var left sync.WaitGroup
	left.Add(askers * asks)
	if _, err := a.Register("asker", bus.ActorFunc(func(c *bus.Context, msg any) error {
		if _, ok := msg.(int); !ok {
			return nil
		}
		d := time.Duration(rand.IntN(2500)) * time.Microsecond
		ctx, cancel := context.WithTimeout(context.Background(), d)
		c.Ask(ctx, "slow", "q", func(any, error) { cancel(); left.Done() })
		return nil
	}), bus.WithMailbox(bigMailbox)); err != nil {
		t.Fatal(err)
	}
	for i := range askers * asks {
		if err := a.Tell("asker", i); err != nil {
			t.Fatal(err)
		}
	}
	go func() { left.Wait(); close(done) }()
	wg.Wait()
	<-done

	// Asks in flight when the peer goes: each fails, and frees its slot.
	var gone sync.WaitGroup
	for range askers {
		gone.Go(func() { _, _ = a.Ask(context.Background(), "slow", "q") })
	}
	time.Sleep(time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := b.Close(ctx); err != nil {
		t.Fatal(err)
	}
	gone.Wait()

	eventually(t, "every slot free", func() error {
		if total, free, twice := bus.AskSlots(a); free != total || twice != 0 {
			return fmt.Errorf("%d free of %d, %d listed twice", free, total, twice)
		}
		return nil
	})
	if total, _, _ := bus.AskSlots(a); total > 2*(askers*asks+2*askers) {
		t.Fatalf("the table has %d slots for at most %d asks in flight at once", total, askers*asks+2*askers)
	}
}
