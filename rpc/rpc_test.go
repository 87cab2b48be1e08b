package rpc_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/xbus-dev/xbus/bus"
	"github.com/xbus-dev/xbus/rpc"
)

type (
	Add    struct{ A, B int }
	Sum    struct{ N int }
	Echo   struct{ Key string }
	Echoed struct {
		Value       string
		HasDeadline bool
	}
	Block struct{}
	Note  struct{ Text string }
	// Strict is the request of a handler no case calls with it; badStrict
	// is registered on the caller under Strict's name, with a field
	// Strict's cannot take: its body does not decode on the handler's node.
	Strict    struct{ N int }
	badStrict struct{ N string }
)

var ErrOutOfStock = errors.New("shop: out of stock")

// Arith is a service registered with rpc.Register.
type Arith struct{}

func (Arith) Mul(_ context.Context, a Add) (Sum, error) { return Sum{a.A * a.B}, nil }
func (Arith) Div(_ context.Context, a Add) (Sum, error) {
	if a.B == 0 {
		return Sum{}, rpc.Errorf(rpc.CodeInvalidArgument, "division by zero")
	}
	return Sum{a.A / a.B}, nil
}

// The unary rows of TestTransports (table_test.go) and their handlers.
var _ = addServe(serveUnary)

// serveUnary registers on p.B every handler the unary rows call.
func serveUnary(t *testing.T, p *pair) []string {
	t.Helper()
	a, b, notes := p.A, p.B, p.Notes
	for _, ts := range []*bus.Types{a.Types(), b.Types()} {
		if err := ts.RegisterError("shop.out-of-stock", ErrOutOfStock); err != nil && !strings.Contains(err.Error(), "already") {
			t.Fatal(err)
		}
	}
	must := mustOK(t)
	must(rpc.Handle(b, "arith.add", func(_ context.Context, a Add) (Sum, error) { return Sum{a.A + a.B}, nil }))
	must(rpc.Handle(b, "md.echo", func(ctx context.Context, e Echo) (Echoed, error) {
		v, _ := rpc.IncomingMD(ctx).Get(e.Key)
		_, dl := ctx.Deadline()
		return Echoed{Value: v, HasDeadline: dl}, nil
	}))
	must(rpc.Handle(b, "md.relay", func(ctx context.Context, e Echo) (Echoed, error) {
		// A call made with the handler's ctx carries the caller's deadline on.
		return rpc.Call[Echoed](ctx, b, "md.echo", e)
	}))
	must(rpc.Handle(b, "fail.coded", func(_ context.Context, a Add) (Sum, error) {
		switch a.A {
		case 0:
			return Sum{}, rpc.Errorf(rpc.CodeNotFound, "no item %d", a.B)
		case 1:
			return Sum{}, ErrOutOfStock
		}
		return Sum{}, rpc.Errorf(rpc.CodeApplication+bus.Code(a.A), "quota %d", a.B)
	}))
	must(rpc.Handle(b, "fail.panic", func(_ context.Context, a Add) (Sum, error) {
		if a.A == 0 {
			panic("boom")
		}
		return Sum{a.A}, nil
	}))
	must(rpc.Handle(b, "fail.block", func(ctx context.Context, _ Block) (Sum, error) {
		<-ctx.Done()
		return Sum{}, ctx.Err()
	}))
	must(rpc.Handle(b, "note", func(_ context.Context, n Note) (Sum, error) {
		notes <- n
		return Sum{}, nil
	}))
	must(rpc.Register(b, "arith", Arith{}))
	must(rpc.Handle(b, "strict", func(_ context.Context, s Strict) (Sum, error) { return Sum{s.N}, nil }))
	must(rpc.Handle(b, "guarded", func(_ context.Context, a Add) (Sum, error) { return Sum{a.A}, nil },
		rpc.WithServerInterceptors(func(ctx context.Context, info rpc.ServerInfo, req any, next func(context.Context, any) (any, error)) (any, error) {
			if tok, _ := info.MD.Get("auth"); tok != "secret" {
				return nil, rpc.Errorf(rpc.CodeUnauthenticated, "rpc: %s: bad token", info.Name)
			}
			return next(ctx, req)
		})))
	return []string{"arith.add", "md.echo", "md.relay", "fail.coded", "fail.panic", "fail.block", "note", "arith.Mul", "arith.Div", "guarded", "strict"}
}

