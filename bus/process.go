package bus

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/xbus-dev/xbus/bus/placement"
	"github.com/xbus-dev/xbus/mailbox"
)

// delivery is what a mailbox holds: the message and where it came from. It is
// stored by value in the mailbox ring, so a Tell in process allocates nothing.
//
// It is 32 bytes, the most the compiler keeps in registers: a delivery with
// a field per origin (48 bytes) was copied through memory at every hand-off
// (send, the ring, Invoke, the Context), and each copy stalled the
// processor's store forwarding. src is one pointer whose type tag says;
// read it only through the methods below.
type delivery struct {
	msg any
	src unsafe.Pointer // nil, *process, *askCall, *inbound or *actorAsk, as tag's kind says
	tag uint64         // the kind in the low bits; for a local ask, its call's arming above them
}

// Kinds of delivery, in delivery.tag's low bits.
const (
	fromOutside  = iota // a message from outside any actor; src is nil
	fromActor           // a tell from a local actor; src is the *process
	localAsk            // an Ask from outside any actor; src is the *askCall
	fromLink            // an envelope from a peer; src is the *inbound
	actorAskKind        // an ask from a local actor (Context.Ask); src is an *actorAsk

	kindBits = 3
	kindMask = 1<<kindBits - 1

	lentBit = 1 << kindBits // of a fromLink delivery (only): its message is a lent body (see lend)
)

// actorAsk is where an actor's ask came from and where its reply goes. It is
// allocated per ask: a delivery has room for one pointer. An ask from
// outside any actor that carries headers or a deadline comes in one too,
// with from nil, so that its actor can read them (Context.Headers,
// Context.Deadline) however long the asker waits.
type actorAsk struct {
	from       *process
	call       *askCall
	seq        uint64
	headers    []Header
	deadline   time.Time
	cancelable bool // the asker's context can end
	wantsReply bool // the asker reads the reply's headers
}

func tellOf(msg any, from *process) delivery {
	if from == nil {
		return delivery{msg: msg}
	}
	return delivery{msg: msg, src: unsafe.Pointer(from), tag: fromActor}
}

func askOf(msg any, call *askCall, seq uint64, from *process) delivery {
	if from == nil && !call.meta {
		return delivery{msg: msg, src: unsafe.Pointer(call), tag: seq<<kindBits | localAsk}
	}
	a := &actorAsk{from: from, call: call, seq: seq}
	if call.meta {
		a.headers, a.deadline = call.headers, call.deadline
		a.cancelable, a.wantsReply = call.cancelable, call.wantsReply
	}
	return delivery{msg: msg, src: unsafe.Pointer(a), tag: actorAskKind}
}

// asked returns the actorAsk of an ask from this process, or nil.
func (d *delivery) asked() *actorAsk {
	if d.tag&kindMask == actorAskKind {
		return (*actorAsk)(d.src)
	}
	return nil
}

func linkOf(msg any, in *inbound) delivery {
	return delivery{msg: msg, src: unsafe.Pointer(in), tag: fromLink}
}

// lentOf is linkOf for a lent body: Receive gives its block back.
func lentOf(msg any, in *inbound) delivery {
	return delivery{msg: msg, src: unsafe.Pointer(in), tag: fromLink | lentBit}
}

// from is the local actor that sent d, or nil.
func (d *delivery) from() *process {
	switch d.tag & kindMask {
	case fromActor:
		return (*process)(d.src)
	case actorAskKind:
		return (*actorAsk)(d.src).from
	}
	return nil
}

// call is the pending call and its arming of a local ask, or nil.
func (d *delivery) call() (*askCall, uint64) {
	switch d.tag & kindMask {
	case localAsk:
		return (*askCall)(d.src), d.tag >> kindBits
	case actorAskKind:
		a := (*actorAsk)(d.src)
		return a.call, a.seq
	}
	return nil, 0
}

// in is the envelope d came in, when it came from a peer, or nil.
func (d *delivery) in() *inbound {
	if d.tag&kindMask == fromLink {
		return (*inbound)(d.src)
	}
	return nil
}

