package mailbox

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/xbus-dev/xbus/internal/race"
)

// event is one call the mailbox made on its Invoker.
type event struct {
	kind   string // "sys", "user", "dropped"
	v      int
	reason error
}

func (e event) String() string {
	if e.reason != nil {
		return fmt.Sprintf("%s %d (%v)", e.kind, e.v, e.reason)
	}
	return fmt.Sprintf("%s %d", e.kind, e.v)
}

// recorder is an Invoker that logs every call. onUser, if set, runs inside
// Invoke after the call is logged.
type recorder struct {
	mu     sync.Mutex
	events []event
	onUser func(v int)
	onSys  func(v int)
	notify chan event // if set, every event is also sent here
}

func newRecorder() *recorder { return &recorder{notify: make(chan event, 1024)} }

func (r *recorder) log(e event) {
	r.mu.Lock()
	r.events = append(r.events, e)
	r.mu.Unlock()
	if r.notify != nil {
		r.notify <- e
	}
}

func (r *recorder) InvokeSystem(v int) {
	r.log(event{kind: "sys", v: v})
	if r.onSys != nil {
		r.onSys(v)
	}
}

func (r *recorder) Invoke(v int) {
	r.log(event{kind: "user", v: v})
	if r.onUser != nil {
		r.onUser(v)
	}
}

func (r *recorder) Dropped(v int, reason error) { r.log(event{kind: "dropped", v: v, reason: reason}) }

func (r *recorder) snapshot() []event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.events)
}

// await reads n events from the recorder's notify channel.
func (r *recorder) await(t *testing.T, n int) []event {
	t.Helper()
	var got []event
	timeout := time.After(10 * time.Second) // a hang, not a speed limit
	for len(got) < n {
		select {
		case e := <-r.notify:
			got = append(got, e)
		case <-timeout:
			t.Fatalf("waited for %d events, got %d: %v", n, len(got), got)
		}
	}
	return got
}

func mustNew[T any](t testing.TB, inv Invoker[T], o Options) *Mailbox[T] {
	t.Helper()
	if allInline {
		o.Inline = true
	}
	mb, err := New(inv, o)
	if err != nil {
		t.Fatal(err)
	}
	return mb
}

func ev(kind string, v int) event { return event{kind: kind, v: v} }

func sameEvents(t *testing.T, got, want []event) {
	t.Helper()
	if !slices.EqualFunc(got, want, func(a, b event) bool {
		return a.kind == b.kind && a.v == b.v && errors.Is(a.reason, b.reason)
	}) {
		t.Fatalf("events\n got %v\nwant %v", got, want)
	}
}

func TestSystemLaneServedFirst(t *testing.T) {
	rec := newRecorder()
	gate := make(chan struct{})
	rec.onUser = func(v int) {
		if v == 1 {
			<-gate // hold the turn while more arrives
		}
	}
	mb := mustNew[int](t, rec, Options{})
	defer mb.Close()
	ctx := context.Background()
	if err := mb.Send(ctx, 1, Default); err != nil {
		t.Fatal(err)
	}
	rec.await(t, 1) // user 1 is running and holds the turn
	for v := 2; v <= 3; v++ {
		if err := mb.Send(ctx, v, Default); err != nil {
			t.Fatal(err)
		}
	}
	if err := mb.SendSystem(100); err != nil {
		t.Fatal(err)
	}
	if err := mb.SendSystem(101); err != nil {
		t.Fatal(err)
	}
	close(gate)
	rec.await(t, 4)
	sameEvents(t, rec.snapshot(), []event{ev("user", 1), ev("sys", 100), ev("sys", 101), ev("user", 2), ev("user", 3)})
}

func TestSystemLaneRunsWhileSuspended(t *testing.T) {
	rec := newRecorder()
	mb := mustNew[int](t, rec, Options{})
	defer mb.Close()
	mb.Suspend()
	if !mb.Suspended() {
		t.Fatal("Suspended() = false after Suspend")
	}
	ctx := context.Background()
	for v := 1; v <= 3; v++ {
		if err := mb.Send(ctx, v, Default); err != nil {
			t.Fatal(err)
		}
	}
	if err := mb.SendSystem(100); err != nil {
		t.Fatal(err)
	}
	sameEvents(t, rec.await(t, 1), []event{ev("sys", 100)})
	if n := mb.Len(); n != 3 {
		t.Fatalf("Len() = %d while suspended, want 3", n)
	}
	mb.Resume()
	if mb.Suspended() {
		t.Fatal("Suspended() = true after Resume")
	}
	rec.await(t, 3)
	sameEvents(t, rec.snapshot(), []event{ev("sys", 100), ev("user", 1), ev("user", 2), ev("user", 3)})
}

// TestSuspendFromInvoke is how an actor fails: it suspends its own mailbox
// inside Invoke; what follows stays queued, nothing is lost, and it all
// runs on Resume.
func TestSuspendFromInvoke(t *testing.T) {
	rec := newRecorder()
	var mb *Mailbox[int]
	rec.onUser = func(v int) {
		if v == 2 {
			mb.Suspend()
		}
	}
	mb = mustNew[int](t, rec, Options{})
	defer mb.Close()
	mb.Suspend() // queue everything first, so the failure happens mid-queue
	for v := 1; v <= 5; v++ {
		if err := mb.Send(context.Background(), v, Default); err != nil {
			t.Fatal(err)
		}
	}
	mb.Resume()
	rec.await(t, 2)
	if err := mb.SendSystem(100); err != nil { // a restart notice
		t.Fatal(err)
	}
	rec.await(t, 1)
	if n := mb.Len(); n != 3 {
		t.Fatalf("Len() = %d after the failure, want 3", n)
	}
	mb.Resume()
	rec.await(t, 3)
	sameEvents(t, rec.snapshot(), []event{ev("user", 1), ev("user", 2), ev("sys", 100), ev("user", 3), ev("user", 4), ev("user", 5)})
}

