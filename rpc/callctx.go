package rpc

import (
	"context"
	"sync"
	"time"

	"github.com/xbus-dev/xbus/bus"
)

// callCtx is a handler's ctx: the caller's deadline and metadata, ended
// when the deadline passes, when the caller gives up (bus.Context
// AfterCancel: its ctx ended, or its link went down), when its actor is
// asked to stop (AfterCancel, or for a caller that cannot give up
// bus.Context.StopContext), or when the handler returns. It is one
// allocation, made only for a call that has a deadline, metadata, a
// caller that may give up or one that reads a trailer; its channel, timer
// and hooks are made only once someone asks for Done. Err polls, making
// nothing (not even the actor's StopContext).
type callCtx struct {
	deadline   time.Time
	hasDL      bool
	cancelable bool
	md         MD
	srv        *Server // its handler's (WithServer): the ctx ends when its shutdown's deadline passes

	mu       sync.Mutex
	bc       *bus.Context // the handler's, until it returns: where AfterCancel is asked
	done     chan struct{}
	err      error
	timer    *time.Timer
	stop     func() bool // stops the cancel hook, or the watch on the actor's stop
	stopSrv  func() bool // stops the watch on srv
	trailer  MD
	returned bool // the handler returned: its trailer is taken
}

type callCtxKey struct{}

// handlerContext builds a handler's ctx; cc is nil for a call that carries
// nothing and whose handler has no server: its ctx is the actor's
// StopContext, one for every such call.
func handlerContext(c *bus.Context, srv *Server) (ctx context.Context, cc *callCtx) {
	dl, hasDL := c.Deadline()
	hs := c.Headers()
	cancelable := c.Cancelable()
	if !hasDL && len(hs) == 0 && !cancelable && srv == nil && !c.WantsReplyHeaders() {
		return c.StopContext(), nil
	}
	cc = &callCtx{deadline: dl, hasDL: hasDL, cancelable: cancelable, bc: c, srv: srv}
	if len(hs) > 0 {
		cc.md = MD(hs)
	}
	return cc, cc
}

func (c *callCtx) Deadline() (time.Time, bool) { return c.deadline, c.hasDL }

func (c *callCtx) Value(key any) any {
	switch key.(type) {
	case incomingKey:
		if c.md != nil {
			return c.md
		}
	case callCtxKey:
		return c
	}
	return nil
}

func (c *callCtx) Done() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done != nil {
		return c.done
	}
	c.done = make(chan struct{})
	if c.err != nil {
		close(c.done)
		return c.done
	}
	if c.hasDL {
		d := time.Until(c.deadline)
		if d <= 0 {
			c.endLocked(context.DeadlineExceeded)
			return c.done
		}
		c.timer = time.AfterFunc(d, func() { c.end(context.DeadlineExceeded) })
	}
	if c.cancelable { // AfterCancel tells of the actor's stop too
		c.stop = c.bc.AfterCancel(func() { c.end(context.Canceled) })
	} else {
		c.stop = context.AfterFunc(c.bc.StopContext(), func() { c.end(context.Canceled) })
	}
	if c.srv != nil {
		c.stopSrv = context.AfterFunc(c.srv.hard, func() { c.end(context.Canceled) })
	}
	return c.done
}

func (c *callCtx) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err == nil {
		// Nobody asked for Done: no timer or hook tells, so look.
		if c.hasDL && !time.Now().Before(c.deadline) {
			c.endLocked(context.DeadlineExceeded)
		} else if c.bc.Canceled() || !c.cancelable && c.bc.IsStopping() || c.srv != nil && c.srv.hard.Err() != nil {
			c.endLocked(context.Canceled)
		}
	}
	return c.err
}

func (c *callCtx) String() string { return "rpc handler context" }

func (c *callCtx) end(err error) {
	c.mu.Lock()
	c.endLocked(err)
	c.mu.Unlock()
}

func (c *callCtx) endLocked(err error) {
	if c.err != nil {
		return
	}
	c.err = err
	if c.done != nil {
		close(c.done)
	}
	if c.timer != nil {
		c.timer.Stop()
	}
	if c.stop != nil {
		c.stop()
	}
	if c.stopSrv != nil {
		c.stopSrv()
	}
	c.bc, c.srv = nil, nil
	c.cancelable = false
}

// finish ends the ctx as the handler returns, as gRPC's does, and returns
// the trailer the handler set.
func (c *callCtx) finish() MD {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.endLocked(context.Canceled)
	c.returned = true
	return c.trailer
}