// inbound is what the bus keeps of an envelope received from a peer.
type inbound struct {
	env      Envelope // header fields; Msg decoded
	link     Link
	deadline time.Time // the asker's, on this node's clock (arrival + env.Timeout); zero for none
	canceled atomic.Bool
	answered atomic.Bool   // an answer went: a later one (an abandoned actor's) is dropped
	hooks    cancelHooks   // run when canceled is set (Context.AfterCancel)
	shared   bool          // a record of Bus.tellSrc: immutable, shared by many tells, never recycled
	misses   atomic.Uint32 // of a shared record: tells of other senders it turned away (tellSource)
	peer     NodeID        // of an ask in Bus.inbound: the node that sent it
	next     *inbound      // of an ask in Bus.inbound: the next one with its correlation id
}

// cancel marks an ask from a peer as given up on and runs its hooks.
func (in *inbound) cancel() {
	in.canceled.Store(true)
	in.hooks.fire(0)
}

// System-lane messages.
type (
	sysStop     struct{ reason error }
	sysResume   struct{}
	sysRestart  struct{ actor Actor }
	childFailed struct {
		child *process
		f     Failure
	}
	sysCallback struct {
		fn    func(reply any, err error)
		reply any
		err   error
	}
	sysTerminated struct{ t Terminated }
)

// poison, queued in the user lane, stops the actor once every message queued
// before it has run: the graceful stop of Close.
type poison struct{}

// process is one actor instance: its mailbox, the actor value and its place
// in the tree.
//
// Ownership: actor, ctx, stopping, replyHdrs (with kin's reply headers)
// and the actor's state belong to the goroutine the mailbox runs (one at
// a time). mu guards ending, stopped, finished and the rest of kin's
// fields but its stop context, which other actors touch; kin is stored
// under mu and may be loaded without it. stats is safe for concurrent
// use.
//
// The mailbox lives inside the process, and what few actors use (kin) is
// made on first use, so that an idle actor is one allocation.
type process struct {
	// Written as messages come and go.
	mb           mailbox.Mailbox[delivery]
	ctx          Context       // with the actor's flags stopping, stopAfter and halting in its padding
	ending       bool          // end has begun, by the stop or by its abandonment; guarded by mu
	stopped      bool          // guarded by mu; here, where it costs no padding
	finished     bool          // stop has run to its end; done, if made, is closed; guarded by mu
	replyHdrs    bool          // kin holds reply headers (Context.SetReplyHeaders); the actor's goroutine's
	servingState atomic.Uint32 // see servingNone

	// Read-only once made, on the line of what runs the actor writes
	// (a process is 256 bytes, four lines): stats, which every asker of
	// the name writes, starts the next line.
	opts  *spawnOpts // with the bus and the parent
	actor Actor      // replaced only by a restart
	ref   Ref

	stats placement.Stats // asks queued, running or promised here (the placement load), and health

	mu  sync.Mutex
	kin atomic.Pointer[kin] // made by the first child, watcher, failure, stop with a reason, Done, StopContext or SetReplyHeaders; stored under mu
}

// stopCtx is an actor's Context.StopContext: canceled by cancelServing, or by end.
type stopCtx struct {
	ctx    context.Context
	cancel context.CancelFunc
}

// States of process.servingState, which publishes the ask Receive is
// running, ctx.cur, for a stop to cancel or answer. The actor's goroutine
// writes ctx.cur while the state is servingNone, then publishes it
// (servingSet); a stop reads it only while it holds it (servingHeld, with
// mu locked), and the actor, when its Receive returns, takes it back with
// one compare-and-swap, or waits on mu for the stop to let go, before it
// writes ctx.cur again. An ask's turn so pays two atomic operations instead
// of two lock and unlock pairs, and no copy of the delivery.
const (
	servingNone = iota // no ask is running, or the actor's goroutine is writing ctx.cur
	servingSet         // ctx.cur is the ask Receive is running
	servingHeld        // a stop reads ctx.cur, with mu locked
)

