package mailbox

import (
	"context"
	"errors"
	"fmt"
	"math"
	"runtime"
	"sync"
	"sync/atomic"
)

// Errors returned by Send.
var (
	ErrFull   = errors.New("mailbox: full")
	ErrClosed = errors.New("mailbox: closed")
	// ErrDropped is the reason passed to Invoker.Dropped for a message
	// pushed out by a newer one under DropOldest.
	ErrDropped = errors.New("mailbox: dropped as oldest")
)

// Policy says what Send does when the mailbox is full.
type Policy uint8

const (
	Default    Policy = iota // the mailbox's own policy (Options.Policy)
	Block                    // wait for room until the sender's ctx ends
	FailFast                 // return ErrFull at once
	DropOldest               // drop the oldest queued message to make room, reporting it to Dropped
)

func (p Policy) String() string {
	switch p {
	case Default:
		return "default"
	case Block:
		return "block"
	case FailFast:
		return "fail-fast"
	case DropOldest:
		return "drop-oldest"
	}
	return fmt.Sprintf("policy(%d)", uint8(p))
}

// Invoker is what a mailbox runs its messages on: the actor behind it. All
// calls of InvokeSystem and Invoke happen on one goroutine at a time, in
// order; never two at once. They must not panic: the mailbox's goroutine
// does not recover, so the caller wraps its actor (the bus recovers a
// failing actor and Suspends its mailbox).
type Invoker[T any] interface {
	// InvokeSystem handles one message of the system lane.
	InvokeSystem(msg T)
	// Invoke handles one user message.
	Invoke(msg T)
	// Dropped is told of every message the mailbox gives up on: the oldest
	// one under DropOldest (reason ErrDropped), or one left queued or sent
	// late when the mailbox closes (reason ErrClosed). It may be called on
	// any goroutine, concurrently with Invoke.
	Dropped(msg T, reason error)
}

// Options configure a mailbox. The zero value is valid.
type Options struct {
	// Capacity bounds the user lane; it must be a power of two. Zero means
	// DefaultCapacity. The ring of cells is allocated on the first send, so
	// a mailbox that never receives costs little.
	Capacity int
	// Policy is what Send does when the user lane is full and the sender
	// passes Default. Zero means Block.
	Policy Policy
	// Inline makes a Send that wakes an idle mailbox invoke its message on
	// the sending goroutine, before Send returns, instead of handing the
	// turn to Go: one goroutine hand-off less per wake-up, so that a
	// request to an actor costs about a function call. The inline turn
	// takes the system lane and one user message, the oldest queued: the
	// one just sent, unless another sender's landed first in the idle
	// mailbox. Whatever else has arrived goes to Go as usual. SendSystem, Resume and a Send to a mailbox that is already
	// scheduled never run inline.
	//
	// The sender waits for Invoke: use it only where handling a message is
	// short and never blocks. A sender that is itself a consumer (an actor,
	// a transport's reader) delivers nothing else meanwhile.
	Inline bool
	// Throughput is how many user messages one turn processes before the
	// mailbox yields its goroutine to others, at most math.MaxInt32. Zero
	// means DefaultThroughput.
	Throughput int
	// Go runs a scheduled mailbox's work, run, on some goroutine. Nil means a
	// new goroutine each time (the go statement). A runtime that keeps a
	// pool of goroutines passes its pool here, so that waking a mailbox does
	// not pay for a new goroutine and for growing its stack again.
	Go func(run func())
	// Pool, when set, runs the mailbox's turns instead of Go, without the
	// allocation per mailbox that binding Go's func to its mailbox costs:
	// a runtime spawning a million actors saves a million of them.
	Pool Pool
}

// Pool runs scheduled mailboxes' turns on goroutines it keeps
// (Options.Pool).
type Pool interface {
	// Go calls t.Run once, on a goroutine other than the caller's.
	Go(t Turns)
}

// Turns is the work of one scheduled mailbox, handed to a Pool: Run runs
// its turns until both lanes are empty, as the goroutine Go is given does.
// The zero Turns runs nothing.
type Turns struct{ m turner }

type turner interface{ run() }

// Run runs the turns; call it once per Turns the Pool was handed.
func (t Turns) Run() {
	if t.m != nil {
		t.m.run()
	}
}

const (
	DefaultCapacity   = 1024
	DefaultThroughput = 256
	maxCapacity       = 1 << 24
)