// TestThroughputYields runs two hot mailboxes, each re-sending to itself
// forever, on one processor. Each turn must end after Throughput messages so
// the other runs: without the yield one mailbox would hold the processor
// until the runtime preempts it, millions of messages later.
func TestThroughputYields(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	const throughput, total = 32, 20_000
	var (
		mu      sync.Mutex
		last    = -1
		run     int
		maxRun  int
		counts  [2]int
		stopped bool
		done    = make(chan struct{})
	)
	mbs := make([]*Mailbox[int], 2)
	for i := range mbs {
		inv := &funcInvoker{invoke: func(int) {
			mu.Lock()
			if stopped {
				mu.Unlock()
				return
			}
			counts[i]++
			if last == i {
				run++
			} else {
				last, run = i, 1
			}
			maxRun = max(maxRun, run)
			if counts[0]+counts[1] == total {
				stopped = true
				close(done)
			}
			mu.Unlock()
			if err := mbs[i].Send(context.Background(), 0, FailFast); err != nil {
				panic(err)
			}
		}}
		mbs[i] = mustNew[int](t, inv, Options{Capacity: 64, Throughput: throughput})
		defer mbs[i].Close()
	}
	for _, mb := range mbs {
		for range 4 {
			if err := mb.Send(context.Background(), 0, Default); err != nil {
				t.Fatal(err)
			}
		}
	}
	<-done
	mu.Lock()
	defer mu.Unlock()
	t.Logf("counts %v, longest run %d", counts, maxRun)
	if counts[0] == 0 || counts[1] == 0 {
		t.Fatalf("a mailbox starved: counts %v", counts)
	}
	if maxRun > 2*throughput {
		t.Fatalf("one mailbox ran %d messages in a row; throughput is %d", maxRun, throughput)
	}
}

// funcInvoker adapts functions to Invoker.
type funcInvoker struct {
	invoke  func(int)
	system  func(int)
	dropped func(int, error)
}

func (f *funcInvoker) Invoke(v int) {
	if f.invoke != nil {
		f.invoke(v)
	}
}

func (f *funcInvoker) InvokeSystem(v int) {
	if f.system != nil {
		f.system(v)
	}
}

func (f *funcInvoker) Dropped(v int, reason error) {
	if f.dropped != nil {
		f.dropped(v, reason)
	}
}

// seqChecker is an Invoker for stress tests: values are producer<<24 |
// sequence; it checks each producer's order and counts what it sees.
type seqChecker struct {
	last      []int // per producer; touched only inside Invoke
	processed atomic.Int64
	dropped   atomic.Int64
	bad       atomic.Value // first error
	seen      []atomic.Int32
	inside    atomic.Int32 // Invokes running now: never more than one
}

func newSeqChecker(producers, per int) *seqChecker {
	return &seqChecker{last: make([]int, producers), seen: make([]atomic.Int32, producers*per+producers)}
}

func (c *seqChecker) index(v int) int {
	p, s := v>>24, v&(1<<24-1)
	return p*(len(c.seen)/len(c.last)) + s
}

func (c *seqChecker) mark(v int) {
	if n := c.seen[c.index(v)].Add(1); n != 1 {
		c.bad.CompareAndSwap(nil, fmt.Errorf("producer %d value %d handled %d times", v>>24, v&(1<<24-1), n))
	}
}

func (c *seqChecker) Invoke(v int) {
	if c.inside.Add(1) != 1 {
		c.bad.CompareAndSwap(nil, fmt.Errorf("two Invokes at once (value %d)", v))
	}
	defer c.inside.Add(-1)
	p, s := v>>24, v&(1<<24-1)
	if s <= c.last[p] {
		c.bad.CompareAndSwap(nil, fmt.Errorf("producer %d: %d after %d", p, s, c.last[p]))
	}
	c.last[p] = s
	c.mark(v)
	c.processed.Add(1)
}

func (c *seqChecker) InvokeSystem(int) {}

func (c *seqChecker) Dropped(v int, _ error) {
	c.mark(v)
	c.dropped.Add(1)
}

func (c *seqChecker) err() error {
	if e, ok := c.bad.Load().(error); ok {
		return e
	}
	return nil
}

// waitFor polls cond; giving up after a long while means a hang (a lost
// wake-up), not slowness.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	waitForf(t, func() string { return what }, cond)
}

// waitForf is waitFor with a description made when it gives up.
func waitForf(t *testing.T, what func() string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting: %s", what())
		}
		runtime.Gosched()
		time.Sleep(50 * time.Microsecond)
	}
}

