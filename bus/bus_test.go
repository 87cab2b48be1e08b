package bus

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/xbus-dev/xbus/mailbox"
)

type add struct{ A, B int }

func newBus(t testing.TB, opts ...Option) *Bus {
	t.Helper()
	b, err := New(opts...)
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

var adder = ActorFunc(func(c *Context, msg any) error {
	if m, ok := msg.(add); ok {
		return c.Reply(m.A + m.B)
	}
	return nil
})

func TestAskByNameAndRef(t *testing.T) {
	b := newBus(t)
	ref, err := b.Register("add", adder)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, to := range []any{"add", ref, Ref{Name: "add"}} {
		got, err := AskAs[int](ctx, b, to, add{2, 3})
		if err != nil || got != 5 {
			t.Fatalf("ask %v: got %v, %v; want 5", to, got, err)
		}
	}
	if _, err := AskAs[string](ctx, b, "add", add{1, 1}); !errors.Is(err, ErrWrongType) {
		t.Fatalf("AskAs wrong type: %v", err)
	}
}

// TestRefOfAnotherNodeIsNotLocal sends to Refs that carry a local actor's
// instance id but another node's id, or its name with no id: the first must
// never reach the local actor, the second is placed by name.
func TestRefOfAnotherNodeIsNotLocal(t *testing.T) {
	b := newBus(t)
	got := make(chan any, 4)
	ref, err := b.Register("sink", ActorFunc(func(c *Context, m any) error {
		if _, ok := m.(Started); !ok {
			got <- m
		}
		if c.IsAsk() {
			return c.Reply(m)
		}
		return nil
	}))
	if err != nil {
		t.Fatal(err)
	}
	foreign := Ref{Node: NewNodeID(), Name: ref.Name, ID: ref.ID}
	if err := b.Tell(foreign, "foreign"); !errors.Is(err, ErrNoRoute) {
		t.Errorf("Tell to another node's Ref: %v, want ErrNoRoute", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := b.Ask(ctx, foreign, "foreign"); !errors.Is(err, ErrNoRoute) {
		t.Errorf("Ask to another node's Ref: %v, want ErrNoRoute", err)
	}
	if err := b.Tell(Ref{Name: "sink"}, "by name"); err != nil {
		t.Fatalf("Tell to a Ref with only a name: %v", err)
	}
	if r, err := b.Ask(ctx, Ref{Node: b.NodeID(), ID: ref.ID}, "by id"); err != nil || r != "by id" {
		t.Fatalf("Ask to the Ref's id: %v, %v", r, err)
	}
	for _, want := range []string{"by name", "by id"} {
		if m := <-got; m != want {
			t.Fatalf("actor got %v, want %q", m, want)
		}
	}
}

func TestErrors(t *testing.T) {
	b := newBus(t)
	ctx := context.Background()
	cases := []struct {
		name string
		err  error
		want error
	}{
		{"unknown name", b.Tell("nobody", 1), ErrNoRoute},
		{"empty name", func() error { _, err := b.Register("", adder); return err }(), ErrInvalidName},
		{"wildcard name", func() error { _, err := b.Register("a.*", adder); return err }(), ErrInvalidName},
		{"reserved name", func() error { _, err := b.Register("$x", adder); return err }(), ErrInvalidName},
		{"nil actor", func() error { _, err := b.Register("x", nil); return err }(), ErrNilActor},
		{"nil func actor", func() error { _, err := b.Register("x", ActorFunc(nil)); return err }(), ErrNilActor},
		{"bad address", b.Tell(42, 1), ErrInvalidName},
		{"stale ref", b.Tell(Ref{Node: b.NodeID(), ID: 99999}, 1), ErrNoRoute},
		{"bad pattern", func() error { _, err := b.Subscribe(ctx, "a.>.b"); return err }(), ErrInvalidName},
		{"bad subject", b.Publish("a.*", 1), ErrInvalidName},
	}
	for _, c := range cases {
		if !errors.Is(c.err, c.want) {
			t.Errorf("%s: got %v, want %v", c.name, c.err, c.want)
		}
	}
	b2, _ := New()
	if err := b2.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := b2.Close(ctx); err != nil {
		t.Fatalf("second close: %v", err)
	}
	if _, err := b2.Register("x", adder); !errors.Is(err, ErrClosed) {
		t.Errorf("register after close: %v", err)
	}
	if _, err := b2.Ask(ctx, "x", 1); !errors.Is(err, ErrClosed) {
		t.Errorf("ask after close: %v", err)
	}
	if _, err := New(WithMailboxDefaults(mailbox.Options{Capacity: 100})); err == nil {
		t.Error("capacity 100 accepted")
	}
}

func TestAskDeadline(t *testing.T) {
	b := newBus(t)
	block := make(chan struct{})
	defer close(block)
	b.Register("slow", ActorFunc(func(c *Context, msg any) error {
		if _, ok := msg.(string); ok {
			<-block
		}
		return nil
	}))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	_, err := b.Ask(ctx, "slow", "x")
	if !errors.Is(err, ErrDeadline) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v, want ErrDeadline", err)
	}
}

func TestAskReturnsWhenTargetPanicsOrStops(t *testing.T) {
	b := newBus(t)
	ref, _ := b.Register("p", ActorFunc(func(c *Context, msg any) error {
		switch msg {
		case "panic":
			panic("boom")
		case "error":
			return errors.New("bad")
		case "silent":
			return nil
		case "stop":
			c.Stop()
			return nil
		}
		return nil
	}))
	ctx := context.Background()
	if _, err := b.Ask(ctx, ref, "panic"); !errors.Is(err, ErrActorFailed) {
		t.Fatalf("panic: %v", err)
	}
	if _, err := b.Ask(ctx, ref, "error"); !errors.Is(err, ErrActorFailed) {
		t.Fatalf("error: %v", err)
	}
	if _, err := b.Ask(ctx, ref, "silent"); !errors.Is(err, ErrNoReply) {
		t.Fatalf("silent: %v", err)
	}
	if n := b.DeadLetterCount(ErrActorFailed); n != 2 {
		t.Fatalf("dead letters for failures: %d, want 2", n)
	}
	// Queue asks behind a stop: each must fail, not hang.
	const n = 50
	errs := make(chan error, n)
	gate := make(chan struct{})
	b.Register("gate", ActorFunc(func(c *Context, msg any) error {
		if msg == "hold" {
			<-gate
		}
		if msg == "stop" {
			c.Stop()
		}
		return c.Reply("ok")
	}))
	go b.Tell("gate", "hold")
	time.Sleep(time.Millisecond)
	b.Tell("gate", "stop")
	for range n {
		go func() { _, err := b.Ask(ctx, "gate", "q"); errs <- err }()
	}
	for b.Instances("gate") != nil && func() bool { p := b.placeLocal("gate"); return p == nil || p.mb.Len() < n+1 }() {
		runtime.Gosched()
	}
	close(gate)
	for range n {
		if err := <-errs; err != nil && !errors.Is(err, ErrActorStopped) && !errors.Is(err, ErrNoRoute) {
			t.Fatalf("ask behind stop: %v", err)
		}
	}
}

func TestOrderPerSender(t *testing.T) {
	b := newBus(t)
	const senders, per = 8, 10000
	var last [senders]int
	var bad atomic.Int64
	done := make(chan struct{})
	var count int
	b.Register("sink", ActorFunc(func(c *Context, msg any) error {
		m, ok := msg.([2]int)
		if !ok {
			return nil
		}
		if m[1] != last[m[0]]+1 {
			bad.Add(1)
		}
		last[m[0]] = m[1]
		if count++; count == senders*per {
			close(done)
		}
		return nil
	}))
	var wg sync.WaitGroup
	for s := range senders {
		wg.Go(func() {
			for i := 1; i <= per; i++ {
				if err := b.Tell("sink", [2]int{s, i}); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	<-done
	if bad.Load() != 0 {
		t.Fatalf("%d messages out of order", bad.Load())
	}
}

func TestFullMailboxAccounting(t *testing.T) {
	for _, pol := range []mailbox.Policy{mailbox.Block, mailbox.FailFast, mailbox.DropOldest} {
		t.Run(pol.String(), func(t *testing.T) {
			b := newBus(t)
			var processed atomic.Int64
			ref, _ := b.Register("slow", ActorFunc(func(c *Context, msg any) error {
				if _, ok := msg.(int); ok {
					processed.Add(1)
					if processed.Load()%64 == 0 {
						time.Sleep(50 * time.Microsecond)
					}
				}
				return nil
			}), WithMailbox(mailbox.Options{Capacity: 64, Policy: pol}))
			const n = 100000
			var refused int64
			for i := range n {
				if err := b.Tell(ref, i); err != nil {
					if !errors.Is(err, ErrMailboxFull) {
						t.Fatal(err)
					}
					refused++
				}
			}
			if err := b.Stop(ref); err != nil {
				t.Fatal(err)
			}
			dropped := int64(b.DeadLetterCount(ErrMailboxFull) + b.DeadLetterCount(ErrActorStopped))
			if got := processed.Load() + refused + dropped; got != n {
				t.Fatalf("processed %d + refused %d + dead %d = %d, want %d", processed.Load(), refused, dropped, got, n)
			}
			t.Logf("%s: processed %d, refused %d, dead letters %d", pol, processed.Load(), refused, dropped)
		})
	}
}

func TestWatchAndLifecycle(t *testing.T) {
	b := newBus(t)
	events := make(chan string, 10)
	target, _ := b.Register("target", ActorFunc(func(c *Context, msg any) error {
		events <- fmt.Sprintf("target %T", msg)
		if msg == "stop" {
			c.Stop()
		}
		return nil
	}))
	got := make(chan Terminated, 2)
	b.Spawn(ActorFunc(func(c *Context, msg any) error {
		switch m := msg.(type) {
		case Started:
			c.Watch(target)
			c.Watch(Ref{Node: b.NodeID(), ID: 12345}) // never existed
		case Terminated:
			got <- m
		}
		return nil
	}))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	select {
	case m := <-got:
		if m.Ref.ID != 12345 || !errors.Is(m.Reason, ErrNoRoute) {
			t.Fatalf("terminated for unknown ref: %+v", m)
		}
	case <-ctx.Done():
		t.Fatal("no Terminated for an unknown ref")
	}
	time.Sleep(5 * time.Millisecond) // let the watch register before the stop
	b.Tell(target, "stop")
	select {
	case m := <-got:
		if m.Ref != target || m.Reason != nil {
			t.Fatalf("terminated: %+v", m)
		}
	case <-ctx.Done():
		t.Fatal("no Terminated for a stopped actor")
	}
	want := []string{"target bus.Started", "target string", "target bus.Stopping"}
	for _, w := range want {
		if e := <-events; e != w {
			t.Fatalf("lifecycle: got %q, want %q", e, w)
		}
	}
}

func TestContextAskDoesNotBlockActor(t *testing.T) {
	b := newBus(t)
	b.Register("add", adder)
	res := make(chan any, 1)
	b.Spawn(ActorFunc(func(c *Context, msg any) error {
		if _, ok := msg.(Started); ok {
			self := c.Self()
			c.Ask(context.Background(), "add", add{20, 22}, func(reply any, err error) {
				if c.Self() != self {
					res <- "callback ran off the actor"
				}
				res <- reply
			})
		}
		return nil
	}))
	if r := <-res; r != 42 {
		t.Fatalf("async ask: %v", r)
	}
}

func TestSubscribeWildcards(t *testing.T) {
	b := newBus(t)
	ctx := context.Background()
	all, _ := b.Subscribe(ctx, "prices.>")
	one, _ := b.Subscribe(ctx, "prices.*")
	b.Publish("prices.eur", 1)
	b.Publish("prices.eur.spot", 2)
	b.Publish("other", 3)
	for _, want := range []int{1, 2} {
		m, err := all.Next(ctx)
		if err != nil || m.Msg != want {
			t.Fatalf("prices.>: %v %v", m, err)
		}
	}
	if m, _ := one.Next(ctx); m.Msg != 1 || m.Subject != "prices.eur" {
		t.Fatalf("prices.*: %v", m)
	}
	select {
	case m := <-one.Messages():
		t.Fatalf("prices.* got %v", m)
	default:
	}
	one.Close()
	if _, err := one.Next(ctx); !errors.Is(err, ErrClosed) {
		t.Fatalf("next after close: %v", err)
	}
}

func TestSlowConsumerPolicies(t *testing.T) {
	b := newBus(t)
	ctx := context.Background()
	drop, _ := b.Subscribe(ctx, "t", WithWindow(4), WithSlowPolicy(SlowDropOldest))
	cut, _ := b.Subscribe(ctx, "t", WithWindow(4), WithSlowPolicy(SlowCut))
	for i := range 10 {
		if err := b.Publish("t", i); err != nil {
			t.Fatal(err)
		}
	}
	if drop.Dropped() != 6 {
		t.Fatalf("drop-oldest dropped %d, want 6", drop.Dropped())
	}
	for want := 6; want < 10; want++ {
		if m, _ := drop.Next(ctx); m.Msg != want {
			t.Fatalf("drop-oldest kept %v, want %d", m.Msg, want)
		}
	}
	for range 4 {
		<-cut.Messages()
	}
	if _, err := cut.Next(ctx); !errors.Is(err, ErrSlowConsumer) {
		t.Fatalf("cut: %v", err)
	}
	if n := b.DeadLetterCount(ErrSlowConsumer); n != 7 {
		t.Fatalf("slow-consumer dead letters %d, want 7 (6 dropped + 1 cut)", n)
	}
	blocked, _ := b.Subscribe(ctx, "b", WithWindow(1))
	b.Publish("b", 1)
	tctx, cancel := context.WithTimeout(ctx, 10*time.Millisecond)
	defer cancel()
	if err := b.PublishContext(tctx, "b", 2); !errors.Is(err, ErrDeadline) {
		t.Fatalf("blocked publish: %v", err)
	}
	blocked.Close()
}

func TestDeadLetterSubscription(t *testing.T) {
	b := newBus(t)
	ctx := context.Background()
	sub, err := b.Subscribe(ctx, DeadLetterSubject)
	if err != nil {
		t.Fatal(err)
	}
	ref, _ := b.Register("f", ActorFunc(func(c *Context, msg any) error {
		if msg == "bad" {
			return errors.New("nope")
		}
		return nil
	}))
	b.Tell(ref, "bad")
	m, err := sub.Next(ctx)
	if err != nil {
		t.Fatal(err)
	}
	dl := m.Msg.(DeadLetter)
	if dl.Msg != "bad" || dl.To != ref || !errors.Is(dl.Reason, ErrActorFailed) {
		t.Fatalf("dead letter: %+v", dl)
	}
}

func TestCloseDrains(t *testing.T) {
	b, _ := New()
	var processed atomic.Int64
	b.Register("w", ActorFunc(func(c *Context, msg any) error {
		if _, ok := msg.(int); ok {
			time.Sleep(10 * time.Microsecond)
			processed.Add(1)
		}
		return nil
	}))
	for i := range 1000 {
		b.Tell("w", i)
	}
	if err := b.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if processed.Load() != 1000 {
		t.Fatalf("close drained %d of 1000", processed.Load())
	}
	// A deadline that ends first fails what is left, and every Ask returns.
	b2, _ := New()
	hold := make(chan struct{})
	b2.Register("stuck", ActorFunc(func(c *Context, msg any) error {
		if msg == "hold" {
			<-hold
		}
		return c.Reply(msg)
	}))
	b2.Tell("stuck", "hold")
	errs := make(chan error, 10)
	for range 10 {
		go func() { _, err := b2.Ask(context.Background(), "stuck", "q"); errs <- err }()
	}
	time.Sleep(10 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := b2.Close(ctx); err == nil {
		t.Fatal("close with a stuck actor reported no error")
	}
	for range 10 {
		if err := <-errs; err == nil {
			t.Fatal("an ask succeeded though its actor was stuck")
		}
	}
	close(hold)
}

func panicsHere() { panic("deep") }

func TestPanicErrorStack(t *testing.T) {
	b := newBus(t)
	sub, _ := b.Subscribe(context.Background(), DeadLetterSubject)
	ref, _ := b.Spawn(ActorFunc(func(c *Context, msg any) error {
		if msg == "go" {
			panicsHere()
		}
		return nil
	}))
	b.Tell(ref, "go")
	m, err := sub.Next(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var pe *PanicError
	if !errors.As(m.Msg.(DeadLetter).Reason, &pe) || pe.Value != "deep" {
		t.Fatalf("reason %v is not the panic", m.Msg.(DeadLetter).Reason)
	}
	if st := string(pe.Stack()); !strings.Contains(st, "bus.panicsHere") {
		t.Fatalf("stack does not name the panicking function:\n%s", st)
	}
}

func TestCloseIdleActorsAllocatesNoRings(t *testing.T) {
	b, _ := New()
	const n = 10000
	for range n {
		if _, err := b.Spawn(ActorFunc(func(*Context, any) error { return nil })); err != nil {
			t.Fatal(err)
		}
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	if err := b.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&after)
	// A ring of the default capacity is tens of KiB; stopping idle actors
	// must not allocate one each.
	if per := (after.TotalAlloc - before.TotalAlloc) / n; per > 4096 {
		t.Fatalf("closing %d idle actors allocated %d bytes each", n, per)
	}
}

// TestIdleActorFootprint holds the memory budget of an idle actor: 20,000
// actors that have handled Started and wait for nothing add under 600 bytes
// each to the live heap.
func TestIdleActorFootprint(t *testing.T) {
	b := newBus(t)
	const n = 20_000
	var started atomic.Int64
	all := make(chan struct{})
	idle := ActorFunc(func(_ *Context, m any) error {
		if _, ok := m.(Started); ok && started.Add(1) == n {
			close(all)
		}
		return nil
	})
	live := func() uint64 {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	refs := make([]Ref, 0, n)
	before := live()
	for range n {
		ref, err := b.Spawn(idle)
		if err != nil {
			t.Fatal(err)
		}
		refs = append(refs, ref)
	}
	<-all
	per := float64(live()-before) / n
	runtime.KeepAlive(refs)
	t.Logf("%.0f bytes per idle actor", per)
	if per >= 600 {
		t.Fatalf("an idle actor costs %.0f bytes, want under 600", per)
	}
}

func TestLocalCancelAndPromise(t *testing.T) {
	b := newBus(t)
	working, sawCancel := make(chan struct{}), make(chan struct{})
	var promise *Promise
	gotPromise := make(chan struct{})
	b.Register("w", ActorFunc(func(c *Context, msg any) error {
		switch msg {
		case "work":
			close(working)
			for !c.Canceled() {
				time.Sleep(time.Millisecond)
			}
			close(sawCancel)
		case "later":
			promise = c.Promise()
			close(gotPromise)
		}
		return nil
	}))
	// The asker gives up once the actor is at work: an ask abandoned before
	// the actor takes it is dropped unseen, so a deadline could leave the
	// actor never started and this test waiting for it.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-working
		cancel()
	}()
	if _, err := b.Ask(ctx, "w", "work"); !errors.Is(err, ErrCanceled) {
		t.Fatalf("ask: %v", err)
	}
	<-sawCancel // the actor saw its asker give up
	// A promised reply can come later, from another goroutine.
	done := make(chan error, 1)
	go func() {
		r, err := b.Ask(context.Background(), "w", "later")
		if err == nil && r != "from elsewhere" {
			err = fmt.Errorf("reply %v", r)
		}
		done <- err
	}()
	<-gotPromise
	go promise.Reply("from elsewhere") // answered later, off the actor
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// stopOnFailure is a Supervisor that stops any child that fails.
type stopOnFailure struct {
	child chan Ref
}

func (s *stopOnFailure) Receive(c *Context, msg any) error {
	if _, ok := msg.(Started); ok {
		ref, err := c.Spawn("child", ActorFunc(func(c *Context, msg any) error {
			if msg == "fail" {
				return errors.New("child broke")
			}
			return nil
		}))
		if err != nil {
			return err
		}
		s.child <- ref
	}
	return nil
}

func (s *stopOnFailure) ChildFailed(c *Context, f Failure) error {
	return c.StopChild(f.Ref)
}

func TestFailureReachesParentAndWatchers(t *testing.T) {
	b := newBus(t)
	sup := &stopOnFailure{child: make(chan Ref, 1)}
	b.Register("sup", sup)
	child := <-sup.child
	terminated := make(chan Terminated, 1)
	b.Spawn(ActorFunc(func(c *Context, msg any) error {
		switch m := msg.(type) {
		case Started:
			c.Watch(child)
			c.Tell(child, "fail")
		case Terminated:
			terminated <- m
		}
		return nil
	}))
	select {
	case m := <-terminated:
		if m.Ref != child || m.Reason == nil || m.Reason.Error() != "child broke" {
			t.Fatalf("watcher got %+v, want the child's failure as the reason", m)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("watcher never heard of the failed child")
	}
	if n := b.DeadLetterCount(ErrActorFailed); n != 1 {
		t.Fatalf("dead letters for the failure: %d", n)
	}
}

func TestWaitFor(t *testing.T) {
	b := newBus(t)
	short, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if err := b.WaitFor(short, "later"); !errors.Is(err, ErrDeadline) {
		t.Fatalf("wait for a name nobody registers: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- b.WaitFor(context.Background(), "later") }()
	time.Sleep(5 * time.Millisecond)
	b.Register("other", adder) // another name does not end the wait
	select {
	case err := <-done:
		t.Fatalf("WaitFor returned %v before the name existed", err)
	case <-time.After(5 * time.Millisecond):
	}
	b.Register("later", adder)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := b.WaitFor(context.Background(), "later"); err != nil {
		t.Fatalf("wait for an existing name: %v", err)
	}
}

// TestPublishWhileSubscribing publishes from two goroutines while others
// subscribe and close subscriptions of many patterns: a subscription open
// throughout sees every message of each publisher in order, and every
// subscription sees only subjects its pattern matches, each publisher's in
// order.
func TestPublishWhileSubscribing(t *testing.T) {
	b := newBus(t)
	ctx := context.Background()
	const perPublisher = 2000
	all, err := b.Subscribe(ctx, "c.>", WithWindow(2*perPublisher))
	if err != nil {
		t.Fatal(err)
	}
	patterns := []string{"c.*", "c.0", "c.1", "c.>", "*.0", ">", "c.*.x", "d.>"}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	errs := make(chan error, 8)
	for g := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				pat := patterns[(i+g)%len(patterns)]
				s, err := b.Subscribe(ctx, pat, WithWindow(perPublisher*2))
				if err != nil {
					errs <- err
					return
				}
				time.Sleep(time.Duration(i%3) * 50 * time.Microsecond)
				s.Close()
				last := map[string]int{}
				for m := range s.Messages() {
					if !matchSubject(pat, m.Subject) {
						errs <- fmt.Errorf("%s got %s", pat, m.Subject)
						return
					}
					n := m.Msg.(int)
					if n <= last[m.Subject] {
						errs <- fmt.Errorf("%s: %s %d after %d", pat, m.Subject, n, last[m.Subject])
						return
					}
					last[m.Subject] = n
				}
			}
		}()
	}
	var pubs sync.WaitGroup
	for p := range 2 {
		pubs.Add(1)
		go func() {
			defer pubs.Done()
			for i := 1; i <= perPublisher; i++ {
				if err := b.Publish(fmt.Sprintf("c.%d", p), i); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	pubs.Wait()
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	next := map[string]int{"c.0": 1, "c.1": 1}
	for range 2 * perPublisher {
		m, err := all.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if m.Msg.(int) != next[m.Subject] {
			t.Fatalf("c.>: %s %v, want %d", m.Subject, m.Msg, next[m.Subject])
		}
		next[m.Subject]++
	}
}
