package bus

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync/atomic"
	"time"
)

// askCall is one pending Ask. Calls are reused (a local ask's from a pool,
// a remote ask's from its slot of the askTable): state packs the arming
// sequence number with the call's status, so a reply meant for an earlier
// arming of a reused call can never complete a later one.
type askCall struct {
	state atomic.Uint64 // seq<<stateBits | status
	done  chan struct{} // signalled once per completed ask whose asker parked
	bus   *Bus
	reply any
	err   error
	// unsent holds the arming whose envelope its link handed back unsent
	// (Host.Undelivered): its failure at LinkDown proves it never ran.
	unsent atomic.Uint64
	hooks  cancelHooks // run when the asker gives up (Context.AfterCancel)

	// Set per arming, by the asker, before the ask is sent.
	cb    func(reply any, err error) // non-blocking ask: run on owner
	owner *process
	peer  *peer // remote ask: the peer it went to
	link  Link
	corr  uint64
	inst  *instance // the instance placement chose; nil for an ask to a Ref
	start time.Time // when an ask to a timed inst was sent: its round trip
	// A local ask's headers and deadline, copied into its delivery (askOf)
	// when meta is set: the call itself is recycled once its asker stops
	// waiting, while its actor may still read them.
	meta       bool
	headers    []Header
	deadline   time.Time
	cancelable bool // the asker's context can end
	wantsReply bool // the asker reads the reply's headers

	replyHeaders []Header // the reply's (Context.SetReplyHeaders)

	// A remote ask's call lives in Bus.asks: slot is its index + 1 (0 for
	// a pooled local call), nextFree the table's free stack.
	slot     uint32
	nextFree atomic.Uint32
	// via is the peer and link a remote arming went to, stored once its
	// fields are set and before it is sent, cleared when the call is
	// recycled: the only link whose reply may complete it (sent).
	via atomic.Pointer[nearLink]
}

// A call's status, in state's low stateBits. The completer sends a token on
// done only to an asker that parked: one that polls sees callDone and takes
// the outcome without a channel operation on either side.
const (
	callWaiting    = 0 // the asker has not parked (it polls, or is sending)
	callParked     = 1 // the asker waits on done for a token
	callCompleting = 2 // the completer won and is storing the outcome
	callDone       = 3 // the outcome is stored
	callAbandoned  = 4

	stateBits = 3
	stateMask = 1<<stateBits - 1
)

// open reports whether arming seq of c is still waiting for its outcome
// (polled or parked), with the state read and whether its asker parked.
func (c *askCall) open(seq uint64) (s uint64, parked, ok bool) {
	s = c.state.Load()
	st := s & stateMask
	return s, st == callParked, s>>stateBits == seq && (st == callWaiting || st == callParked)
}

// getCall takes a call for a local ask from the bus's pool. The pool is
// the bus's, not the process's, so that a bus made in a testing/synctest
// bubble never hands a call's channel across the bubble's edge.
func (b *Bus) getCall() (*askCall, uint64) {
	c, _ := b.calls.Get().(*askCall)
	if c == nil {
		c = &askCall{done: make(chan struct{}, 1), bus: b}
	}
	return c, c.rearm()
}

// remoteCall takes a call for an ask to a peer from the bus's table
// (askTable), whose slot its correlation id names, and returns the
// sequence number of its next arming, which askRemote begins once the
// call's via is set; nil when the table is full.
func (b *Bus) remoteCall() (*askCall, uint64) {
	c := b.asks.get(b)
	if c == nil {
		return nil, 0
	}
	return c, c.state.Load()>>stateBits + 1
}

// rearm starts c's next arming and returns its sequence number.
func (c *askCall) rearm() uint64 {
	seq := c.state.Load()>>stateBits + 1
	c.state.Store(seq << stateBits)
	return seq
}

// putCall recycles c. Only what is set is cleared: while the collector
// marks, every pointer stored takes its write barrier, nil or not.
func (b *Bus) putCall(c *askCall) {
	if c.reply != nil {
		c.reply = nil
	}
	if c.err != nil {
		c.err = nil
	}
	if c.cb != nil || c.owner != nil {
		c.cb, c.owner = nil, nil
	}
	if c.inst != nil {
		c.inst, c.start = nil, time.Time{}
	}
	if c.meta {
		c.meta, c.headers, c.deadline = false, nil, time.Time{}
		c.cancelable, c.wantsReply = false, false
	}
	if c.replyHeaders != nil {
		c.replyHeaders = nil
	}
	c.hooks.reset()
	if c.slot == 0 {
		b.calls.Put(c)
		return
	}
	// A remote call keeps its peer, link and via for its next arming,
	// which stores them only where they differ (askRemote). The objects
	// they hold stay reachable until then: one link per slot at most, and
	// a link's resources end with its Close, not with the collector.
	b.asks.put(c)
}

