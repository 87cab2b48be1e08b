package bus

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/xbus-dev/xbus/mailbox"
)

// Context is an actor's view of the bus while it handles a message. It is
// valid only on the actor's goroutine, during Receive (or a callback the bus
// runs there); do not keep it.
type Context struct {
	p        *process
	cur      delivery
	replied  bool
	promised bool

	// The process's own, here where the Context's padding holds them.
	stopping  bool        // the actor's stop has begun
	stopAfter bool        // Stop was called during this message
	halting   atomic.Bool // a stop is asked for: the ask the actor serves counts as canceled
}

// Self is the actor's own Ref.
func (c *Context) Self() Ref { return c.p.ref }

// Bus is the bus the actor runs on.
func (c *Context) Bus() *Bus { return c.p.opts.bus }

// Logger is the bus's logger with the actor's Ref attached.
func (c *Context) Logger() *slog.Logger { return c.p.opts.bus.log.With("actor", c.p.ref.String()) }

// Sender is the Ref of the actor that sent the current message, or the zero
// Ref when it came from outside any actor.
func (c *Context) Sender() Ref { return c.cur.sender() }

// IsAsk reports whether the current message is an ask that expects a reply.
func (c *Context) IsAsk() bool { return c.cur.isAsk() }

// Deadline returns the asker's deadline for the current message, if it gave
// one: in process, its context's; across a link, the message's arrival on
// this node plus the time the asker had left when it sent it.
func (c *Context) Deadline() (time.Time, bool) {
	if in := c.cur.in(); in != nil && !in.deadline.IsZero() {
		return in.deadline, true
	}
	if a := c.cur.asked(); a != nil && !a.deadline.IsZero() {
		return a.deadline, true
	}
	return time.Time{}, false
}

// Headers returns the headers the current message carries (WithHeaders),
// in the order they were added; nil for none. Do not modify them.
func (c *Context) Headers() []Header {
	if in := c.cur.in(); in != nil {
		return in.env.Headers
	}
	if a := c.cur.asked(); a != nil {
		return a.headers
	}
	return nil
}

// Canceled reports whether the asker of the current message gave up on it,
// or the actor is being stopped, so long work can stop early.
func (c *Context) Canceled() bool {
	if call, seq := c.cur.call(); call != nil {
		return call.givenUp(seq) || c.p.ctx.halting.Load()
	}
	if in := c.cur.in(); in != nil {
		return in.canceled.Load() || c.p.ctx.halting.Load()
	}
	return false
}

// Cancelable reports whether the asker of the current message may give up
// on it: an ask from another node (its asker, or the link, may end), or
// one in process whose context can end. A handler that would make its own
// context end with the asker's (AfterCancel) need not for one that is not.
func (c *Context) Cancelable() bool {
	if in := c.cur.in(); in != nil {
		return in.env.Kind == KindAsk
	}
	if a := c.cur.asked(); a != nil {
		return a.cancelable
	}
	return false
}

// WantsReplyHeaders reports whether the asker of the current message may
// read its reply's headers (SetReplyHeaders): an ask from another node,
// whose asker this node cannot know, or one in process made with
// WithReplyHeaders. An actor need not build them otherwise.
func (c *Context) WantsReplyHeaders() bool {
	if in := c.cur.in(); in != nil {
		return in.env.Kind == KindAsk
	}
	if a := c.cur.asked(); a != nil {
		return a.wantsReply
	}
	return false
}

// AfterCancel arranges for f to run, on a goroutine of its own, once the
// asker of the current message gives up on it: its context ends, or across
// a link, its cancel arrives or the link goes down; or once the actor is
// asked to stop (Bus.Stop, its parent's stop, Close) while it runs it. f runs at once (on its
// goroutine) if the asker gave up already, and never for a message that is
// not an ask. stop keeps f from running and reports whether it did so, as
// context.AfterFunc's does. Unlike the rest of Context, AfterCancel may be
// called from any goroutine while Receive runs, so that a handler's helpers
// can use it.
func (c *Context) AfterCancel(f func()) (stop func() bool) {
	if call, seq := c.cur.call(); call != nil {
		h := &cancelHook{seq: seq, f: f}
		call.hooks.add(h)
		if call.givenUp(seq) || c.p.ctx.halting.Load() {
			h.fire()
		}
		return h.stop
	}
	if in := c.cur.in(); in != nil && in.env.Kind == KindAsk {
		h := &cancelHook{f: f}
		in.hooks.add(h)
		// halting as for an ask in process: a stop cancels the ask the
		// actor runs (cancelServing), but one taken up just after it
		// looked finds only halting set.
		if in.canceled.Load() || c.p.ctx.halting.Load() {
			h.fire()
		}
		return h.stop
	}
	return func() bool { return false }
}