var _ = addRows(
	row{name: "TypedCall", remote: false, run: func(t *testing.T, p *pair) {
		a := p.A
		got, err := rpc.Call[Sum](ctxFor(t), a, "arith.add", Add{2, 3})
		if err != nil || got.N != 5 {
			t.Fatalf("got %v, %v; want 5", got, err)
		}
	}},
	row{name: "RegisteredMethods", remote: false, run: func(t *testing.T, p *pair) {
		a := p.A
		got, err := rpc.Call[Sum](ctxFor(t), a, "arith.Mul", Add{4, 5})
		if err != nil || got.N != 20 {
			t.Fatalf("got %v, %v; want 20", got, err)
		}
		_, err = rpc.Call[Sum](ctxFor(t), a, "arith.Div", Add{4, 0})
		if !errors.Is(err, rpc.ErrInvalidArgument) {
			t.Fatalf("division by zero: %v, want CodeInvalidArgument", err)
		}
	}},
	row{name: "Metadata", remote: false, run: func(t *testing.T, p *pair) {
		a := p.A
		got, err := rpc.Call[Echoed](ctxFor(t), a, "md.echo", Echo{"k"}, rpc.Header("x", "1"), rpc.Header("k", "v"))
		if err != nil || got.Value != "v" || !got.HasDeadline {
			t.Fatalf("got %+v, %v; want the value v and a deadline", got, err)
		}
		got, err = rpc.Call[Echoed](context.Background(), a, "md.echo", Echo{"k"})
		if err != nil || got.Value != "" || got.HasDeadline {
			t.Fatalf("a bare call arrived as %+v, %v", got, err)
		}
	}},
	row{name: "DeadlinePropagates", remote: false, run: func(t *testing.T, p *pair) {
		a := p.A
		got, err := rpc.Call[Echoed](ctxFor(t), a, "md.relay", Echo{"k"})
		if err != nil || !got.HasDeadline {
			t.Fatalf("got %+v, %v; the relayed call had no deadline", got, err)
		}
	}},
	row{name: "CodedErrors", remote: false, run: func(t *testing.T, p *pair) {
		a := p.A
		_, err := rpc.Call[Sum](ctxFor(t), a, "fail.coded", Add{0, 7})
		if !errors.Is(err, rpc.ErrNotFound) || rpc.Code(err) != rpc.CodeNotFound || !strings.Contains(err.Error(), "no item 7") {
			t.Fatalf("got %v (code %d), want CodeNotFound with its text", err, rpc.Code(err))
		}
		_, err = rpc.Call[Sum](ctxFor(t), a, "fail.coded", Add{1, 0})
		if !errors.Is(err, ErrOutOfStock) {
			t.Fatalf("got %v, want ErrOutOfStock", err)
		}
		_, err = rpc.Call[Sum](ctxFor(t), a, "fail.coded", Add{7, 3})
		code := rpc.CodeApplication + 7
		if !errors.Is(err, rpc.Sentinel(code)) || rpc.Code(err) != code || errors.Is(err, rpc.Sentinel(code+1)) || err.Error() != "quota 3" {
			t.Fatalf("got %v (code %d), want the application's code %d and its text", err, rpc.Code(err), code)
		}
	}},
	row{name: "Panic", remote: false, run: func(t *testing.T, p *pair) {
		a := p.A
		_, err := rpc.Call[Sum](ctxFor(t), a, "fail.panic", Add{})
		if !errors.Is(err, rpc.ErrInternal) || !strings.Contains(err.Error(), "boom") {
			t.Fatalf("got %v, want CodeInternal naming the panic", err)
		}
		got, err := rpc.Call[Sum](ctxFor(t), a, "fail.panic", Add{A: 9})
		if err != nil || got.N != 9 {
			t.Fatalf("after a panic: %v, %v; the handler must still serve", got, err)
		}
	}},
	row{name: "NeverReturns", remote: false, run: func(t *testing.T, p *pair) {
		a := p.A
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		_, err := rpc.Call[Sum](ctx, a, "fail.block", Block{})
		if !errors.Is(err, bus.ErrDeadline) {
			t.Fatalf("got %v, want ErrDeadline", err)
		}
		// The handler's ctx ended with the caller's deadline, so the
		// handler is free for the next call.
		ctx2, cancel2 := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel2()
		if _, err := rpc.Call[Sum](ctx2, a, "fail.block", Block{}); !errors.Is(err, bus.ErrDeadline) {
			t.Fatalf("second call: %v, want ErrDeadline", err)
		}
	}},
	row{name: "WrongRequestType", remote: false, run: func(t *testing.T, p *pair) {
		a := p.A
		_, err := rpc.Call[Sum](ctxFor(t), a, "arith.add", Echo{"x"})
		if !errors.Is(err, rpc.ErrInvalidArgument) || !strings.Contains(err.Error(), "rpc_test.Add") {
			t.Fatalf("got %v, want CodeInvalidArgument naming the request type", err)
		}
		_, err = rpc.Call[Echoed](ctxFor(t), a, "arith.add", Add{1, 1})
		if !errors.Is(err, bus.ErrWrongType) {
			t.Fatalf("got %v, want ErrWrongType for the response", err)
		}
	}},
	row{name: "BodyDoesNotDecode", remote: true, run: func(t *testing.T, p *pair) {
		a := p.A
		if err := bus.RegisterType[badStrict](a.Types(), "rpc_test.Strict"); err != nil {
			t.Fatal(err)
		}
		_, err := rpc.Call[Sum](ctxFor(t), a, "strict", badStrict{"x"})
		if !errors.Is(err, bus.ErrBadEnvelope) || !strings.Contains(err.Error(), "rpc_test.Strict") {
			t.Fatalf("got %v, want a coded ErrBadEnvelope naming the type", err)
		}
		if got, err := rpc.Call[Sum](ctxFor(t), a, "arith.add", Add{1, 2}); err != nil || got.N != 3 {
			t.Fatalf("after a bad body: %v, %v; the link must stay", got, err)
		}
	}},
	row{name: "Future", remote: false, run: func(t *testing.T, p *pair) {
		a := p.A
		fs := make([]*rpc.Future[Sum], 8)
		for i := range fs {
			fs[i] = rpc.Go[Sum](ctxFor(t), a, "arith.add", Add{i, i})
		}
		for i, f := range fs {
			<-f.Done()
			if got, err := f.Wait(); err != nil || got.N != 2*i {
				t.Fatalf("future %d: %v, %v", i, got, err)
			}
		}
	}},
	row{name: "OneWay", remote: false, run: func(t *testing.T, p *pair) {
		a := p.A
		notes := p.Notes
		if err := rpc.Send(ctxFor(t), a, "note", Note{"hello"}); err != nil {
			t.Fatal(err)
		}
		select {
		case n := <-notes:
			if n.Text != "hello" {
				t.Fatalf("got %q", n.Text)
			}
		case <-ctxFor(t).Done():
			t.Fatal("the one-way call never arrived")
		}
	}},
	row{name: "Interceptors", remote: false, run: func(t *testing.T, p *pair) {
		a := p.A
		if _, err := rpc.Call[Sum](ctxFor(t), a, "guarded", Add{1, 0}); !errors.Is(err, rpc.ErrUnauthenticated) {
			t.Fatalf("without a token: %v, want CodeUnauthenticated", err)
		}
		var seen atomic.Int32
		auth := func(ctx context.Context, info rpc.ClientInfo, req any, next func(context.Context, any) (any, error)) (any, error) {
			seen.Add(1)
			return next(rpc.WithOutgoingMD(ctx, rpc.MD{{Key: "auth", Value: "secret"}}), req)
		}
		got, err := rpc.Call[Sum](ctxFor(t), a, "guarded", Add{6, 0}, rpc.WithClientInterceptors(auth))
		if err != nil || got.N != 6 || seen.Load() != 1 {
			t.Fatalf("with a token: %v, %v (interceptor ran %d times)", got, err, seen.Load())
		}
	}},
)

type misfits struct{}

func (misfits) Good(context.Context, Add) (Sum, error) { return Sum{}, nil }
func (misfits) NoCtx(Add) (Sum, error)                 { return Sum{}, nil }
func (misfits) NoErr(context.Context, Add) Sum         { return Sum{} }

// TestRegisterMisfits: every method of the wrong shape is named, and
// nothing is registered.
func TestRegisterMisfits(t *testing.T) {
	b := newBus(t)
	_, err := rpc.Register(b, "m", misfits{})
	if err == nil || !strings.Contains(err.Error(), "NoCtx") || !strings.Contains(err.Error(), "NoErr") || strings.Contains(err.Error(), "Good") {
		t.Fatalf("got %v, want an error naming NoCtx and NoErr only", err)
	}
	if _, err := rpc.Call[Sum](ctxFor(t), b, "m.Good", Add{}); !errors.Is(err, bus.ErrNoRoute) {
		t.Fatalf("m.Good: %v, want ErrNoRoute: nothing is registered", err)
	}
}