// sent returns the arming of a remote call that waits for its reply and
// the peer and link it went to; ok is false when none waits. Only a
// completion of that very arming (complete, abandon) succeeds after it,
// and via was that arming's: an arming stays open from its start until
// it is completed, never again after, and via is stored before the
// arming starts (askRemote) and only once the one before it has ended.
func (c *askCall) sent() (seq uint64, n *nearLink, ok bool) {
	s := c.state.Load()
	if st := s & stateMask; st != callWaiting && st != callParked {
		return 0, nil, false
	}
	n = c.via.Load()
	return s >> stateBits, n, n != nil
}

// arm records what ctx says of a local ask for its actor: the deadline,
// the headers (WithHeaders), whether the asker may give up
// (Context.Cancelable) and whether it reads the reply's headers
// (Context.WantsReplyHeaders). An ask with none costs three lookups.
func (c *askCall) arm(ctx context.Context) {
	dl, ok := ctx.Deadline()
	var hs []Header
	var wants bool
	if ctx.Value(callOptionsKey{}) != nil {
		o := optionsOf(ctx)
		hs, wants = o.headers, o.replyHeaders != nil
	}
	cancelable := ctx.Done() != nil
	if ok || len(hs) > 0 || wants || cancelable {
		c.meta, c.headers, c.deadline = true, hs, dl
		c.cancelable, c.wantsReply = cancelable, wants
	}
}

// complete delivers the outcome of arming seq; it reports false if the call
// was already completed or abandoned.
func (c *askCall) complete(seq uint64, reply any, err error) bool {
	return c.completeWith(seq, reply, err, nil)
}

// completeWith is complete with the reply's headers, for its asker to take
// (WithReplyHeaders).
func (c *askCall) completeWith(seq uint64, reply any, err error, hs []Header) bool {
	var parked bool
	for {
		s, p, ok := c.open(seq)
		if !ok {
			return false
		}
		if c.state.CompareAndSwap(s, seq<<stateBits|callCompleting) {
			parked = p
			break
		}
	}
	c.reply, c.err, c.replyHeaders = reply, err, hs
	if c.peer != nil {
		c.peer.inflight.Add(-1)
	}
	if c.inst != nil {
		c.ended(err)
	}
	owner, fn := c.owner, c.cb
	// From here a polling asker may take the outcome and recycle c.
	c.state.Store(seq<<stateBits | callDone)
	if fn != nil {
		if owner.mb.SendSystem(delivery{msg: sysCallback{fn: fn, reply: reply, err: err}}) != nil {
			owner.opts.bus.deadLetter(reply, owner.ref, Ref{}, ErrActorStopped)
		}
		owner.opts.bus.putCall(c)
		return true
	}
	if parked {
		c.done <- struct{}{}
	}
	return true
}

// abandon gives up on arming seq, for the reason why; false means the
// outcome is already there.
func (c *askCall) abandon(seq uint64, why error) bool {
	for {
		s, _, ok := c.open(seq)
		if !ok {
			return false
		}
		if c.state.CompareAndSwap(s, seq<<stateBits|callAbandoned) {
			break
		}
	}
	if c.peer != nil {
		c.peer.inflight.Add(-1)
	}
	if c.inst != nil {
		c.ended(why)
	}
	c.hooks.fire(seq)
	return true
}

// ended accounts for the end of an ask placed on c.inst: a remote
// instance's load (a local one's is its process's, which ends with the
// reply), its round trip, and its health.
func (c *askCall) ended(err error) {
	in := c.inst
	if in.proc == nil && c.peer != nil {
		in.stats.Add(-1) // counted since askRemote sent it
	}
	if err == nil && !c.start.IsZero() {
		in.stats.Observe(time.Since(c.start))
	}
	c.bus.observe(in, err)
}

// givenUp reports whether the asker of arming seq no longer waits for it,
// as its actor sees it: the arming was abandoned, or it ended and the call
// was recycled for another ask (only an abandoned one ends while its actor
// still works on it, short of a Promise).
func (c *askCall) givenUp(seq uint64) bool {
	st := c.state.Load()
	return st>>stateBits != seq || st&stateMask == callAbandoned
}