// kin is what few actors use: who is tied to an actor (its children and
// who watches it), why it failed or stopped, who waits for it to end, its
// StopContext and the reply headers its Context was given. A process
// points to one made on first use instead of carrying four slices, two
// errors, a channel and a context (144 bytes in every idle actor).
// Guarded by its process's mu, but stopCtx and replyHeaders.
type kin struct {
	children       []*process
	watchers       []*process
	remoteWatchers []NodeID                // nodes told when p stops (see watch.go)
	watching       []Ref                   // what p watches, once per Watch whose Terminated has not come: its end unwatches them
	failure        error                   // why the actor last failed; the stop reason if it is stopped while failed
	reason         error                   // why it stopped
	done           chan struct{}           // closed when the actor has finished; made by the first to wait
	stopCtx        atomic.Pointer[stopCtx] // Context.StopContext's, made on first use under mu
	replyHeaders   []Header                // for the current ask's reply (Context.SetReplyHeaders); the actor's goroutine's
}

// kinLocked returns p's kin, making it; p.mu must be held.
func (p *process) kinLocked() *kin {
	k := p.kin.Load()
	if k == nil {
		k = new(kin)
		p.kin.Store(k)
	}
	return k
}

// stopContext is p's StopContext, or nil if none was made. Any goroutine
// may call it.
func (p *process) stopContext() *stopCtx {
	if k := p.kin.Load(); k != nil {
		return k.stopCtx.Load()
	}
	return nil
}

// reasonLocked is why p stopped; p.mu must be held.
func (p *process) reasonLocked() error {
	if k := p.kin.Load(); k != nil {
		return k.reason
	}
	return nil
}

// setFailure records why p last failed (nil: it was restarted).
func (p *process) setFailure(err error) {
	p.mu.Lock()
	if err != nil {
		p.kinLocked().failure = err
	} else if k := p.kin.Load(); k != nil {
		k.failure = nil
	}
	p.mu.Unlock()
}

// lastFailure is why p last failed, or nil.
func (p *process) lastFailure() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if k := p.kin.Load(); k != nil {
		return k.failure
	}
	return nil
}

// childrenLocked returns p's children in start order; p.mu must be held.
func (p *process) childrenLocked() []*process {
	if k := p.kin.Load(); k != nil {
		return k.children
	}
	return nil
}

// spawnOpts is where an actor was spawned, its bus and its parent, and
// what with beyond its mailbox's options. The top-level actors of a bus
// spawned without options share their bus's (Bus.topOpts), so that an idle
// actor carries one pointer for all of them: with their fields in the
// process, a process took the next size class up.
type spawnOpts struct {
	bus      *Bus
	parent   *process // nil for a top-level actor
	factory  func() Actor
	shutdown time.Duration
	replyTo  Codec // WithReplyCodec; nil: the codec of the ask
	weight   int   // WithWeight; 0 counts as 1
	borrow   bool  // WithBorrowedBytes
}

// closedDone is what doneChan gives for an actor that finished before anyone
// asked.
var closedDone = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// doneChan returns a channel closed when p has stopped, making it on first
// use.
func (p *process) doneChan() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.finished {
		return closedDone
	}
	k := p.kinLocked()
	if k.done == nil {
		k.done = make(chan struct{})
	}
	return k.done
}

func (p *process) InvokeSystem(d delivery) {
	switch m := d.msg.(type) {
	case sysStart:
		p.lifecycle(Started{})
	case sysStop:
		p.stop(m.reason)
	case sysResume:
		p.mb.Resume()
	case sysRestart:
		p.restart(m.actor)
	case childFailed:
		p.handleChildFailure(m)
	case sysCallback:
		p.ctx.cur = delivery{}
		p.ctx.p = p
		m.fn(m.reply, m.err)
	case sysTerminated:
		p.watched(m.t.Ref)
		p.receive(delivery{msg: m.t})
	}
	if p.ctx.stopAfter && !p.ctx.stopping { // Context.Stop while handling Started, a callback...
		p.ctx.stopAfter = false
		p.stop(nil)
	}
}