// StopContext returns a context that ends (context.Canceled) once the
// actor is asked to stop (Bus.Stop, its parent's stop, Close once its ctx
// ends), and at the latest as it ends however it stops (Context.Stop, its
// supervisor's stop after a failure), whatever the asker of the current
// message: work that must end with the actor, even for an asker that
// never gives up, can wait on it.
// It is one context for every message of the actor, made on first use,
// and does not end when Receive returns. Like AfterCancel, it may be
// called from any goroutine while Receive runs.
func (c *Context) StopContext() context.Context {
	p := c.p
	if sc := p.stopContext(); sc != nil {
		return sc.ctx
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	k := p.kinLocked()
	sc := k.stopCtx.Load()
	if sc == nil {
		ctx, cancel := context.WithCancel(context.Background())
		sc = &stopCtx{ctx, cancel}
		// Stored before halting is read, as cancelServing stores halting
		// before it reads stopCtx: one of the two cancels it; end sets
		// ending under mu, then reads stopCtx.
		k.stopCtx.Store(sc)
		if p.ctx.halting.Load() || p.ending {
			cancel()
		}
	}
	return sc.ctx
}

// IsStopping reports whether the actor is stopping or has stopped: whether
// StopContext has ended, or would have if it had been made. It makes no
// context, and may be called from any goroutine.
func (c *Context) IsStopping() bool {
	p := c.p
	if sc := p.stopContext(); sc != nil {
		return sc.ctx.Err() != nil
	}
	if p.ctx.halting.Load() {
		return true
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.ending
}

// Reply answers the current ask with msg. For a message that is not an ask,
// Reply tells msg to the sending actor. Only the first reply counts.
func (c *Context) Reply(msg any) error {
	if c.replied {
		return nil
	}
	c.replied = true
	if c.cur.isAsk() {
		c.p.answerWith(c.cur, msg, nil, c.replyHdrs())
		return nil
	}
	if s := c.Sender(); !s.IsZero() {
		return c.Tell(s, msg)
	}
	return fmt.Errorf("%w: the message has no sender to reply to", ErrNoRoute)
}

// ReplyError answers the current ask with an error. The asker's Ask returns
// it (across a link, as a *RemoteError with the same Code).
func (c *Context) ReplyError(err error) {
	if c.replied || !c.cur.isAsk() {
		return
	}
	c.replied = true
	c.p.answerWith(c.cur, nil, ranError(err), c.replyHdrs())
}

// SetReplyHeaders adds hs to the headers of the current ask's reply, be it
// a Reply, a ReplyError or a Promise's (taken when Promise is called). The
// asker reads them with WithReplyHeaders; across a link they travel in the
// reply's envelope. A message that is not an ask has no reply to carry
// them. The key "xbus-nd" is the bus's own (it marks a refusal of an ask
// that never ran): as the last headers of an error answer across a link
// it does not travel.
func (c *Context) SetReplyHeaders(hs ...Header) {
	p := c.p
	k := p.kin.Load()
	if k == nil {
		p.mu.Lock()
		k = p.kinLocked()
		p.mu.Unlock()
	}
	k.replyHeaders = append(k.replyHeaders, hs...)
	p.replyHdrs = true
}

// replyHdrs is the current ask's reply headers, nil if none were set.
func (c *Context) replyHdrs() []Header {
	if !c.p.replyHdrs {
		return nil
	}
	return c.p.kin.Load().replyHeaders
}

// clearReplyHeaders forgets the last message's reply headers, as the next
// one begins.
func (p *process) clearReplyHeaders() {
	if p.replyHdrs {
		p.replyHdrs = false
		p.kin.Load().replyHeaders = nil
	}
}

// Promise detaches the reply of the current ask so it can be given later,
// from any goroutine. Without Promise, an ask that Receive returns from
// without replying is answered with ErrNoReply. For a message that is not an
// ask nothing is owed, and the Promise's Reply and Fail do nothing.
func (c *Context) Promise() *Promise {
	c.promised = true
	if !c.cur.isAsk() {
		return &Promise{p: c.p, done: true} // nothing is owed
	}
	return &Promise{p: c.p, d: c.cur, hs: c.replyHdrs()}
}

// Promise is a reply owed to an asker; see Context.Promise.
type Promise struct {
	p    *process // the actor that owes it: the ask counts in its load until answered
	d    delivery
	hs   []Header // the reply's headers (Context.SetReplyHeaders)
	done bool
}

// Reply answers the ask. Only the first Reply or Fail counts.
func (p *Promise) Reply(msg any) {
	if !p.done {
		p.done = true
		p.p.answerWith(p.d, msg, nil, p.hs)
	}
}

// Fail answers the ask with err.
func (p *Promise) Fail(err error) {
	if !p.done {
		p.done = true
		p.p.answerWith(p.d, nil, ranError(err), p.hs)
	}
}

// Tell sends msg to a Ref or a name, with this actor as the sender.
func (c *Context) Tell(to any, msg any) error {
	return c.p.opts.bus.send(context.Background(), to, msg, c.p, mailbox.Default)
}

// Ask sends msg as an ask without blocking the actor. fn runs later on the
// actor's own goroutine with the reply or the error (ctx ended, no route,
// peer gone...). ctx bounds the wait; its deadline travels with the ask.
func (c *Context) Ask(ctx context.Context, to any, msg any, fn func(reply any, err error)) {
	c.p.opts.bus.askAsync(ctx, to, msg, c.p, fn)
}

// Spawn starts a child actor. The child stops when this actor stops, and its
// failures come to this actor's ChildFailed if it is a Supervisor. name may
// be empty for an anonymous child.
func (c *Context) Spawn(name string, a Actor, opts ...ActorOption) (Ref, error) {
	p, err := c.p.opts.bus.spawn(name, a, c.p, opts)
	if err != nil {
		return Ref{}, err
	}
	return p.ref, nil
}

// Children returns the Refs of this actor's live children in start order.
func (c *Context) Children() []Ref {
	c.p.mu.Lock()
	defer c.p.mu.Unlock()
	children := c.p.childrenLocked()
	refs := make([]Ref, len(children))
	for i, ch := range children {
		refs[i] = ch.ref
	}
	return refs
}

// Watch asks for a Terminated message when ref ends, on this node or
// another. If ref is already gone, or unknown, Terminated comes at once
// (Reason wraps ErrNoRoute). A remote actor's Reason arrives as a
// *RemoteError; its node going away counts as its end (Reason wraps
// ErrPeerGone).
func (c *Context) Watch(ref Ref) { c.p.opts.bus.watch(c.p, ref) }

// Unwatch cancels a Watch.
func (c *Context) Unwatch(ref Ref) {
	c.p.forget(ref, true)
	c.p.opts.bus.unwatch(c.p, ref)
}

// Stop stops this actor once the current message is handled.
func (c *Context) Stop() { c.p.ctx.stopAfter = true }

// Restart replaces a failed (or live) child with a (nil: a fresh instance
// from its factory, or the same value) and resumes its mailbox: it keeps its
// Ref and every queued message.
func (c *Context) Restart(child Ref, a Actor) error {
	return c.toChild(child, delivery{msg: sysRestart{actor: a}})
}

// Resume lets a failed child go on with its next message, keeping its state.
func (c *Context) Resume(child Ref) error { return c.toChild(child, delivery{msg: sysResume{}}) }

// StopChild stops a child and waits for it up to its shutdown timeout.
func (c *Context) StopChild(child Ref) error {
	ch := c.child(child)
	if ch == nil {
		return fmt.Errorf("%w: %s is not a child of %s", ErrNoRoute, child, c.p.ref)
	}
	ch.stopAndWait(nil)
	return nil
}

func (c *Context) toChild(child Ref, d delivery) error {
	ch := c.child(child)
	if ch == nil {
		return fmt.Errorf("%w: %s is not a child of %s", ErrNoRoute, child, c.p.ref)
	}
	if ch.mb.SendSystem(d) != nil {
		return ErrActorStopped
	}
	return nil
}

func (c *Context) child(ref Ref) *process {
	c.p.mu.Lock()
	defer c.p.mu.Unlock()
	for _, ch := range c.p.childrenLocked() {
		if ch.ref == ref {
			return ch
		}
	}
	return nil
}