func (o *Options) fill() error {
	if o.Capacity == 0 {
		o.Capacity = DefaultCapacity
	}
	if o.Capacity < 2 || o.Capacity > maxCapacity || o.Capacity&(o.Capacity-1) != 0 {
		return fmt.Errorf("mailbox: capacity must be a power of two between 2 and %d, got %d", maxCapacity, o.Capacity)
	}
	if o.Policy == Default {
		o.Policy = Block
	}
	if o.Policy > DropOldest {
		return fmt.Errorf("mailbox: unknown policy %d", o.Policy)
	}
	if o.Throughput == 0 {
		o.Throughput = DefaultThroughput
	}
	if o.Throughput < 0 {
		return fmt.Errorf("mailbox: throughput must be positive, got %d", o.Throughput)
	}
	if o.Throughput > math.MaxInt32 {
		return fmt.Errorf("mailbox: throughput must be at most %d, got %d", math.MaxInt32, o.Throughput)
	}
	return nil
}

// state bits
const (
	scheduled = 1 << iota // a goroutine owns the mailbox and will look at both lanes before it lets go
	suspended             // user messages wait; the system lane still runs
	closed                // nothing more is accepted; what is queued is dropped
)

// Mailbox is a bounded multi-producer single-consumer queue of user messages,
// an unbounded lane of system messages served first, and the scheduling that
// runs its Invoker only while there is work.
//
// An idle mailbox owns no goroutine. A send that finds it idle starts one (or
// hands the work to Options.Go); the goroutine runs every system message, then
// up to Throughput user messages, yields the processor if more are waiting,
// and lets go of the mailbox when both lanes are empty. A send racing with that exit is never lost: the sender publishes its
// message before it looks at the state, and the exiting goroutine clears the
// state before it looks at the lanes for the last time (both sequentially
// consistent), so one of them sees the other.
//
// Concurrency: Send, SendSystem, Suspend, Resume, Close and Len are safe from
// any goroutine. The user lane is lock-free; sysMu guards only the system
// lane, which sees a handful of messages per actor lifetime.
//
// The options are kept in their smallest form and the fields of four bytes
// sit in pairs, so that a mailbox inside every actor spends no bytes on
// padding; the system lane's slice is made by its first message, so that
// an idle mailbox carries one pointer for it instead of a slice header.
type Mailbox[T any] struct {
	state  atomic.Uint32
	sysLen atomic.Int32            // len(sys), readable without sysMu
	user   atomic.Pointer[ring[T]] // allocated by the first send
	inv    Invoker[T]

	capacity   uint32 // Options.Capacity
	throughput int32  // Options.Throughput
	policy     Policy // Options.Policy
	inline     bool   // Options.Inline

	sysMu sync.Mutex
	sys   *[]T // the system lane; made by the first SendSystem and kept

	pool Pool // Options.Pool, or a *goRunner for Options.Go and the go statement
}

// New returns an idle mailbox that runs messages on inv.
func New[T any](inv Invoker[T], o Options) (*Mailbox[T], error) {
	m := new(Mailbox[T])
	if err := m.Init(inv, o); err != nil {
		return nil, err
	}
	return m, nil
}

// Init makes a zero Mailbox an idle mailbox that runs messages on inv, as New
// does, for a runtime that keeps the mailbox inside its own per-actor struct:
// one allocation per actor instead of two. Call it once, before any other
// method; a Mailbox must not be copied after Init.
func (m *Mailbox[T]) Init(inv Invoker[T], o Options) error {
	if err := o.fill(); err != nil {
		return err
	}
	m.inv = inv
	m.capacity, m.throughput = uint32(o.Capacity), int32(o.Throughput)
	m.policy, m.inline = o.Policy, o.Inline
	m.pool = o.Pool
	if m.pool == nil {
		// The method value is made once here: go m.run() would allocate
		// a closure on every start.
		m.pool = &goRunner{goFn: o.Go, run: m.run}
	}
	return nil
}

// goRunner is the Pool of a mailbox without one: it runs the turns through
// Options.Go, or on a new goroutine when that is nil too.
type goRunner struct {
	goFn func(run func())
	run  func() // the mailbox's run
}

func (g *goRunner) Go(Turns) {
	if g.goFn != nil {
		g.goFn(g.run)
		return
	}
	go g.run()
}

// Options returns the mailbox's options with defaults filled in.
func (m *Mailbox[T]) Options() Options {
	o := Options{Capacity: int(m.capacity), Policy: m.policy, Inline: m.inline, Throughput: int(m.throughput), Pool: m.pool}
	if g, ok := m.pool.(*goRunner); ok {
		o.Go, o.Pool = g.goFn, nil
	}
	return o
}