// TestNoLostWakeup races sends with the end of turns, over many rounds (with
// and without Inline, whose sends end turns of their own): tiny
// throughput budgets and bursts paced so the consumer keeps running dry and
// letting go. Every message must be processed exactly once, in per-producer
// order. A variant toggles Suspend/Resume throughout.
func TestNoLostWakeup(t *testing.T) {
	rounds, producers, per := 200, 4, 500
	if race.Enabled {
		rounds = 60
	}
	for _, mode := range []struct{ toggle, inline bool }{{false, false}, {true, false}, {false, true}, {true, true}} {
		toggle := mode.toggle
		t.Run(fmt.Sprintf("suspend=%v,inline=%v", toggle, mode.inline), func(t *testing.T) {
			rounds := rounds
			if toggle {
				rounds /= 10 // each round is slow: the mailbox is held most of the time
			}
			for round := range rounds {
				c := newSeqChecker(producers, per)
				mb := mustNew[int](t, c, Options{Capacity: 16, Throughput: 1 + round%4, Inline: mode.inline})
				var wg sync.WaitGroup
				for p := range producers {
					wg.Go(func() {
						rng := rand.New(rand.NewPCG(uint64(round), uint64(p)))
						for s := 1; s <= per; s++ {
							if err := mb.Send(context.Background(), p<<24|s, Block); err != nil {
								panic(err)
							}
							if rng.IntN(8) == 0 {
								runtime.Gosched()
							}
						}
					})
				}
				stop := make(chan struct{})
				var toggler sync.WaitGroup
				if toggle {
					toggler.Go(func() {
						for {
							select {
							case <-stop:
								return
							default:
							}
							mb.Suspend()
							runtime.Gosched()
							mb.Resume()
							if err := mb.SendSystem(0); err != nil {
								panic(err)
							}
							runtime.Gosched() // with one processor, let the mailbox run while resumed
						}
					})
				}
				wg.Wait()
				close(stop)
				toggler.Wait()
				want := int64(producers * per)
				waitForf(t, func() string {
					return fmt.Sprintf("round %d: processed %d of %d, Len %d, system %d, state %b (a lost wake-up)",
						round, c.processed.Load(), want, mb.Len(), mb.sysLen.Load(), mb.state.Load())
				}, func() bool { return c.processed.Load() == want && mb.sysLen.Load() == 0 })
				if err := c.err(); err != nil {
					t.Fatalf("round %d: %v", round, err)
				}
				mb.Close()
				if n := c.dropped.Load(); n != 0 {
					t.Fatalf("round %d: %d dropped", round, n)
				}
			}
		})
	}
}

// slowChecker is a seqChecker whose Invoke does a little work first, so
// senders outrun it and the mailbox stays full. Its first Invoke waits for
// gate, if set: senders then overflow the mailbox however they are
// scheduled (an Inline mailbox's lone running sender would otherwise invoke
// each message itself and never find it full).
type slowChecker struct {
	*seqChecker
	gate chan struct{}
}

var sink atomic.Uint64

func (c slowChecker) Invoke(v int) {
	if c.gate != nil {
		<-c.gate
	}
	x := uint64(v)
	for range 300 {
		x = x*6364136223846793005 + 1442695040888963407
	}
	sink.Store(x)
	c.seqChecker.Invoke(v)
}

// TestOverflowAccounting sends 100,000 messages from several senders to a
// small mailbox with a slow invoker under each policy, and a mix chosen per
// send: processed + refused + dropped must equal sent exactly, and every
// message must be accounted for exactly once.
func TestOverflowAccounting(t *testing.T) {
	const producers = 4
	per := 25_000
	if race.Enabled {
		per = 5_000
	}
	for _, policy := range []Policy{Block, FailFast, DropOldest, Default} {
		name := policy.String()
		if policy == Default {
			name = "mixed"
		}
		t.Run(name, func(t *testing.T) {
			c := newSeqChecker(producers, per)
			gate := make(chan struct{})
			mb := mustNew[int](t, slowChecker{c, gate}, Options{Capacity: 64, Policy: FailFast})
			var refused atomic.Int64
			var wg sync.WaitGroup
			for p := range producers {
				wg.Go(func() {
					rng := rand.New(rand.NewPCG(uint64(p), 7))
					for s := 1; s <= per; s++ {
						pol, ctx := policy, context.Background()
						if policy == Default {
							pol = Policy(rng.IntN(4)) // Default here is the mailbox's FailFast
							if pol == Block && rng.IntN(2) == 0 {
								c, cancel := context.WithCancel(ctx)
								cancel() // a sender that gives up at once if it must wait
								ctx = c
							}
						}
						switch err := mb.Send(ctx, p<<24|s, pol); {
						case err == nil:
						case errors.Is(err, ErrFull), errors.Is(err, context.Canceled):
							refused.Add(1)
						default:
							panic(err)
						}
					}
				})
			}
			// The first Invoke waits until the others have overflowed the
			// mailbox as its policy says: filled it, refused or dropped.
			// Filled is 63 queued when the first Invoke took its message
			// after every sender parked: parked senders are woken only
			// once half the ring is free.
			waitFor(t, "the mailbox to overflow", func() bool {
				switch policy {
				case FailFast:
					return refused.Load() > 0
				case DropOldest:
					return c.dropped.Load() > 0
				}
				return mb.Len() >= 63
			})
			close(gate)
			wg.Wait()
			sent := int64(producers * per)
			waitFor(t, "the mailbox to drain", func() bool {
				return c.processed.Load()+c.dropped.Load()+refused.Load() == sent
			})
			if err := c.err(); err != nil {
				t.Fatal(err)
			}
			mb.Close()
			p, r, d := c.processed.Load(), refused.Load(), c.dropped.Load()
			t.Logf("sent %d: processed %d, refused %d, dropped %d", sent, p, r, d)
			if p+r+d != sent {
				t.Fatalf("processed %d + refused %d + dropped %d != sent %d", p, r, d, sent)
			}
			switch policy {
			case Block:
				if r != 0 || d != 0 {
					t.Fatalf("Block refused %d and dropped %d", r, d)
				}
			case FailFast:
				if r == 0 || d != 0 {
					t.Fatalf("FailFast refused %d (want > 0: the invoker is slow) and dropped %d", r, d)
				}
			case DropOldest:
				if r != 0 || d == 0 {
					t.Fatalf("DropOldest refused %d and dropped %d (want > 0: the invoker is slow)", r, d)
				}
			}
		})
	}
}