// first runs p's first turn, on a drainer of the bus's starter, as the
// goroutine of its held mailbox t: Started, unless p was ended before it
// began, then what was sent to p meanwhile.
func (p *process) first(t mailbox.Turns) {
	if !p.mb.Closed() {
		p.InvokeSystem(delivery{msg: sysStart{}})
	}
	t.Run()
}

func (p *process) Invoke(d delivery) {
	if d.tag&kindMask <= fromActor {
		p.tell(d)
		return
	}
	p.invokeOther(d)
}

// tell runs the actor on a tell in process, the most common message: no
// ask to answer or check for cancelation, no envelope to recycle.
func (p *process) tell(d delivery) {
	if _, ok := d.msg.(poison); ok {
		p.stop(nil)
		return
	}
	c := &p.ctx
	c.cur, c.replied, c.promised = d, false, false
	p.clearReplyHeaders()
	err := p.safeReceive(c, d.msg)
	c.cur = delivery{}
	if err != nil {
		p.fail(err, d.msg)
	}
	if c.stopAfter {
		c.stopAfter = false
		p.stop(nil)
	}
}

// invokeOther runs the actor on an ask or on a message from a peer.
func (p *process) invokeOther(d delivery) {
	if call, seq := d.call(); call != nil && call.givenUp(seq) {
		p.stats.Add(-1)
		p.opts.bus.deadLetter(d.msg, p.ref, d.sender(), ErrCanceled)
		return
	}
	in := d.in()
	if in != nil && in.env.Kind == KindAsk {
		if in.canceled.Load() {
			p.stats.Add(-1)
			p.opts.bus.deadLetter(d.msg, p.ref, d.sender(), ErrCanceled)
			p.opts.bus.finishInbound(in)
			return
		}
		if dl := in.deadline; !dl.IsZero() && time.Now().After(dl) {
			p.opts.bus.deadLetter(d.msg, p.ref, d.sender(), ErrDeadline)
			p.answer(d, nil, ErrDeadline)
			return
		}
	}
	p.receive(d)
	if d.lent() {
		giveBack(d.msg)
	}
	if in != nil && !in.shared && (in.env.Kind == KindTell || !p.ctx.promised) {
		putInbound(in)
	}
	if p.ctx.stopAfter {
		p.ctx.stopAfter = false
		p.stop(nil)
	}
}

// receive runs the actor on one message and handles what follows: a missing
// reply, a failure.
func (p *process) receive(d delivery) {
	c := &p.ctx
	c.cur, c.replied, c.promised = d, false, false
	p.clearReplyHeaders()
	ask := d.isAsk()
	if ask {
		p.servingState.Store(servingSet) // publishes c.cur
	}
	err := p.safeReceive(c, d.msg)
	if ask {
		p.endServing()
	}
	if ask && !c.replied && !c.promised {
		if err != nil {
			p.answer(d, nil, fmt.Errorf("%w: %w", ErrActorFailed, err))
		} else {
			p.answer(d, nil, ErrNoReply)
		}
	}
	c.cur = delivery{}
	if err != nil {
		p.fail(d.keptErr(err), d.kept())
	}
}

func (p *process) safeReceive(c *Context, msg any) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = newPanicError(v)
		}
	}()
	return p.actor.Receive(c, msg)
}

// fail handles a failed Receive: dead-letter the message, then let the parent
// decide, or resume by default.
func (p *process) fail(err error, msg any) {
	f := Failure{Ref: p.ref, Reason: err, Message: msg, Time: time.Now()}
	p.setFailure(err)
	p.opts.bus.deadLetter(msg, p.ref, Ref{}, fmt.Errorf("%w: %w", ErrActorFailed, err))
	if s, ok := msg.(*Stream); ok {
		s.abort(fmt.Errorf("%w: %w", ErrActorFailed, err), true) // as an ask is answered
	}
	if par := p.opts.parent; par != nil {
		if _, ok := par.actor.(Supervisor); ok {
			p.mb.Suspend()
			if par.mb.SendSystem(delivery{msg: childFailed{child: p, f: f}}) == nil {
				return
			}
			p.mb.Resume() // the parent is gone; nobody to decide
		}
	}
	p.opts.bus.log.Warn("actor failed; resuming with its next message", "actor", p.ref.String(), "reason", err)
}