func (m *Mailbox[T]) ring() *ring[T] {
	if r := m.user.Load(); r != nil {
		return r
	}
	r := newRing[T](int(m.capacity))
	if m.user.CompareAndSwap(nil, r) {
		return r
	}
	return m.user.Load()
}

// Send queues a user message. p chooses what happens when the mailbox is full
// (Default: the mailbox's policy); Block waits until ctx ends, returning
// ctx.Err(): it first retries for a moment (a running consumer frees a cell
// every few tens of nanoseconds), then parks until the consumer takes a
// message, which wakes every parked sender. After Close, Send returns ErrClosed. A message Send accepted is
// either invoked or reported to Dropped: never lost.
func (m *Mailbox[T]) Send(ctx context.Context, v T, p Policy) error {
	if p == Default {
		p = m.policy
	}
	if m.state.Load()&closed != 0 {
		return ErrClosed
	}
	r := m.ring()
	spins := 0
	for {
		if r.push(v) {
			if m.state.Load()&closed != 0 {
				// Close may have drained before our push landed; drain
				// again so our message is reported, not stranded.
				m.drain()
				return nil
			}
			m.schedule(m.inline)
			return nil
		}
		switch p {
		case FailFast:
			return ErrFull
		case DropOldest:
			if old, ok := r.pop(); ok {
				m.inv.Dropped(old, ErrDropped)
			} else {
				// The oldest cell is claimed but not yet written (or
				// was just taken); let its writer finish.
				runtime.Gosched()
			}
		default:
			// A consumer that is running frees a cell every few tens of
			// nanoseconds: retry a while (a failed push only reads the
			// tail and one cell) before paying for a park and a wake-up.
			if spins < blockSpins {
				spins++
				if spins%blockYieldEvery == 0 {
					runtime.Gosched()
				}
				continue
			}
			if err := m.waitForSpace(ctx, r); err != nil {
				return err
			}
		}
		if m.state.Load()&closed != 0 {
			return ErrClosed
		}
	}
}

// SendBatch queues vs in order, as many Sends of p would, and returns how
// many it queued: all of them, or those before the one whose Send failed
// (with that error). Where the ring has room it claims the cells of the
// whole run at once and schedules the mailbox once, so a transport's
// reader handing over what it read together pays one claim instead of one
// per message. An Inline mailbox takes them one Send at a time, each
// running inline when it finds the mailbox idle.
func (m *Mailbox[T]) SendBatch(ctx context.Context, vs []T, p Policy) (int, error) {
	if len(vs) == 0 {
		return 0, nil
	}
	n := 0
	if !m.inline {
		if m.state.Load()&closed != 0 {
			return 0, ErrClosed
		}
		n = m.ring().pushN(vs)
		if n > 0 {
			if m.state.Load()&closed != 0 {
				m.drain() // as in Send: what landed after Close's drain is reported
			} else {
				m.schedule(false)
			}
		}
	}
	for ; n < len(vs); n++ {
		if err := m.Send(ctx, vs[n], p); err != nil {
			return n, err
		}
	}
	return n, nil
}

// How long a Block send retries a full mailbox before it parks.
const (
	blockSpins      = 128
	blockYieldEvery = 32
)

