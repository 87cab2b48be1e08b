package bus_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/xbus-dev/xbus/bus"
	"github.com/xbus-dev/xbus/bus/bustest"
	"github.com/xbus-dev/xbus/bus/placement"
	"github.com/xbus-dev/xbus/mailbox"
)

// whoAmI answers every ask with its own Ref.
var whoAmI = bus.ActorFunc(func(c *bus.Context, msg any) error {
	if !c.IsAsk() {
		return nil // Started and other lifecycle messages
	}
	return c.Reply(c.Self())
})

// share asks name n times one at a time and counts the answers by
// instance.
func share(t *testing.T, b *bus.Bus, ctx context.Context, name string, n int) map[bus.Ref]int {
	t.Helper()
	got := map[bus.Ref]int{}
	for range n {
		r, err := bus.AskAs[bus.Ref](ctx, b, name, "who")
		if err != nil {
			t.Fatal(err)
		}
		got[r]++
	}
	return got
}

func TestPlacementChosenPerBusAndPerName(t *testing.T) {
	b := linkedBus(t, bus.WithPlacement(placement.RoundRobin{}),
		bus.WithPlacementFor("pinned", placement.Func(func([]placement.Instance, placement.Call) int { return 0 })))
	for range 3 {
		if _, err := b.Register("rr", whoAmI); err != nil {
			t.Fatal(err)
		}
		if _, err := b.Register("pinned", whoAmI); err != nil {
			t.Fatal(err)
		}
	}
	for ref, n := range share(t, b, context.Background(), "rr", 300) {
		if n != 100 {
			t.Errorf("round robin: %v got %d of 300", ref, n)
		}
	}
	if got := share(t, b, context.Background(), "pinned", 50); len(got) != 1 {
		t.Errorf("a strategy that always picks the first: %d instances used", len(got))
	}
}

// TestLeastConnectionsCountsPromises: an ask answered later through a
// Promise keeps its instance busy until it is answered, so the next asks go
// to the idle instance; once it is answered both are used again.
func TestLeastConnectionsCountsPromises(t *testing.T) {
	b := linkedBus(t)
	var h holds
	holder := bus.ActorFunc(func(c *bus.Context, msg any) error {
		if !c.IsAsk() {
			return nil
		}
		if msg == "hold" {
			h.keep(c)
			return nil
		}
		return c.Reply(c.Self())
	})
	a, err := b.Register("svc", holder)
	if err != nil {
		t.Fatal(err)
	}
	other, err := b.Register("svc", holder)
	if err != nil {
		t.Fatal(err)
	}
	release := h.hold(t, b, a) // through its Ref
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for ref, n := range share(t, b, ctx, "svc", 100) {
		if ref != other {
			t.Fatalf("%d asks went to the instance holding a promised ask", n)
		}
	}
	release()
	if got := share(t, b, ctx, "svc", 200); got[a] == 0 || got[other] == 0 {
		t.Fatalf("after the promise was answered: %v", got)
	}
}

// holds keeps the asks its actors are given as promises, unanswered: the
// load of an instance busy with them.
type holds struct {
	mu   sync.Mutex
	held []*bus.Promise
}

// keep keeps c's ask.
func (h *holds) keep(c *bus.Context) {
	h.mu.Lock()
	h.held = append(h.held, c.Promise())
	h.mu.Unlock()
}