func (p *process) handleChildFailure(m childFailed) {
	sv, ok := p.actor.(Supervisor)
	if !ok {
		m.child.mb.Resume()
		return
	}
	c := &p.ctx
	c.p, c.cur = p, delivery{}
	var err error
	func() {
		defer func() {
			if v := recover(); v != nil {
				err = newPanicError(v)
			}
		}()
		err = sv.ChildFailed(c, m.f)
	}()
	if err != nil {
		p.fail(err, m.f)
	}
}

func (p *process) restart(a Actor) {
	if a == nil && p.opts.factory != nil {
		a = p.opts.factory()
	}
	if a == nil {
		a = p.actor
	}
	if a != p.actor {
		p.lifecycle(Restarting{})
	}
	p.actor = a
	p.setFailure(nil)
	p.lifecycle(Started{})
	p.mb.Resume()
}

// lifecycle delivers a lifecycle message; a failure there is logged, not
// escalated, so that a restart or stop always completes.
func (p *process) lifecycle(msg any) {
	c := &p.ctx
	c.p, c.cur = p, delivery{}
	if err := p.safeReceive(c, msg); err != nil {
		p.opts.bus.log.Warn("actor failed handling a lifecycle message", "actor", p.ref.String(), "message", fmt.Sprintf("%T", msg), "reason", err)
	}
}

// stop ends the actor on its own goroutine: Stopping, children in reverse
// start order, the mailbox (what is left becomes dead letters and failed
// asks), the name, then Terminated to watchers. An actor abandoned while
// stuck in Receive was ended already (abandon): when that Receive returns
// asking to stop, nothing more runs.
func (p *process) stop(reason error) {
	if p.ctx.stopping {
		return
	}
	p.ctx.stopping = true
	p.mu.Lock()
	abandoned := p.ending
	p.mu.Unlock()
	if abandoned {
		return
	}
	if reason == nil && p.mb.Suspended() {
		reason = p.lastFailure() // stopped by its supervisor after a failure
	}
	p.lifecycle(Stopping{})
	p.stopChildren(reason)
	p.end(reason)
}

// stopChildren stops p's children in reverse start order.
func (p *process) stopChildren(reason error) {
	p.mu.Lock()
	children := slices.Clone(p.childrenLocked())
	p.mu.Unlock()
	for i := len(children) - 1; i >= 0; i-- {
		children[i].stopAndWait(reason)
	}
}

// end is the stop's last part, run once: by the stop on p's goroutine, or
// by abandon on the stopper's while p is stuck in Receive. It ends p's
// StopContext, closes the mailbox (what is left becomes dead letters and
// failed asks), removes the name, tells the watchers and closes done.
func (p *process) end(reason error) {
	p.mu.Lock()
	if p.ending {
		p.mu.Unlock()
		return
	}
	p.ending = true
	p.mu.Unlock()
	if sc := p.stopContext(); sc != nil { // an actor that stopped itself was not asked to
		sc.cancel()
	}
	p.mb.Close()
	p.opts.bus.unregister(p)
	p.mu.Lock()
	p.stopped = true
	if reason != nil {
		p.kinLocked().reason = reason
	}
	var watchers []*process
	var remote []NodeID
	var watching []Ref
	if k := p.kin.Load(); k != nil {
		watchers, remote, watching = k.watchers, k.remoteWatchers, k.watching
		k.watchers, k.remoteWatchers, k.watching = nil, nil, nil
	}
	p.mu.Unlock()
	for _, w := range watchers {
		w.notifyTerminated(Terminated{Ref: p.ref, Reason: reason})
	}
	for _, node := range remote {
		p.opts.bus.tellStopped(node, p.ref, reason)
	}
	for _, ref := range watching {
		p.opts.bus.unwatch(p, ref) // an ended watcher held there would never go
	}
	if par := p.opts.parent; par != nil {
		par.mu.Lock()
		if k := par.kin.Load(); k != nil {
			k.children = slices.DeleteFunc(k.children, func(c *process) bool { return c == p })
		}
		par.mu.Unlock()
	}
	p.mu.Lock()
	p.finished = true
	if k := p.kin.Load(); k != nil && k.done != nil {
		close(k.done)
	}
	p.mu.Unlock()
	if p.opts.parent == nil && p.opts.bus.closing.Load() {
		select {
		case p.opts.bus.topEnded <- struct{}{}: // Close may wait for p (awaitTop)
		default: // a token is there already: Close looks again anyway
		}
	}
}