// waitForSpace blocks until the ring may have room, the mailbox closes, or
// ctx ends.
func (m *Mailbox[T]) waitForSpace(ctx context.Context, r *ring[T]) error {
	r.waiters.Add(1)
	defer r.waiters.Add(-1)
	var ch chan struct{}
	for {
		if sp := r.space.Load(); sp != nil {
			ch = *sp
			break
		}
		c := make(chan struct{})
		if r.space.CompareAndSwap(nil, &c) {
			ch = c
			break
		}
	}
	// Re-check after registering: the consumer may have drained to the
	// low-water mark between our failed push and waiters.Add, and it only
	// wakes senders when it sees both.
	if m.belowLowWater(r) || m.state.Load()&closed != 0 {
		return nil
	}
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// belowLowWater reports whether a full ring has drained to half. Parked
// senders are woken only then, not after every pop: waking them one cell at
// a time turned a full mailbox into a park/wake per message, several times
// slower than letting the consumer free half the ring first.
func (m *Mailbox[T]) belowLowWater(r *ring[T]) bool {
	return r.len() <= int(m.capacity/2)
}

// wakeSenders releases every sender blocked in waitForSpace on r.
func (r *ring[T]) wakeSenders() {
	if sp := r.space.Swap(nil); sp != nil {
		close(*sp)
	}
}

// SendSystem queues a system message. System messages are never refused for
// lack of room and run before any queued user message, also while the mailbox
// is suspended. After Close it returns ErrClosed.
func (m *Mailbox[T]) SendSystem(v T) error {
	m.sysMu.Lock()
	if m.state.Load()&closed != 0 {
		m.sysMu.Unlock()
		return ErrClosed
	}
	if m.sys == nil {
		m.sys = new([]T)
	}
	*m.sys = append(*m.sys, v)
	m.sysLen.Add(1)
	m.sysMu.Unlock()
	m.schedule(false)
	return nil
}

func (m *Mailbox[T]) popSystem() (T, bool) {
	var zero T
	if m.sysLen.Load() == 0 {
		return zero, false
	}
	m.sysMu.Lock()
	defer m.sysMu.Unlock()
	if m.sys == nil || len(*m.sys) == 0 {
		return zero, false
	}
	q := *m.sys
	v := q[0]
	q[0] = zero
	if q = q[1:]; len(q) == 0 {
		q = nil // the array goes; the next message makes a small one
	}
	*m.sys = q
	m.sysLen.Add(-1)
	return v, true
}

// Suspend stops user messages from running; they keep queueing. The system
// lane still runs. Typically called by the Invoker when its actor fails.
func (m *Mailbox[T]) Suspend() { m.state.Or(suspended) }

// Resume lets user messages run again after Suspend.
func (m *Mailbox[T]) Resume() {
	m.state.And(^uint32(suspended))
	m.schedule(false)
}

// Suspended reports whether user messages are held back.
func (m *Mailbox[T]) Suspended() bool { return m.state.Load()&suspended != 0 }

// Close stops the mailbox: later sends fail with ErrClosed, senders blocked
// for room are released, and every message still queued, user and system, is
// reported to Dropped with ErrClosed. Close does not wait for a turn in
// progress: the one message being invoked, if any, finishes after Close
// returns, and nothing runs after it. Close may be called from inside
// Invoke. Close is idempotent.
func (m *Mailbox[T]) Close() {
	m.sysMu.Lock()
	old := m.state.Or(closed)
	m.sysMu.Unlock()
	if old&closed != 0 {
		return
	}
	if r := m.user.Load(); r != nil { // no ring, no sender waiting for room in it
		r.wakeSenders()
	}
	m.drain()
}

// Closed reports whether Close was called.
func (m *Mailbox[T]) Closed() bool { return m.state.Load()&closed != 0 }

func (m *Mailbox[T]) drain() {
	for {
		v, ok := m.popSystem()
		if !ok {
			break
		}
		m.inv.Dropped(v, ErrClosed)
	}
	r := m.user.Load()
	if r == nil {
		return
	}
	for r.len() > 0 {
		v, ok := r.pop()
		if !ok {
			// A producer claimed a cell and has not written it yet; it
			// will see closed and drain again once it has.
			return
		}
		m.inv.Dropped(v, ErrClosed)
	}
}

// Len is the number of user messages queued.
func (m *Mailbox[T]) Len() int {
	if r := m.user.Load(); r != nil {
		return r.len()
	}
	return 0
}

// schedule claims an idle mailbox that has work and hands its run to Go;
// with inline (an Inline mailbox's Send), it runs one short turn on the
// caller instead and hands only what is left to Go.
func (m *Mailbox[T]) schedule(inline bool) {
	for {
		s := m.state.Load()
		if s&(scheduled|closed) != 0 {
			return
		}
		if s&suspended != 0 {
			if m.sysLen.Load() == 0 {
				return
			}
			inline = false // only the system lane may run, and not on a sender
		}
		if m.state.CompareAndSwap(s, s|scheduled) {
			break
		}
	}
	if !inline {
		m.goRun()
		return
	}
	// Inline: one short turn here; anything left goes to Go.
	m.turnOf(1)
	m.state.And(^uint32(scheduled))
	if m.hasWork() && m.reclaim() {
		m.goRun()
	}
}

// Hold claims an idle mailbox as a send that schedules it would, without
// handing it to the Pool: messages sent meanwhile queue and none runs until
// the caller runs the Turns returned, on a goroutine of its choice. A
// runtime uses it to do something on the mailbox's behalf before its first
// message, such as starting an actor, or to batch the first turns of many
// new mailboxes. ok is false when the mailbox is not idle (scheduled, or
// closed); then the caller must not run t.
func (m *Mailbox[T]) Hold() (t Turns, ok bool) {
	for {
		s := m.state.Load()
		if s&(scheduled|closed) != 0 {
			return Turns{}, false
		}
		if m.state.CompareAndSwap(s, s|scheduled) {
			return Turns{m}, true
		}
	}
}

// Claim takes an idle mailbox with both lanes empty, not suspended, for
// the caller to invoke user messages on directly (through its own
// Invoker), as an Inline Send that finds the mailbox idle would, but
// without queueing each one first: a transport's reader running a batch
// for an inline actor pays one claim for the batch instead of a push, a
// schedule and a pop per message. It reports whether it took the mailbox.
// While the caller holds it no turn runs and Sends queue; the caller
// invokes a message only while Open reports true, and lets go with
// Release.
func (m *Mailbox[T]) Claim() bool {
	s := m.state.Load()
	if s&(scheduled|closed|suspended) != 0 || m.sysLen.Load() != 0 || !m.empty() {
		return false
	}
	if !m.state.CompareAndSwap(s, s|scheduled) {
		return false
	}
	if m.sysLen.Load() != 0 || !m.empty() { // sent between the looks and the claim
		m.Release()
		return false
	}
	return true
}

// Open reports whether the caller holding the mailbox (Claim) may invoke a
// user message now: it is not closed or suspended (a failed Invoke may
// have suspended it), and no system message waits, since those run first.
func (m *Mailbox[T]) Open() bool {
	return m.state.Load()&(closed|suspended) == 0 && m.sysLen.Load() == 0
}

// Release lets go of a mailbox the caller claimed; what was sent to it
// meanwhile goes to its Pool, as at the end of a turn.
func (m *Mailbox[T]) Release() {
	m.state.And(^uint32(scheduled))
	if m.hasWork() && m.reclaim() {
		m.goRun()
	}
}

// empty reports whether no user message is queued, written or not.
func (m *Mailbox[T]) empty() bool {
	r := m.user.Load()
	return r == nil || r.len() == 0
}

// Inline reports Options.Inline.
func (m *Mailbox[T]) Inline() bool { return m.inline }

// goRun hands the scheduled mailbox's work to its Pool (Options.Pool, or
// the goRunner of Options.Go); the caller won the scheduled bit by a CAS.
func (m *Mailbox[T]) goRun() { m.pool.Go(Turns{m}) }

func (m *Mailbox[T]) hasWork() bool {
	s := m.state.Load()
	if s&closed != 0 {
		return false
	}
	if m.sysLen.Load() > 0 {
		return true
	}
	if s&suspended != 0 {
		return false
	}
	r := m.user.Load()
	return r != nil && r.ready()
}

// run is one scheduled goroutine's life: turns until both lanes are empty.
func (m *Mailbox[T]) run() {
	for {
		budget := m.turn()
		if budget == 0 && m.hasWork() {
			runtime.Gosched() // let other actors run; we keep the mailbox
			continue
		}
		m.state.And(^uint32(scheduled))
		if !m.hasWork() || !m.reclaim() {
			return
		}
	}
}

// reclaim takes the mailbox back after run let go of it and then found work:
// false if another goroutine scheduled it meanwhile, or it closed. A CAS that
// fails only because another bit changed (Suspend, Resume) is retried:
// giving up then would strand the work no sender will schedule.
func (m *Mailbox[T]) reclaim() bool {
	for {
		s := m.state.Load()
		if s&(scheduled|closed) != 0 {
			return false
		}
		if m.state.CompareAndSwap(s, s|scheduled) {
			return true
		}
	}
}

// turn runs system messages first, then up to Throughput user messages,
// re-checking the system lane before each. It returns the unused budget.
func (m *Mailbox[T]) turn() int { return m.turnOf(int(m.throughput)) }

// turnOf is a turn of at most budget user messages.
func (m *Mailbox[T]) turnOf(budget int) int {
	r := m.user.Load()
	for budget > 0 {
		s := m.state.Load()
		if s&closed != 0 {
			return budget // Close reports what is left to Dropped
		}
		if m.sysLen.Load() > 0 {
			if v, ok := m.popSystem(); ok {
				m.inv.InvokeSystem(v)
				continue // it may have suspended or closed the mailbox: look again
			}
		}
		if s&suspended != 0 {
			return budget
		}
		if r == nil {
			if r = m.user.Load(); r == nil {
				return budget
			}
		}
		v, ok := r.pop()
		if !ok {
			return budget
		}
		if r.waiters.Load() != 0 && m.belowLowWater(r) {
			r.wakeSenders()
		}
		m.inv.Invoke(v)
		budget--
	}
	return budget
}