// spinChecks bounds how long an asker polls for its reply before it parks:
// on a small VM waking a parked goroutine's thread costs tens of
// microseconds, several times an in-process round trip, so a short poll
// (yielding the processor each time, so the actor can run on it) wins for
// fast actors and costs little for slow ones.
//
// Only a few askers poll at once, as the Go runtime bounds its spinning
// threads: with many concurrent remote asks, every asker yielding churns
// the scheduler's run queue (docs/performance.md). An asker that finds
// GOMAXPROCS others polling parks at once.
const spinChecks = 64

// pollChecks bounds the polls of an asker that takes replies from the
// ring itself (PollingLink): a poll that finds nothing costs a lock tried
// and a load, no hand-off to wait for, so it may poll longer before it
// parks.
const pollChecks = 1024

// mayPoll reports whether polling can catch this call's reply. A reply
// through a link whose reader spins (shared memory) comes within
// microseconds. One through a socket comes through the Go network poller,
// which a processor checks only when it runs out of goroutines: a lone
// asker yielding in a loop keeps it from looking, so it parks at once.
// With other asks to the same peer in flight the processor stays busy
// anyway and polling wins (docs/performance.md, "Sockets").
func (c *askCall) mayPoll() bool {
	if c.link == nil {
		return true
	}
	if s, ok := c.link.(SpinningLink); ok && s.ReaderSpins() {
		return true
	}
	return c.peer.inflight.Load() > 1
}

// wait blocks until the call completes or ctx ends, then recycles the call.
func (b *Bus) wait(ctx context.Context, c *askCall, seq uint64) (any, error) {
	if b.spinners.Add(1) <= b.maxSpin && c.mayPoll() {
		pl, _ := c.link.(PollingLink) // nil for a local ask
		if pl != nil && !pl.ReaderSpins() {
			// Polled only while its reader spins: while it parks at once,
			// polling the ring raised the p99 (docs/performance.md).
			pl = nil
		}
		n := spinChecks
		if pl != nil {
			n = pollChecks
		}
		for range n {
			if c.state.Load() != seq<<stateBits|callWaiting {
				break
			}
			if pl != nil && pl.Poll() {
				continue // it took something, perhaps the reply
			}
			runtime.Gosched()
		}
	}
	b.spinners.Add(-1)
	// Park, unless the outcome is there or being stored: a completer that
	// finds the asker parked sends it a token once the outcome is stored.
	for parked := false; !parked; {
		switch s := c.state.Load(); s & stateMask {
		case callDone:
			return b.taken(ctx, c)
		case callCompleting:
			runtime.Gosched() // the completer is storing it
		case callWaiting:
			parked = c.state.CompareAndSwap(s, seq<<stateBits|callParked)
		default: // parked or abandoned: only this asker does either, so never
			parked = true
		}
	}
	select {
	case <-c.done:
	case <-ctx.Done():
		if err := ctxError(ctx.Err()); c.abandon(seq, err) {
			b.forgetRemote(c)
			b.putCall(c)
			return nil, err
		}
		<-c.done // the reply won the race; it is being stored
	case <-b.closed:
		if c.abandon(seq, ErrClosed) {
			b.forgetRemote(c)
			b.putCall(c)
			return nil, ErrClosed
		}
		<-c.done
	}
	return b.taken(ctx, c)
}

// taken returns a completed call's outcome and recycles the call.
func (b *Bus) taken(ctx context.Context, c *askCall) (any, error) {
	reply, err := c.reply, c.err
	if c.replyHeaders != nil {
		takeReplyHeaders(ctx, c.replyHeaders)
	}
	b.putCall(c)
	return reply, err
}

func ctxError(err error) error {
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%w: %w", ErrDeadline, err)
	}
	return fmt.Errorf("%w: %w", ErrCanceled, err)
}

// complete answers the ask carried by d (a local call or an envelope from a
// link) with reply or err and the reply's headers hs; a reply to a link
// goes in codec, if not nil.
func (b *Bus) complete(d delivery, reply any, err error, codec Codec, hs []Header) {
	if call, seq := d.call(); call != nil {
		call.completeWith(seq, reply, err, hs)
	} else if in := d.in(); in != nil && in.answered.CompareAndSwap(false, true) {
		b.replyRemote(in, reply, err, codec, hs)
	}
}