func TestPolicies(t *testing.T) {
	ctx := context.Background()
	t.Run("fail-fast", func(t *testing.T) {
		rec := newRecorder()
		mb := mustNew[int](t, rec, Options{Capacity: 2, Policy: FailFast})
		mb.Suspend()
		for v, want := range []error{nil, nil, ErrFull, ErrFull} {
			if err := mb.Send(ctx, v, Default); !errors.Is(err, want) {
				t.Fatalf("send %d: %v, want %v", v, err, want)
			}
		}
		mb.Resume()
		rec.await(t, 2)
		mb.Close()
		sameEvents(t, rec.snapshot(), []event{ev("user", 0), ev("user", 1)})
	})
	t.Run("drop-oldest", func(t *testing.T) {
		rec := newRecorder()
		mb := mustNew[int](t, rec, Options{Capacity: 4, Policy: FailFast})
		mb.Suspend()
		for v := 1; v <= 6; v++ {
			if err := mb.Send(ctx, v, DropOldest); err != nil { // per-send override
				t.Fatal(err)
			}
		}
		mb.Resume()
		rec.await(t, 6)
		mb.Close()
		sameEvents(t, rec.snapshot(), []event{
			{kind: "dropped", v: 1, reason: ErrDropped}, {kind: "dropped", v: 2, reason: ErrDropped},
			ev("user", 3), ev("user", 4), ev("user", 5), ev("user", 6),
		})
	})
	t.Run("block-ctx", func(t *testing.T) {
		rec := newRecorder()
		mb := mustNew[int](t, rec, Options{Capacity: 2})
		defer mb.Close()
		mb.Suspend()
		for v := range 2 {
			if err := mb.Send(ctx, v, Default); err != nil {
				t.Fatal(err)
			}
		}
		tctx, cancel := context.WithTimeout(ctx, time.Millisecond)
		defer cancel()
		if err := mb.Send(tctx, 2, Block); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Send on a full mailbox with a deadline: %v, want DeadlineExceeded", err)
		}
		cctx, cancel := context.WithCancel(ctx)
		errc := make(chan error)
		go func() { errc <- mb.Send(cctx, 3, Block) }()
		waitFor(t, "the sender to block", func() bool { return mb.user.Load().waiters.Load() == 1 })
		cancel()
		if err := <-errc; !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled Send: %v, want Canceled", err)
		}
	})
	t.Run("block-released-by-room", func(t *testing.T) {
		rec := newRecorder()
		mb := mustNew[int](t, rec, Options{Capacity: 2})
		defer mb.Close()
		mb.Suspend()
		for v := range 2 {
			if err := mb.Send(ctx, v, Default); err != nil {
				t.Fatal(err)
			}
		}
		errc := make(chan error)
		go func() { errc <- mb.Send(ctx, 2, Block) }()
		waitFor(t, "the sender to block", func() bool { return mb.user.Load().waiters.Load() == 1 })
		mb.Resume()
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
		rec.await(t, 3)
		sameEvents(t, rec.snapshot(), []event{ev("user", 0), ev("user", 1), ev("user", 2)})
	})
	t.Run("block-released-by-close", func(t *testing.T) {
		rec := newRecorder()
		mb := mustNew[int](t, rec, Options{Capacity: 2})
		mb.Suspend()
		for v := range 2 {
			if err := mb.Send(ctx, v, Default); err != nil {
				t.Fatal(err)
			}
		}
		errc := make(chan error, 3)
		for v := 2; v < 5; v++ {
			go func() { errc <- mb.Send(ctx, v, Block) }()
		}
		waitFor(t, "the senders to block", func() bool { return mb.user.Load().waiters.Load() == 3 })
		mb.Close()
		for range 3 {
			if err := <-errc; !errors.Is(err, ErrClosed) {
				t.Fatalf("blocked Send after Close: %v, want ErrClosed", err)
			}
		}
		sameEvents(t, rec.snapshot(), []event{{kind: "dropped", v: 0, reason: ErrClosed}, {kind: "dropped", v: 1, reason: ErrClosed}})
	})
}

func TestCloseReportsQueued(t *testing.T) {
	rec := newRecorder()
	mb := mustNew[int](t, rec, Options{})
	mb.Suspend()
	ctx := context.Background()
	for v := 1; v <= 5; v++ {
		if err := mb.Send(ctx, v, Default); err != nil {
			t.Fatal(err)
		}
	}
	// While suspended the system lane still runs; hold it with a gate so a
	// system message stays queued too.
	gate := make(chan struct{})
	rec.onSys = func(v int) {
		if v == 100 {
			<-gate
		}
	}
	if err := mb.SendSystem(100); err != nil {
		t.Fatal(err)
	}
	rec.await(t, 1)
	if err := mb.SendSystem(101); err != nil {
		t.Fatal(err)
	}
	mb.Close()
	close(gate)
	if !mb.Closed() {
		t.Fatal("Closed() = false after Close")
	}
	mb.Close() // idempotent: nothing reported twice
	if err := mb.Send(ctx, 6, Default); !errors.Is(err, ErrClosed) {
		t.Fatalf("Send after Close: %v, want ErrClosed", err)
	}
	if err := mb.SendSystem(102); !errors.Is(err, ErrClosed) {
		t.Fatalf("SendSystem after Close: %v, want ErrClosed", err)
	}
	closed := func(v int) event { return event{kind: "dropped", v: v, reason: ErrClosed} }
	sameEvents(t, rec.snapshot(), []event{ev("sys", 100), closed(101), closed(1), closed(2), closed(3), closed(4), closed(5)})
	if n := mb.Len(); n != 0 {
		t.Fatalf("Len() = %d after Close", n)
	}
}

// TestCloseFromInvoke: an actor that stops itself mid-queue; the rest is
// reported, nothing runs after the message that closed it.
func TestCloseFromInvoke(t *testing.T) {
	rec := newRecorder()
	var mb *Mailbox[int]
	rec.onUser = func(v int) {
		if v == 2 {
			mb.Close()
		}
	}
	mb = mustNew[int](t, rec, Options{})
	mb.Suspend()
	for v := 1; v <= 4; v++ {
		if err := mb.Send(context.Background(), v, Default); err != nil {
			t.Fatal(err)
		}
	}
	mb.Resume()
	rec.await(t, 4)
	sameEvents(t, rec.snapshot(), []event{ev("user", 1), ev("user", 2), {kind: "dropped", v: 3, reason: ErrClosed}, {kind: "dropped", v: 4, reason: ErrClosed}})
}