// isEnding reports whether p's end has begun.
func (p *process) isEnding() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.ending
}

// isFinished reports whether p's stop has run to its end.
func (p *process) isFinished() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.finished
}

// stopAndWait asks p to stop and waits up to its shutdown timeout.
func (p *process) stopAndWait(reason error) {
	done := p.doneChan()
	if p.mb.SendSystem(delivery{msg: sysStop{reason: reason}}) != nil {
		<-done // already closing
		return
	}
	p.cancelServing()
	t := time.NewTimer(p.opts.shutdown)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		p.opts.bus.log.Error("actor did not stop within its shutdown timeout; abandoned", "actor", p.ref.String(), "timeout", p.opts.shutdown)
		p.abandonServing()
		p.abandon(reason)
	}
}

// abandon ends p, still in Receive when its stop gave up on it, for all
// but its goroutine: its children stop, and end closes its mailbox (its
// queued asks fail at once, never delivered), so that nothing more is
// queued for an actor that will never serve it; its name and Ref route to
// it no more; its watchers are told. When Receive returns, nothing more
// runs: the mailbox is closed.
func (p *process) abandon(reason error) {
	p.stopChildren(reason)
	p.end(reason)
}

// endServing takes the ask served back once Receive has returned; the
// actor's goroutine calls it. A stop holding it has mu locked until it
// lets go.
func (p *process) endServing() {
	for !p.servingState.CompareAndSwap(servingSet, servingNone) {
		p.mu.Lock()
		p.mu.Unlock() // the stop that held the ask has let go
	}
}

// holdServing returns the ask p is running, held so that p's goroutine
// neither ends nor reuses it until releaseServing, or false when p runs
// none.
func (p *process) holdServing() (delivery, bool) {
	p.mu.Lock()
	if !p.servingState.CompareAndSwap(servingSet, servingHeld) {
		p.mu.Unlock()
		return delivery{}, false
	}
	return p.ctx.cur, true
}

func (p *process) releaseServing() {
	p.servingState.Store(servingSet)
	p.mu.Unlock()
}

// cancelServing tells the ask p is running, if any, that p is stopping:
// it counts as canceled from now on (Context.Canceled) and its AfterCancel
// hooks run, so that a handler waiting on its ctx returns and p can stop.
// p's StopContext ends, whatever p runs.
func (p *process) cancelServing() {
	p.ctx.halting.Store(true)
	if sc := p.stopContext(); sc != nil { // after halting: see StopContext
		sc.cancel()
	}
	d, ok := p.holdServing()
	if !ok {
		return
	}
	defer p.releaseServing()
	if call, seq := d.call(); call != nil {
		call.hooks.fire(seq)
	} else if in := d.in(); in != nil {
		in.cancel()
	}
}

// abandonServing answers the ask p is still running, when its stop gives
// up on it, with ErrActorStopped: not a proof that it never ran, as it may
// have. A reply p makes later finds the ask answered and is dropped.
func (p *process) abandonServing() {
	d, ok := p.holdServing()
	if !ok {
		return
	}
	defer p.releaseServing()
	p.opts.bus.complete(d, nil, errAbandoned, nil, nil)
}

// errAbandoned answers an ask whose actor was abandoned while running it.
var errAbandoned = fmt.Errorf("%w: it did not stop within its shutdown timeout while running the ask", ErrActorStopped)

func (p *process) notifyTerminated(t Terminated) {
	_ = p.mb.SendSystem(delivery{msg: sysTerminated{t}})
}