// hold asks ref "hold" and returns once its actor keeps the ask; release
// answers it and waits for the ask to return.
func (h *holds) hold(t *testing.T, b *bus.Bus, ref bus.Ref) (release func()) {
	t.Helper()
	h.mu.Lock()
	n := len(h.held)
	h.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	done := make(chan error, 1)
	go func() { _, err := b.Ask(ctx, ref, "hold"); done <- err }()
	eventually(t, "the ask is held", func() error {
		h.mu.Lock()
		defer h.mu.Unlock()
		if len(h.held) == n {
			return errors.New("not yet")
		}
		return nil
	})
	return func() {
		t.Helper()
		defer cancel()
		h.mu.Lock()
		p := h.held[n]
		h.mu.Unlock()
		p.Reply("done")
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
}

func TestConsistentHashKey(t *testing.T) {
	b := linkedBus(t, bus.WithPlacement(&placement.ConsistentHash{}))
	for range 5 {
		if _, err := b.Register("svc", whoAmI); err != nil {
			t.Fatal(err)
		}
	}
	used := map[bus.Ref]bool{}
	for k := range 50 {
		ctx := bus.WithKey(context.Background(), fmt.Sprint("order-", k))
		got := share(t, b, ctx, "svc", 5)
		if len(got) != 1 {
			t.Fatalf("key %d went to %d instances", k, len(got))
		}
		for r := range got {
			used[r] = true
		}
	}
	if len(used) < 2 {
		t.Fatalf("50 keys all went to %d instance", len(used))
	}
}

// mesh makes a client bus linked to a node per name in servers, each
// serving "svc" with the actor made by serve, over one bustest Network.
func mesh(t *testing.T, n *bustest.Network, serve func(node string) bus.Actor, client []bus.Option, servers ...string) (*bus.Bus, map[string]*bus.Bus) {
	t.Helper()
	nodes := map[string]*bus.Bus{}
	var peers []string
	for _, s := range servers {
		sb := newNode(t, n.Transport(bustest.Config{Addr: s}))
		if _, err := sb.Register("svc", serve(s)); err != nil {
			t.Fatal(err)
		}
		nodes[s] = sb
		peers = append(peers, "mem://"+s)
	}
	c := newNode(t, n.Transport(bustest.Config{Addr: "client", Peers: peers}), client...)
	eventually(t, "every instance known", func() error {
		if got := len(c.Instances("svc")); got != len(servers) {
			return fmt.Errorf("%d of %d instances", got, len(servers))
		}
		return nil
	})
	return c, nodes
}

func newNode(t *testing.T, tr bus.Transport, opts ...bus.Option) *bus.Bus {
	t.Helper()
	return linkedBus(t, append([]bus.Option{bus.WithTransport(tr), bus.WithBackoff(time.Millisecond, 20*time.Millisecond)}, opts...)...)
}

// nodeName answers with the name of its node.
func nodeName(node string) bus.Actor {
	return bus.ActorFunc(func(c *bus.Context, msg any) error {
		if !c.IsAsk() {
			return nil
		}
		return c.Reply(node)
	})
}

// TestAskNeverSentIsPlacedAgain: asks queued for a node that dies before
// reading them (handed back by its link) go to the other instance at once;
// none fails, though none was marked idempotent.
func TestAskNeverSentIsPlacedAgain(t *testing.T) {
	n := bustest.NewNetwork()
	c, _ := mesh(t, n, nodeName, []bus.Option{bus.WithPlacement(placement.RoundRobin{})}, "s1", "s2")
	n.Pause("s1") // reads nothing: asks to it wait on its link
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	const asks = 20
	var wg sync.WaitGroup
	errs := make(chan error, asks)
	var fromS2 atomic.Int32
	for range asks {
		wg.Go(func() {
			r, err := c.Ask(ctx, "svc", "x")
			if err != nil {
				errs <- err
				return
			}
			if r == "s2" {
				fromS2.Add(1)
			}
		})
	}
	eventually(t, "some asks waiting on s1", func() error {
		if fromS2.Load() < asks/2-2 {
			return fmt.Errorf("%d answered by s2", fromS2.Load())
		}
		return nil
	})
	n.Kill("s1")
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("an ask that never reached s1 failed: %v", err)
	}
	if fromS2.Load() != asks {
		t.Errorf("%d of %d asks answered by s2", fromS2.Load(), asks)
	}
	if h := n.HandedBack(bus.KindAsk); h == 0 {
		t.Errorf("no ask was handed back: the test did not test re-placement")
	}
}