// TestCloseRacingSends closes a mailbox while senders are busy, over many
// rounds: every send is either refused with ErrClosed or accepted, and every
// accepted message is processed or reported to Dropped with ErrClosed,
// exactly once.
func TestCloseRacingSends(t *testing.T) {
	rounds, producers, per := 200, 4, 300
	if race.Enabled {
		rounds = 50
	}
	for round := range rounds {
		c := newSeqChecker(producers, per)
		var closedDrops atomic.Int64
		inv := &funcInvoker{invoke: c.Invoke, dropped: func(v int, reason error) {
			if !errors.Is(reason, ErrClosed) {
				panic(reason)
			}
			closedDrops.Add(1)
			c.Dropped(v, reason)
		}}
		mb := mustNew[int](t, inv, Options{Capacity: 8, Throughput: 1 + round%3})
		var accepted, refused atomic.Int64
		var wg sync.WaitGroup
		for p := range producers {
			wg.Go(func() {
				var run [3]int
				for s := 1; s <= per; s++ {
					pol := []Policy{Block, FailFast, DropOldest}[s%3]
					if pol == DropOldest {
						pol = Block // a drop would be counted, but not as ErrClosed
					}
					var err error
					if s%4 == 0 && s+len(run) <= per+1 { // a run of three through SendBatch
						for i := range run {
							run[i] = p<<24 | (s + i)
						}
						var n int
						n, err = mb.SendBatch(context.Background(), run[:], pol)
						accepted.Add(int64(n))
						if err == nil {
							s += len(run) - 1
							continue
						}
						s += n // the rest of the run after the refused one is skipped
					} else if err = mb.Send(context.Background(), p<<24|s, pol); err == nil {
						accepted.Add(1)
					}
					switch {
					case err == nil:
					case errors.Is(err, ErrClosed):
						refused.Add(1)
					case errors.Is(err, ErrFull):
					default:
						panic(err)
					}
				}
			})
		}
		if round%2 == 0 {
			runtime.Gosched()
		} else {
			time.Sleep(time.Duration(round%7) * time.Microsecond * 20)
		}
		mb.Close()
		wg.Wait()
		// All Sends and Close have returned; at most the message of a turn
		// in progress is still being invoked.
		waitFor(t, "accounting to settle", func() bool {
			return c.processed.Load()+c.dropped.Load() == accepted.Load()
		})
		if err := c.err(); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		if n := mb.Len(); n != 0 {
			t.Fatalf("round %d: Len() = %d after Close", round, n)
		}
	}
}

// TestSendBatch checks SendBatch: a run is queued in order behind what was
// queued before; a full mailbox takes the prefix that fits and reports the
// error of the first it refused; after Close nothing is taken.
func TestSendBatch(t *testing.T) {
	ctx := context.Background()
	rec := newRecorder()
	mb := mustNew[int](t, rec, Options{Capacity: 8, Policy: FailFast})
	mb.Suspend()
	if err := mb.Send(ctx, 0, Default); err != nil {
		t.Fatal(err)
	}
	if n, err := mb.SendBatch(ctx, []int{1, 2, 3}, Default); n != 3 || err != nil {
		t.Fatalf("SendBatch of 3 into room for 7: %d, %v", n, err)
	}
	if n, err := mb.SendBatch(ctx, []int{4, 5, 6, 7, 8, 9}, Default); n != 4 || !errors.Is(err, ErrFull) {
		t.Fatalf("SendBatch of 6 into room for 4: %d, %v; want 4, ErrFull", n, err)
	}
	if n, err := mb.SendBatch(ctx, nil, Default); n != 0 || err != nil {
		t.Fatalf("SendBatch of none: %d, %v", n, err)
	}
	mb.Resume()
	rec.await(t, 8)
	mb.Close()
	if n, err := mb.SendBatch(ctx, []int{10}, Default); n != 0 || !errors.Is(err, ErrClosed) {
		t.Fatalf("SendBatch after Close: %d, %v; want 0, ErrClosed", n, err)
	}
	var want []event
	for v := range 8 {
		want = append(want, ev("user", v))
	}
	sameEvents(t, rec.snapshot(), want)
}