// watch adds w as a watcher; if p has already stopped, w is told at once.
func (p *process) watch(w *process) {
	p.mu.Lock()
	if p.stopped {
		reason := p.reasonLocked()
		p.mu.Unlock()
		w.notifyTerminated(Terminated{Ref: p.ref, Reason: reason})
		return
	}
	k := p.kinLocked()
	k.watchers = append(k.watchers, w)
	p.mu.Unlock()
}

// watchingRef records that p watches ref, unless p is ending (then it
// reports false: an ended actor hears of nothing).
func (p *process) watchingRef(ref Ref) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ending {
		return false
	}
	k := p.kinLocked()
	k.watching = append(k.watching, ref)
	return true
}

// watched forgets one watch of ref by p, whose Terminated came, or every
// one (Unwatch) when all is set.
func (p *process) watched(ref Ref) { p.forget(ref, false) }

func (p *process) forget(ref Ref, all bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	k := p.kin.Load()
	if k == nil {
		return
	}
	if all {
		k.watching = slices.DeleteFunc(k.watching, func(r Ref) bool { return r == ref })
	} else if i := slices.Index(k.watching, ref); i >= 0 {
		k.watching = slices.Delete(k.watching, i, i+1)
	}
}

func (p *process) unwatch(w *process) {
	p.mu.Lock()
	if k := p.kin.Load(); k != nil {
		k.watchers = slices.DeleteFunc(k.watchers, func(x *process) bool { return x == w })
	}
	p.mu.Unlock()
}

// Dropped is told of every message the mailbox gives up on.
func (p *process) Dropped(d delivery, reason error) {
	switch d.msg.(type) {
	case poison, sysStart, sysStop, sysResume, sysRestart, sysTerminated, sysCallback:
		return
	case childFailed:
		return // the parent is stopping and stops the child with it
	}
	err := ErrActorStopped
	if errors.Is(reason, mailbox.ErrDropped) {
		err = ErrMailboxFull
	}
	p.opts.bus.deadLetter(d.msg, p.ref, d.sender(), err)
	if d.isAsk() {
		p.answer(d, nil, neverRan(err))
	}
	if s, ok := d.msg.(*Stream); ok {
		s.abort(err, true) // its opener would wait for it, and its load stay counted, for ever
	}
}

// answer answers the ask d that p was sent: the end of its share of p's
// load, which counts an ask from the moment it is queued until its reply is
// sent, through a Promise too.
func (p *process) answer(d delivery, reply any, err error) {
	p.answerWith(d, reply, err, nil)
}

// answerWith is answer with the reply's headers (Context.SetReplyHeaders).
func (p *process) answerWith(d delivery, reply any, err error, hs []Header) {
	p.stats.Add(-1)
	p.opts.bus.complete(d, reply, err, p.opts.replyTo, hs)
}

func (d *delivery) isAsk() bool {
	switch d.tag & kindMask {
	case localAsk, actorAskKind:
		return true
	case fromLink:
		return (*inbound)(d.src).env.Kind == KindAsk
	}
	return false
}

func (d *delivery) sender() Ref {
	if f := d.from(); f != nil {
		return f.ref
	}
	if in := d.in(); in != nil {
		return in.env.From
	}
	return Ref{}
}

// send queues a user message on p, mapping mailbox errors to the bus's.
func (p *process) send(ctx context.Context, d delivery, pol mailbox.Policy) error {
	if err := p.mb.Send(ctx, d, pol); err != nil {
		return mailboxError(err)
	}
	return nil
}

// mailboxError is the bus's error for one of the mailbox's.
func mailboxError(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, mailbox.ErrFull):
		return ErrMailboxFull
	case errors.Is(err, mailbox.ErrClosed):
		return ErrActorStopped
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("%w: %w", ErrDeadline, err)
	case errors.Is(err, context.Canceled):
		return fmt.Errorf("%w: %w", ErrCanceled, err)
	}
	return err
}

// refOrZero is p's Ref, or the zero Ref when p is nil (a sender outside any
// actor).
func (p *process) refOrZero() Ref {
	if p == nil {
		return Ref{}
	}
	return p.ref
}