// blocker holds every ask on node "s1" until release closes; s2 answers.
func blocker(started chan<- struct{}, release <-chan struct{}) func(string) bus.Actor {
	return func(node string) bus.Actor {
		return bus.ActorFunc(func(c *bus.Context, msg any) error {
			if !c.IsAsk() {
				return nil
			}
			if node == "s1" {
				select {
				case started <- struct{}{}:
				default:
				}
				<-release
			}
			return c.Reply(node)
		})
	}
}

// prefer places a call's first attempt on the instance whose ID is in
// first, and a later attempt on another.
func prefer(first *atomic.Uint64) placement.Strategy {
	return placement.Func(func(in []placement.Instance, c placement.Call) int {
		for i := range in {
			if (in[i].ID == first.Load()) == (c.Attempt == 0) {
				return i
			}
		}
		return 0
	})
}

func idOf(r bus.Ref) uint64 { return placement.HashID(r.Node, r.ID) }

// TestAskThatMayHaveRun: an ask its instance was running when its node
// died fails with ErrPeerGone; marked idempotent, it goes to another
// instance and succeeds.
func TestAskThatMayHaveRun(t *testing.T) {
	for _, idem := range []bool{false, true} {
		t.Run(fmt.Sprint("idempotent=", idem), func(t *testing.T) {
			n := bustest.NewNetwork()
			started, release := make(chan struct{}, 1), make(chan struct{})
			defer close(release)
			var first atomic.Uint64
			c, nodes := mesh(t, n, blocker(started, release), []bus.Option{bus.WithPlacementFor("svc", prefer(&first))}, "s1", "s2")
			first.Store(idOf(nodes["s1"].Instances("svc")[0]))
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			if idem {
				ctx = bus.WithIdempotent(ctx)
			}
			type result struct {
				r   any
				err error
			}
			res := make(chan result, 1)
			go func() {
				r, err := c.Ask(ctx, "svc", "x")
				res <- result{r, err}
			}()
			<-started // s1 runs it
			n.Kill("s1")
			got := <-res
			if idem {
				if got.err != nil || got.r != "s2" {
					t.Fatalf("idempotent ask: %v, %v; want s2's reply", got.r, got.err)
				}
				return
			}
			if !errors.Is(got.err, bus.ErrPeerGone) {
				t.Fatalf("got %v, %v; want ErrPeerGone", got.r, got.err)
			}
		})
	}
}

// slowFast serves "svc": on node s1 each ask waits for a tick of slow, on
// the others it is answered at once.
func slowFast(slow <-chan struct{}) func(string) bus.Actor {
	return func(node string) bus.Actor {
		return bus.ActorFunc(func(c *bus.Context, msg any) error {
			if !c.IsAsk() {
				return nil
			}
			if node == "s1" {
				<-slow
			}
			return c.Reply(node)
		})
	}
}