func TestOptionsValidation(t *testing.T) {
	inv := &funcInvoker{}
	for _, tt := range []struct {
		o    Options
		want string // "" for valid
	}{
		{Options{}, ""},
		{Options{Capacity: 2, Policy: DropOldest, Throughput: 1}, ""},
		{Options{Capacity: 1 << 24}, ""},
		{Options{Capacity: 100}, "mailbox: capacity must be a power of two between 2 and 16777216, got 100"},
		{Options{Capacity: 1}, "got 1"},
		{Options{Capacity: -4}, "got -4"},
		{Options{Capacity: 1 << 25}, "got 33554432"},
		{Options{Policy: 9}, "mailbox: unknown policy 9"},
		{Options{Throughput: -1}, "mailbox: throughput must be positive, got -1"},
		{Options{Throughput: math.MaxInt32}, ""},
	} {
		mb, err := New[int](inv, tt.o)
		if tt.want == "" {
			if err != nil {
				t.Errorf("New(%+v): %v", tt.o, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tt.want) || mb != nil {
			t.Errorf("New(%+v) = %v, %v; want error containing %q", tt.o, mb, err, tt.want)
		}
	}
	if big := int64(math.MaxInt32) + 1; int64(int(big)) == big { // where int holds it
		if _, err := New[int](inv, Options{Throughput: int(big)}); err == nil || !strings.Contains(err.Error(), "throughput must be at most 2147483647") {
			t.Errorf("New with throughput %d: %v, want the bound's error", big, err)
		}
	}
	var embedded struct {
		_  int
		mb Mailbox[int]
	}
	if err := embedded.mb.Init(inv, Options{Capacity: 3}); err == nil || !strings.Contains(err.Error(), "got 3") {
		t.Errorf("Init with capacity 3: %v, want the capacity error", err)
	}
	mb := mustNew[int](t, inv, Options{})
	if got, want := mb.Options(), (Options{Capacity: DefaultCapacity, Policy: Block, Throughput: DefaultThroughput}); got.Capacity != want.Capacity || got.Policy != want.Policy || got.Throughput != want.Throughput || got.Go != nil || got.Pool != nil {
		t.Fatalf("Options() = %+v, want the defaults %+v", got, want)
	}
	// What Init was given comes back as given: a Go func as Go, a Pool as
	// Pool, each without the other.
	goFn := func(run func()) { go run() }
	if got := mustNew[int](t, inv, Options{Go: goFn, Capacity: 8, Policy: FailFast, Inline: true, Throughput: 3}).Options(); got.Go == nil || got.Pool != nil ||
		got.Capacity != 8 || got.Policy != FailFast || !got.Inline || got.Throughput != 3 {
		t.Fatalf("Options() with Go = %+v", got)
	}
	if got := mustNew[int](t, inv, Options{Pool: syncPool{}}).Options(); got.Pool != (syncPool{}) || got.Go != nil {
		t.Fatalf("Options() with Pool = %+v", got)
	}
}

// TestInitInPlace runs a mailbox made by Init inside another struct, as the
// bus keeps one in each actor: both lanes run, in order, and Close stops it.
func TestInitInPlace(t *testing.T) {
	var got []int
	var mu sync.Mutex
	record := func(v int) { mu.Lock(); got = append(got, v); mu.Unlock() }
	var actor struct {
		name string
		mb   Mailbox[int]
	}
	if err := actor.mb.Init(&funcInvoker{invoke: record, system: func(v int) { record(-v) }}, Options{Capacity: 4}); err != nil {
		t.Fatal(err)
	}
	if err := actor.mb.SendSystem(1); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if err := actor.mb.Send(context.Background(), i, Default); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "four messages", func() bool { mu.Lock(); defer mu.Unlock(); return len(got) == 4 })
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(got, []int{-1, 0, 1, 2}) {
		t.Fatalf("invoked %v, want the system message, then 0, 1, 2", got)
	}
	actor.mb.Close()
	if err := actor.mb.Send(context.Background(), 9, Default); !errors.Is(err, ErrClosed) {
		t.Fatalf("Send after Close: %v, want ErrClosed", err)
	}
}

// TestIdleOwnsNoGoroutine gives 10,000 mailboxes one message each and waits
// for them to go idle: no goroutine may be left behind.
func TestIdleOwnsNoGoroutine(t *testing.T) {
	const n = 10_000
	before := runtime.NumGoroutine()
	var processed atomic.Int64
	inv := &funcInvoker{invoke: func(int) { processed.Add(1) }}
	mbs := make([]*Mailbox[int], n)
	for i := range mbs {
		mbs[i] = mustNew[int](t, inv, Options{Capacity: 2})
		if err := mbs[i].Send(context.Background(), i, Default); err != nil {
			t.Fatal(err)
		}
		if err := mbs[i].SendSystem(i); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "all messages processed", func() bool { return processed.Load() == n })
	waitFor(t, fmt.Sprintf("goroutines to return to %d", before), func() bool { return runtime.NumGoroutine() <= before })
	for _, mb := range mbs {
		if mb.state.Load()&scheduled != 0 {
			t.Fatal("an idle mailbox is still scheduled")
		}
	}
	runtime.KeepAlive(mbs)
}

// TestSendAllocs holds the hot path's budget: a Send and its Invoke allocate
// nothing once the mailbox's ring exists, whether the send finds the mailbox
// idle (and schedules it) or busy.
func TestSendAllocs(t *testing.T) {
	if race.Enabled {
		t.Skip("the race detector allocates")
	}
	done := make(chan struct{}, 1)
	mb := mustNew[*payload](t, &signal{done: done}, Options{Capacity: 64})
	defer mb.Close()
	ctx := context.Background()
	if err := mb.Send(ctx, msg, Default); err != nil { // allocates the ring
		t.Fatal(err)
	}
	<-done
	allocs := testing.AllocsPerRun(1000, func() {
		if err := mb.Send(ctx, msg, Default); err != nil {
			t.Fatal(err)
		}
		<-done
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per Send and Invoke, want 0", allocs)
	}
}

// TestSendBatchAllocs: a batch queued and invoked allocates nothing.
func TestSendBatchAllocs(t *testing.T) {
	if race.Enabled {
		t.Skip("the race detector allocates")
	}
	done := make(chan struct{}, 4)
	mb := mustNew[*payload](t, &signal{done: done}, Options{Capacity: 64})
	defer mb.Close()
	ctx := context.Background()
	batch := []*payload{msg, msg, msg, msg}
	send := func() {
		if n, err := mb.SendBatch(ctx, batch, Default); n != len(batch) || err != nil {
			t.Fatalf("SendBatch: %d, %v", n, err)
		}
		for range batch {
			<-done
		}
	}
	send() // allocates the ring
	if allocs := testing.AllocsPerRun(1000, send); allocs != 0 {
		t.Fatalf("%v allocations per SendBatch of 4 and their Invokes, want 0", allocs)
	}
}

type signal struct{ done chan struct{} }

func (s *signal) InvokeSystem(*payload)   {}
func (s *signal) Dropped(*payload, error) {}
func (s *signal) Invoke(*payload)         { s.done <- struct{}{} }

// TestInline checks Options.Inline: a send that wakes the mailbox invokes
// its message before Send returns, on the sender, without Go; messages that
// arrive during that inline turn go to Go; the system lane never runs
// inline.
func TestInline(t *testing.T) {
	var gos atomic.Int32
	r := newRecorder()
	release := make(chan struct{})
	r.onUser = func(v int) {
		if v == 1 {
			<-release // hold the inline turn while more messages arrive
		}
	}
	mb := mustNew[int](t, r, Options{Inline: true, Go: func(run func()) { gos.Add(1); go run() }})

	if err := mb.Send(context.Background(), 0, Block); err != nil {
		t.Fatal(err)
	}
	if got := r.snapshot(); len(got) != 1 || got[0].v != 0 {
		t.Fatalf("after an inline Send returned: events %v, want [user 0]", got)
	}
	r.await(t, 1)
	if n := gos.Load(); n != 0 {
		t.Fatalf("an inline send called Go %d times", n)
	}

	sent := make(chan error, 1)
	go func() { sent <- mb.Send(context.Background(), 1, Block) }() // runs inline, held
	r.await(t, 1)
	for v := 2; v <= 3; v++ { // the mailbox is scheduled: these only queue
		if err := mb.Send(context.Background(), v, Block); err != nil {
			t.Fatal(err)
		}
	}
	if n := gos.Load(); n != 0 {
		t.Fatalf("sends to a scheduled mailbox called Go %d times", n)
	}
	close(release)
	if err := <-sent; err != nil {
		t.Fatal(err)
	}
	r.await(t, 2)
	if n := gos.Load(); n != 1 {
		t.Fatalf("the rest after an inline turn went to Go %d times, want 1", n)
	}
	waitForf(t, func() string { return "the mailbox stays scheduled" }, func() bool { return mb.state.Load()&scheduled == 0 })

	if err := mb.SendSystem(7); err != nil {
		t.Fatal(err)
	}
	if e := r.await(t, 1); e[0] != (event{kind: "sys", v: 7}) {
		t.Fatalf("got %v, want sys 7", e)
	}
	if n := gos.Load(); n != 2 {
		t.Fatalf("SendSystem: Go called %d times in all, want 2 (never inline)", n)
	}
	want := []event{{kind: "user", v: 0}, {kind: "user", v: 1}, {kind: "user", v: 2}, {kind: "user", v: 3}, {kind: "sys", v: 7}}
	if got := r.snapshot(); !slices.Equal(got, want) {
		t.Fatalf("events %v, want %v", got, want)
	}
}

// allInline makes mustNew build Inline mailboxes; TestEverythingInline sets
// it while it runs the semantic tests again.
var allInline bool

// TestEverythingInline runs the tests of order, overflow, policies, close
// and suspension again with every mailbox Inline: a send that wakes a
// mailbox runs its message itself, which must change none of them.
// (TestSystemLaneServedFirst is left out: its first Invoke waits for a gate
// that the sending goroutine opens only after more sends, which inline is
// a wait on itself, the hazard Options.Inline documents.)
func TestEverythingInline(t *testing.T) {
	allInline = true
	defer func() { allInline = false }()
	for name, f := range map[string]func(*testing.T){
		"SystemLaneRunsWhileSuspended": TestSystemLaneRunsWhileSuspended,
		"SuspendFromInvoke":            TestSuspendFromInvoke,
		"OverflowAccounting":           TestOverflowAccounting,
		"Policies":                     TestPolicies,
		"CloseReportsQueued":           TestCloseReportsQueued,
		"CloseFromInvoke":              TestCloseFromInvoke,
		"CloseRacingSends":             TestCloseRacingSends,
	} {
		t.Run(name, f)
	}
}

// countingPool is a Pool that runs each Turns on a new goroutine and counts
// them.
type countingPool struct{ n atomic.Int64 }

func (p *countingPool) Go(t Turns) { p.n.Add(1); go t.Run() }

// TestPool: a mailbox with Options.Pool hands its turns to the pool instead
// of Go, loses no wake-up and keeps each sender's order (as
// TestNoLostWakeup checks Go).
func TestPool(t *testing.T) {
	const producers, per = 4, 2000
	var pool countingPool
	gos := 0
	c := newSeqChecker(producers, per)
	mb := mustNew[int](t, c, Options{Capacity: 16, Throughput: 3, Pool: &pool, Go: func(run func()) { gos++; go run() }})
	var wg sync.WaitGroup
	for p := range producers {
		wg.Go(func() {
			for s := 1; s <= per; s++ {
				if err := mb.Send(context.Background(), p<<24|s, Block); err != nil {
					panic(err)
				}
			}
		})
	}
	wg.Wait()
	want := int64(producers * per)
	waitForf(t, func() string {
		return fmt.Sprintf("processed %d of %d (a lost wake-up)", c.processed.Load(), want)
	}, func() bool { return c.processed.Load() == want })
	if err := c.err(); err != nil {
		t.Fatal(err)
	}
	if gos != 0 || pool.n.Load() == 0 {
		t.Fatalf("turns through Go %d, through Pool %d: want none through Go", gos, pool.n.Load())
	}
	mb.Close()
}

// TestPoolFirstTurnAllocs: a fresh mailbox's first turn costs one
// allocation less through a Pool than through Go's func, bound to its
// mailbox.
func TestPoolFirstTurnAllocs(t *testing.T) {
	if race.Enabled {
		t.Skip("the race detector allocates")
	}
	first := func(o Options) float64 {
		done := make(chan struct{}, 1)
		return testing.AllocsPerRun(100, func() {
			m := new(Mailbox[*payload])
			if err := m.Init(&signal{done: done}, o); err != nil {
				t.Fatal(err)
			}
			if err := m.SendSystem(msg); err != nil {
				t.Fatal(err)
			}
			for m.state.Load()&scheduled != 0 {
				runtime.Gosched()
			}
		})
	}
	withPool := first(Options{Pool: syncPool{}})
	withGo := first(Options{Go: func(run func()) { run() }})
	t.Logf("allocations of a fresh mailbox's first turn: %v through Pool, %v through Go", withPool, withGo)
	if withPool >= withGo {
		t.Fatalf("a fresh mailbox's first turn: %v allocations through Pool, %v through Go; want fewer through Pool", withPool, withGo)
	}
}

// syncPool runs each Turns on the caller, which TestPool's allocation
// count allows: its caller holds nothing the turn waits for.
type syncPool struct{}

func (syncPool) Go(t Turns) { t.Run() }

// TestHold: a held mailbox runs nothing, and hands nothing to its Pool,
// until its holder runs the Turns; then it runs what queued meanwhile,
// system lane first, and is idle again. Hold fails on a mailbox that is
// scheduled or closed.
func TestHold(t *testing.T) {
	var pool countingPool
	rec := newRecorder()
	mb := mustNew[int](t, rec, Options{Pool: &pool})
	turns, ok := mb.Hold()
	if !ok {
		t.Fatal("Hold() of a fresh mailbox = false")
	}
	if _, ok := mb.Hold(); ok {
		t.Fatal("Hold() of a held mailbox = true")
	}
	if err := mb.Send(context.Background(), 1, Default); err != nil {
		t.Fatal(err)
	}
	if err := mb.SendSystem(100); err != nil {
		t.Fatal(err)
	}
	if n := pool.n.Load(); n != 0 {
		t.Fatalf("a held mailbox handed %d turns to its Pool", n)
	}
	if got := rec.snapshot(); len(got) != 0 {
		t.Fatalf("a held mailbox ran %v", got)
	}
	turns.Run()
	sameEvents(t, rec.snapshot(), []event{ev("sys", 100), ev("user", 1)})
	if err := mb.Send(context.Background(), 2, Default); err != nil {
		t.Fatal(err)
	}
	rec.await(t, 3)
	if n := pool.n.Load(); n != 1 {
		t.Fatalf("after its held turns ran, a send handed %d turns to the Pool, want 1", n)
	}
	mb.Close()
	if _, ok := mb.Hold(); ok {
		t.Fatal("Hold() of a closed mailbox = true")
	}
}

// TestClaim: a claimed mailbox runs nothing and hands nothing to its Pool
// while its holder invokes messages itself; Open says when the holder must
// stop (a system message waits, the mailbox is suspended or closed); on
// Release what queued meanwhile goes to the Pool, system lane first. Claim
// fails on a mailbox that is scheduled (or held), suspended or closed.
func TestClaim(t *testing.T) {
	var pool countingPool
	rec := newRecorder()
	mb := mustNew[int](t, rec, Options{Pool: &pool})
	if !mb.Claim() {
		t.Fatal("Claim() of a fresh mailbox = false")
	}
	if mb.Claim() {
		t.Fatal("Claim() of a claimed mailbox = true")
	}
	if _, ok := mb.Hold(); ok {
		t.Fatal("Hold() of a claimed mailbox = true")
	}
	if !mb.Open() {
		t.Fatal("Open() of a claimed idle mailbox = false")
	}
	rec.Invoke(1) // the holder's own
	if err := mb.Send(context.Background(), 2, Default); err != nil {
		t.Fatal(err)
	}
	if !mb.Open() {
		t.Fatal("a user message queued behind the holder closed it: Open() = false")
	}
	if err := mb.SendSystem(100); err != nil {
		t.Fatal(err)
	}
	if mb.Open() {
		t.Fatal("Open() with a system message waiting = true")
	}
	if n := pool.n.Load(); n != 0 {
		t.Fatalf("a claimed mailbox handed %d turns to its Pool", n)
	}
	if got := rec.snapshot(); len(got) != 1 {
		t.Fatalf("a claimed mailbox ran %v", got[1:])
	}
	mb.Release()
	rec.await(t, 3)
	sameEvents(t, rec.snapshot(), []event{ev("user", 1), ev("sys", 100), ev("user", 2)})
	if n := pool.n.Load(); n != 1 {
		t.Fatalf("Release handed %d turns to the Pool, want 1", n)
	}

	// Not while it is held, nor suspended.
	var held countingPool
	mb2 := mustNew[int](t, newRecorder(), Options{Pool: &held})
	turns, _ := mb2.Hold()
	mb2.Send(context.Background(), 1, Default)
	if mb2.Claim() {
		t.Fatal("Claim() of a held mailbox = true")
	}
	turns.Run()
	mb3 := mustNew[int](t, newRecorder(), Options{Pool: &held})
	mb3.Suspend()
	if mb3.Claim() {
		t.Fatal("Claim() of a suspended mailbox = true")
	}
	mb3.Resume() // schedules a turn, which finds nothing to run
	for deadline := time.Now().Add(time.Minute); !mb3.Claim(); {
		if time.Now().After(deadline) {
			t.Fatal("Claim() of a resumed idle mailbox = false")
		}
		runtime.Gosched()
	}
	mb3.Suspend()
	if mb3.Open() {
		t.Fatal("Open() of a suspended mailbox = true")
	}
	mb3.Resume() // while claimed: nothing to run, nothing handed on
	mb3.Close()
	if mb3.Open() {
		t.Fatal("Open() of a closed mailbox = true")
	}
	mb3.Release()
	if mb3.Claim() {
		t.Fatal("Claim() of a closed mailbox = true")
	}
}
