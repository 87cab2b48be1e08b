package rpc_test

import (
	"context"
	"errors"
	"strconv"
	"testing"

	"github.com/xbus-dev/xbus/bus"
	"github.com/xbus-dev/xbus/rpc"
)

// Wait is the request of handlers that wait for their ctx to end.
type Wait struct{ ID int }

// Ended is what such a handler saw: its ctx's error.
type Ended struct {
	ID  int
	Err error
}

var _ = addServe(serveOps)

// serveOps registers the handlers of the rows below: metadata back to the
// caller, and a caller's cancel reaching the handler.
func serveOps(t *testing.T, p *pair) []string {
	t.Helper()
	b := p.B
	must := mustOK(t)
	// md.trailer answers with a trailer naming the request, and with an
	// error and a trailer when asked for one.
	must(rpc.Handle(b, "md.trailer", func(ctx context.Context, e Echo) (Echoed, error) {
		rpc.SetTrailer(ctx, rpc.MD{{Key: "echo", Value: e.Key}})
		rpc.SetTrailer(ctx, rpc.MD{{Key: "n", Value: "2"}})
		if e.Key == "fail" {
			return Echoed{}, rpc.Errorf(rpc.CodeAborted, "failed as asked")
		}
		return Echoed{Value: e.Key}, nil
	}))
	// plain.headers is a plain actor that answers with reply headers.
	must(b.Register("plain.headers", bus.ActorFunc(func(c *bus.Context, msg any) error {
		if e, ok := msg.(Echo); ok {
			c.SetReplyHeaders(bus.Header{Key: "plain", Value: e.Key})
			return c.Reply(Echoed{Value: e.Key})
		}
		return nil
	})))
	// cancel.wait blocks until its ctx ends and reports how it ended.
	started, ended := make(chan int, 4), make(chan Ended, 4)
	p.set("cancel.started", started)
	p.set("cancel.ended", ended)
	must(rpc.Handle(b, "cancel.wait", func(ctx context.Context, w Wait) (Sum, error) {
		started <- w.ID
		<-ctx.Done()
		ended <- Ended{w.ID, ctx.Err()}
		return Sum{}, ctx.Err()
	}))
	// plain.cancel is a plain actor that waits for its asker to give up
	// (Context.AfterCancel).
	must(b.Register("plain.cancel", bus.ActorFunc(func(c *bus.Context, msg any) error {
		w, ok := msg.(Wait)
		if !ok {
			return nil
		}
		gone := make(chan struct{})
		c.AfterCancel(func() { close(gone) })
		started <- w.ID
		<-gone
		ended <- Ended{w.ID, context.Canceled}
		return nil
	})))
	// md.flood sets more trailer pairs than an envelope carries.
	must(rpc.Handle(b, "md.flood", func(ctx context.Context, e Echo) (Echoed, error) {
		for i := range bus.MaxHeaders + 1 {
			rpc.SetTrailer(ctx, rpc.MD{{Key: "k", Value: strconv.Itoa(i)}})
		}
		return Echoed{Value: e.Key}, nil
	}))
	return []string{"md.trailer", "plain.headers", "cancel.wait", "plain.cancel", "md.flood"}
}

var _ = addRows(
	row{name: "Trailer", run: func(t *testing.T, p *pair) {
		var md rpc.MD
		got, err := rpc.Call[Echoed](ctxFor(t), p.A, "md.trailer", Echo{"k1"}, rpc.Trailer(&md))
		if v, _ := md.Get("echo"); err != nil || got.Value != "k1" || v != "k1" || len(md) != 2 {
			t.Fatalf("got %+v, %v, trailer %v; want k1 and a trailer of two", got, err, md)
		}
		// With a bare context the trailer comes back too.
		md = nil
		if _, err := rpc.Call[Echoed](context.Background(), p.A, "md.trailer", Echo{"k2"}, rpc.Trailer(&md)); err != nil {
			t.Fatal(err)
		}
		if v, _ := md.Get("echo"); v != "k2" {
			t.Fatalf("bare call: trailer %v, want echo=k2", md)
		}
		// An error carries its trailer.
		md = nil
		_, err = rpc.Call[Echoed](ctxFor(t), p.A, "md.trailer", Echo{"fail"}, rpc.Trailer(&md))
		if v, _ := md.Get("echo"); !errors.Is(err, rpc.ErrAborted) || v != "fail" {
			t.Fatalf("got %v, trailer %v; want CodeAborted and the trailer", err, md)
		}
		// A call that does not ask for it is answered alike.
		if got, err := rpc.Call[Echoed](ctxFor(t), p.A, "md.trailer", Echo{"k3"}); err != nil || got.Value != "k3" {
			t.Fatalf("got %+v, %v", got, err)
		}
	}},
	row{name: "TrailerTooLarge", run: func(t *testing.T, p *pair) {
		// Across a link a reply whose trailer does not fit an envelope is
		// answered with ErrBadEnvelope at once, not left to the deadline;
		// in process nothing is encoded and it arrives whole.
		var md rpc.MD
		got, err := rpc.Call[Echoed](ctxFor(t), p.A, "md.flood", Echo{"x"}, rpc.Trailer(&md))
		if p.A == p.B {
			if err != nil || got.Value != "x" || len(md) != bus.MaxHeaders+1 {
				t.Fatalf("in process: %+v, %v, %d pairs", got, err, len(md))
			}
			return
		}
		if !errors.Is(err, bus.ErrBadEnvelope) || errors.Is(err, bus.ErrDeadline) {
			t.Fatalf("got %+v, %v; want ErrBadEnvelope at once", got, err)
		}
		if got, err := rpc.Call[Echoed](ctxFor(t), p.A, "md.trailer", Echo{"ok"}); err != nil || got.Value != "ok" {
			t.Fatalf("after: %+v, %v; the link must stay", got, err)
		}
	}},
	row{name: "ReplyHeadersPlainActor", run: func(t *testing.T, p *pair) {
		var hs []bus.Header
		r, err := p.A.Ask(bus.WithReplyHeaders(context.Background(), &hs), "plain.headers", Echo{"x"})
		if err != nil || r.(Echoed).Value != "x" || len(hs) != 1 || hs[0] != (bus.Header{Key: "plain", Value: "x"}) {
			t.Fatalf("got %v, %v, headers %v", r, err, hs)
		}
	}},
	row{name: "CancelReachesHandler", run: func(t *testing.T, p *pair) {
		started, ended := get[chan int](p, "cancel.started"), get[chan Ended](p, "cancel.ended")
		for i, name := range []string{"cancel.wait", "plain.cancel"} {
			// No deadline: only the cancel can end the handler's wait.
			ctx, cancel := context.WithCancel(context.Background())
			f := rpc.Go[Sum](ctx, p.A, name, Wait{ID: i})
			select {
			case id := <-started:
				if id != i {
					t.Fatalf("%s: started %d, want %d", name, id, i)
				}
			case <-ctxFor(t).Done():
				t.Fatalf("%s: the handler never started", name)
			}
			cancel()
			if _, err := f.Wait(); !errors.Is(err, bus.ErrCanceled) {
				t.Fatalf("%s: caller got %v, want ErrCanceled", name, err)
			}
			select {
			case e := <-ended:
				if e.ID != i || !errors.Is(e.Err, context.Canceled) {
					t.Fatalf("%s: handler ended with %+v, want %d canceled", name, e, i)
				}
			case <-ctxFor(t).Done():
				t.Fatalf("%s: the caller's cancel never reached the handler's ctx", name)
			}
		}
	}},
)