// TestSlowInstanceGetsFewerAsks: with concurrent callers, least
// connections sends a slow instance fewer asks than round robin does,
// which gives it its third whatever its speed. The bubble's clock makes
// the fast instances answer in no time and the slow one once a
// millisecond, so load on the machine cannot make the fast ones as slow.
func TestSlowInstanceGetsFewerAsks(t *testing.T) {
	run := func(t *testing.T, s placement.Strategy) map[any]int {
		n := bustest.NewNetwork()
		slow := make(chan struct{})
		stop := make(chan struct{})
		defer close(stop)
		go func() { // s1 answers one ask per millisecond
			tick := time.NewTicker(time.Millisecond)
			defer tick.Stop()
			for {
				select {
				case <-tick.C:
					select {
					case slow <- struct{}{}:
					default:
					}
				case <-stop:
					close(slow)
					return
				}
			}
		}()
		c, _ := mesh(t, n, slowFast(slow), []bus.Option{bus.WithPlacement(s)}, "s1", "s2", "s3")
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		var mu sync.Mutex
		got := map[any]int{}
		var wg sync.WaitGroup
		for range 6 {
			wg.Go(func() {
				for range 50 {
					r, err := c.Ask(ctx, "svc", "x")
					if err != nil {
						t.Error(err)
						return
					}
					mu.Lock()
					got[r]++
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		return got
	}
	var lc, rr map[any]int
	synctest.Test(t, func(t *testing.T) { lc = run(t, placement.LeastConnections{}) })
	synctest.Test(t, func(t *testing.T) { rr = run(t, placement.RoundRobin{}) })
	t.Logf("least connections %v, round robin %v", lc, rr)
	if !(lc["s1"] < rr["s1"]) {
		t.Errorf("the slow instance got %d asks under least connections, %d under round robin", lc["s1"], rr["s1"])
	}
	if !(lc["s1"] < lc["s2"] && lc["s1"] < lc["s3"]) {
		t.Errorf("least connections: the slow instance is not the least used: %v", lc)
	}
}

// TestFailingInstanceIsTakenOut: an instance whose asks keep failing is
// taken out after WithHealth's count of failures, gets no ask during its
// cool-down, and one probe after it brings it back once it is well.
func TestFailingInstanceIsTakenOut(t *testing.T) {
	var sick atomic.Bool
	sick.Store(true)
	b := linkedBus(t, bus.WithPlacement(placement.RoundRobin{}),
		bus.WithHealth(placement.HealthPolicy{Failures: 3, CoolDown: 50 * time.Millisecond}),
		bus.WithRetryBudget(-1, 0)) // no re-placement: every failure is seen
	bad, err := b.Register("svc", bus.ActorFunc(func(c *bus.Context, msg any) error {
		if !c.IsAsk() {
			return nil
		}
		if sick.Load() {
			return errors.New("sick") // fails the actor: ErrActorFailed
		}
		return c.Reply(c.Self())
	}))
	if err != nil {
		t.Fatal(err)
	}
	good, err := b.Register("svc", whoAmI)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	failures := 0
	for failures < 3 {
		if _, err := b.Ask(ctx, "svc", "x"); errors.Is(err, bus.ErrActorFailed) {
			failures++
		}
	}
	start := time.Now()
	for k := range 100 {
		r, err := b.Ask(ctx, "svc", "x")
		if err != nil {
			if time.Since(start) < 50*time.Millisecond {
				t.Fatalf("ask %d during the cool-down: %v", k, err)
			}
			break // the cool-down passed: a probe went to it
		}
		if r != good {
			t.Fatalf("ask %d went to %v", k, r)
		}
	}
	sick.Store(false)
	eventually(t, "the healed instance used again", func() error {
		if got := share(t, b, ctx, "svc", 10); got[bad] == 0 {
			return fmt.Errorf("not used: %v", got)
		}
		return nil
	})
}

// TestFlappingLink: a link to one instance's node goes down and up again
// and again while asks by name flow; every ask returns, marked idempotent
// every one succeeds (given the budget to be placed again), and after the
// flapping both nodes serve again.
func TestFlappingLink(t *testing.T) {
	n := bustest.NewNetwork()
	c, _ := mesh(t, n, nodeName, []bus.Option{bus.WithRetryBudget(1e6, 1e6)}, "s1", "s2")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	stop := make(chan struct{})
	var flaps sync.WaitGroup
	flaps.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			n.Partition("client", "s1")
			time.Sleep(time.Millisecond)
			n.Heal("client", "s1")
			time.Sleep(2 * time.Millisecond)
		}
	})
	var wg sync.WaitGroup
	var failed atomic.Int32
	for range 4 {
		wg.Go(func() {
			for range 300 {
				if _, err := c.Ask(bus.WithIdempotent(ctx), "svc", "x"); err != nil {
					failed.Add(1)
					t.Errorf("idempotent ask: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(stop)
	flaps.Wait()
	if failed.Load() > 0 {
		return
	}
	eventually(t, "both nodes serve after the flapping", func() error {
		got := map[any]int{}
		for range 20 {
			r, err := c.Ask(ctx, "svc", "x")
			if err != nil {
				return err
			}
			got[r]++
		}
		if got["s1"] == 0 || got["s2"] == 0 {
			return fmt.Errorf("%v", got)
		}
		return nil
	})
}

// TestTellsByNameTieAndAvoidTheBusy: tells count no load, so tells by name
// among idle instances tie and each gets its share (the bound, a tenth of
// a share, is over 12 standard deviations: it does not fail by chance);
// an instance holding an ask has a load and gets none of them until the
// ask is answered.
func TestTellsByNameTieAndAvoidTheBusy(t *testing.T) {
	b := linkedBus(t)
	var got [3]atomic.Int64
	var h holds
	refs := make([]bus.Ref, 3)
	for i := range refs {
		var err error
		refs[i], err = b.Register("svc", bus.ActorFunc(func(c *bus.Context, msg any) error {
			switch {
			case msg == "hold":
				h.keep(c)
			case msg == "tell":
				got[i].Add(1)
			}
			return nil
		}))
		if err != nil {
			t.Fatal(err)
		}
	}
	tell := func(n int) [3]int64 {
		t.Helper()
		var before [3]int64
		for i := range got {
			before[i] = got[i].Load()
		}
		for range n {
			if err := b.Tell("svc", "tell"); err != nil {
				t.Fatal(err)
			}
		}
		var d [3]int64
		eventually(t, "every tell handled", func() error {
			sum := int64(0)
			for i := range got {
				d[i] = got[i].Load() - before[i]
				sum += d[i]
			}
			if sum < int64(n) {
				return fmt.Errorf("%d of %d", sum, n)
			}
			return nil
		})
		return d
	}
	const share = 10000
	for i, n := range tell(3 * share) {
		if n < share*9/10 || n > share*11/10 {
			t.Errorf("idle instance %d got %d tells of %d, want about %d", i, n, 3*share, share)
		}
	}

	release := h.hold(t, b, refs[0])
	if d := tell(3000); d[0] != 0 || d[1] == 0 || d[2] == 0 {
		t.Errorf("with an ask held by instance 0, tells went %v", d)
	}
	release()
	if d := tell(3000); d[0] == 0 {
		t.Errorf("after the held ask was answered, tells went %v", d)
	}
}

// TestTellByNameAllocatesNothing: placing a Tell among several instances
// allocates nothing, with the default strategy and with a counted one.
func TestTellByNameAllocatesNothing(t *testing.T) {
	for _, s := range []placement.Strategy{placement.LeastConnections{}, placement.RoundRobin{}} {
		b := linkedBus(t, bus.WithPlacement(s))
		sink := bus.ActorFunc(func(*bus.Context, any) error { return nil })
		for range 3 {
			if _, err := b.Register("svc", sink); err != nil {
				t.Fatal(err)
			}
		}
		msg := any("m")
		if n := testing.AllocsPerRun(1000, func() {
			if err := b.Tell("svc", msg); err != nil {
				t.Fatal(err)
			}
		}); n != 0 {
			t.Errorf("%T: a Tell by name allocates %v times", s, n)
		}
	}
}

// TestLatencyStrategyMeasuresRoundTrips: under placement.Latency the bus
// times asks, here to instances in this process too, so a slow instance
// gets few of them once measured. The bubble's clock makes the round trips
// exactly what the actors take (the fast one no time, the slow one 2 ms), so
// load on the machine cannot make the fast one look slow.
func TestLatencyStrategyMeasuresRoundTrips(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := linkedBus(t, bus.WithPlacement(placement.Latency{}))
		slow, err := b.Register("svc", bus.ActorFunc(func(c *bus.Context, msg any) error {
			if !c.IsAsk() {
				return nil
			}
			time.Sleep(2 * time.Millisecond)
			return c.Reply(c.Self())
		}))
		if err != nil {
			t.Fatal(err)
		}
		fast, err := b.Register("svc", whoAmI)
		if err != nil {
			t.Fatal(err)
		}
		got := share(t, b, context.Background(), "svc", 200)
		if got[slow] >= got[fast]/4 {
			t.Fatalf("the slow instance answered %d asks, the fast one %d", got[slow], got[fast])
		}
	})
}

// TestNamesSorted: Names lists the names with an instance in order, and a
// name goes from the list with its last instance.
func TestNamesSorted(t *testing.T) {
	b := linkedBus(t)
	var zRef bus.Ref
	for _, n := range []string{"zeta", "alpha", "mid", "alpha"} {
		r, err := b.Register(n, whoAmI)
		if err != nil {
			t.Fatal(err)
		}
		if n == "zeta" {
			zRef = r
		}
	}
	if got := fmt.Sprint(b.Names()); got != "[alpha mid zeta]" {
		t.Fatalf("Names: %s", got)
	}
	if err := b.Stop(zRef); err != nil {
		t.Fatal(err)
	}
	eventually(t, "zeta gone", func() error {
		if got := fmt.Sprint(b.Names()); got != "[alpha mid]" {
			return fmt.Errorf("Names: %s", got)
		}
		return nil
	})
}

// TestFullMailboxIsPlacedAgain: an ask by name refused by its instance's
// full mailbox (FailFast) never ran, so it goes to the other instance, from
// outside any actor (Ask) and from inside one (Context.Ask).
func TestFullMailboxIsPlacedAgain(t *testing.T) {
	var first atomic.Uint64
	b := linkedBus(t, bus.WithPlacementFor("svc", prefer(&first)))
	release := make(chan struct{})
	defer close(release)
	blocked := make(chan struct{}, 1)
	busy, err := b.Register("svc", bus.ActorFunc(func(c *bus.Context, msg any) error {
		if c.IsAsk() || msg == "block" {
			select {
			case blocked <- struct{}{}:
			default:
			}
			<-release
		}
		return nil
	}), bus.WithMailbox(mailbox.Options{Capacity: 2, Policy: mailbox.FailFast}))
	if err != nil {
		t.Fatal(err)
	}
	first.Store(idOf(busy))
	other, err := b.Register("svc", whoAmI)
	if err != nil {
		t.Fatal(err)
	}
	// busy's actor blocks in its first "block", so nothing leaves its
	// mailbox after that (a mailbox full while the actor still took
	// Started or the first "block" had room again for the ask); fill then
	// fills the mailbox up to the first refusal.
	if err := b.Tell(busy, "block"); err != nil {
		t.Fatal(err)
	}
	<-blocked
	fill := func() {
		for k := 0; ; k++ {
			err := b.Tell(busy, "block")
			if errors.Is(err, bus.ErrMailboxFull) {
				return
			}
			if err != nil || k > 100 {
				t.Fatalf("filling the mailbox: %v after %d tells", err, k)
			}
		}
	}
	fill()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if r, err := b.Ask(ctx, "svc", "x"); err != nil || r != other {
		t.Fatalf("Ask: %v, %v; want the other instance's reply", r, err)
	}
	got := make(chan any, 1)
	fill()
	asker, err := b.Spawn(bus.ActorFunc(func(c *bus.Context, msg any) error {
		if msg == "go" {
			c.Ask(ctx, "svc", "x", func(r any, err error) {
				if err != nil {
					got <- err
					return
				}
				got <- r
			})
		}
		return nil
	}))
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Tell(asker, "go"); err != nil {
		t.Fatal(err)
	}
	if r := <-got; r != other {
		t.Fatalf("Context.Ask: %v; want the other instance's reply", r)
	}
}
