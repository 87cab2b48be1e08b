package rpc_test

import (
	"context"
	"errors"
	"slices"
	"sync/atomic"
	"testing"

	"github.com/xbus-dev/xbus/rpc"
)

var _ = addServe(serveServerInterceptors)

// guardedSvc is a service registered with rpc.Register on a Server with
// interceptors.
type guardedSvc struct {
	runs *atomic.Int64
	log  interceptLog
}

func (g guardedSvc) Twice(_ context.Context, a Add) (Sum, error) {
	g.runs.Add(1)
	g.log.add("handler srvic.Svc.Twice")
	return Sum{2 * (a.A + a.B)}, nil
}

// serveServerInterceptors registers, on one Server whose interceptors
// refuse a call or stream without the token, a unary handler, a
// service's method, a server stream and a client stream handler; all but
// the client stream have interceptors of their own too. Every
// interceptor logs its way in, and every handler that it ran.
func serveServerInterceptors(t *testing.T, p *pair) []string {
	t.Helper()
	b := p.B
	must := mustOK(t)
	runs := new(atomic.Int64)
	log := make(interceptLog, 64)
	p.set("srvic.runs", runs)
	p.set("srvic.log", log)
	auth := func(ctx context.Context, info rpc.ServerInfo, req any, next func(context.Context, any) (any, error)) (any, error) {
		if tok, _ := info.MD.Get("token"); tok != "s3cret" {
			return nil, rpc.Errorf(rpc.CodeUnauthenticated, "%s: no valid token", info.Name)
		}
		log.add("server " + info.Name)
		return next(ctx, req)
	}
	streamAuth := func(ctx context.Context, info rpc.StreamServerInfo, next func(context.Context) error) error {
		if tok, _ := info.MD.Get("token"); tok != "s3cret" {
			return rpc.Errorf(rpc.CodeUnauthenticated, "%s: no valid token", info.Name)
		}
		log.add("server " + info.Name)
		return next(ctx)
	}
	own := func(ctx context.Context, info rpc.ServerInfo, req any, next func(context.Context, any) (any, error)) (any, error) {
		log.add("own " + info.Name)
		return next(ctx, req)
	}
	streamOwn := func(ctx context.Context, info rpc.StreamServerInfo, next func(context.Context) error) error {
		log.add("own " + info.Name)
		return next(ctx)
	}
	srv := rpc.NewServer(b, rpc.ServerInterceptors(auth), rpc.StreamServerInterceptors(streamAuth))

	// The handler's own interceptors come before WithServer here, after it
	// below: the Server's run outermost either way.
	must(rpc.Handle(b, "srvic.add", func(_ context.Context, a Add) (Sum, error) {
		runs.Add(1)
		log.add("handler srvic.add")
		return Sum{a.A + a.B}, nil
	}, rpc.WithServerInterceptors(own), rpc.WithServer(srv)))
	must(rpc.Register(b, "srvic.Svc", guardedSvc{runs, log}, rpc.WithServer(srv), rpc.WithServerInterceptors(own)))
	must(rpc.HandleServerStream(b, "srvic.watch", func(_ context.Context, w Watch, send func(Tick) error) error {
		runs.Add(1)
		log.add("handler srvic.watch")
		for n := range w.N {
			if err := send(Tick{n}); err != nil {
				return err
			}
		}
		return nil
	}, rpc.WithStreamServerInterceptors(streamOwn), rpc.WithServer(srv)))
	must(rpc.HandleClientStream(b, "srvic.sum", func(_ context.Context, in *rpc.Receiver[Add]) (Sum, error) {
		runs.Add(1)
		log.add("handler srvic.sum")
		var s Sum
		for a, err := range in.All() {
			if err != nil {
				return Sum{}, err
			}
			s.N += a.A + a.B
		}
		return s, nil
	}, rpc.WithServer(srv)))
	return []string{"srvic.add", "srvic.Svc.Twice", "srvic.watch", "srvic.sum"}
}

var _ = addRows(
	row{"ServerInterceptorsAuth", false, func(t *testing.T, p *pair) {
		runs := get[*atomic.Int64](p, "srvic.runs")
		log := get[interceptLog](p, "srvic.log")
		before := runs.Load()
		for _, name := range []string{"srvic.add", "srvic.Svc.Twice"} {
			_, err := rpc.Call[Sum](ctxFor(t), p.A, name, Add{1, 2}, rpc.Header("token", "forged"))
			if !errors.Is(err, rpc.ErrUnauthenticated) || rpc.Code(err) != rpc.CodeUnauthenticated {
				t.Fatalf("%s without a valid token: %v, want CodeUnauthenticated", name, err)
			}
		}
		n := 0
		var last error
		for _, err := range rpc.CallServerStream[Tick](ctxFor(t), p.A, "srvic.watch", Watch{3}) {
			n++
			last = err
		}
		if n != 1 || rpc.Code(last) != rpc.CodeUnauthenticated {
			t.Fatalf("server stream without a token: %d pairs, last %v; want one, CodeUnauthenticated", n, last)
		}
		cs, err := rpc.OpenClientStream[Sum, Add](ctxFor(t), p.A, "srvic.sum")
		if err != nil {
			t.Fatal(err)
		}
		_ = cs.Send(Add{1, 2}) // may fail once the refusal arrived: CloseAndRecv says why
		if _, err := cs.CloseAndRecv(); !errors.Is(err, rpc.ErrUnauthenticated) {
			t.Fatalf("client stream without a token: %v, want CodeUnauthenticated", err)
		}
		if got := runs.Load(); got != before {
			t.Fatalf("handlers ran %d times for calls and streams refused", got-before)
		}
		if len(log) != 0 {
			t.Fatalf("%d interceptors or handlers ran past the refusal, first %q", len(log), <-log)
		}
	}},
	row{"ServerInterceptorsOrder", false, func(t *testing.T, p *pair) {
		runs := get[*atomic.Int64](p, "srvic.runs")
		log := get[interceptLog](p, "srvic.log")
		before := runs.Load()
		token := rpc.Header("token", "s3cret")
		if s, err := rpc.Call[Sum](ctxFor(t), p.A, "srvic.add", Add{1, 2}, token); err != nil || s.N != 3 {
			t.Fatalf("srvic.add with the token: %v, %v", s, err)
		}
		want := []string{"server srvic.add", "own srvic.add", "handler srvic.add"}
		if got := log.take(t, 3); !slices.Equal(got, want) {
			t.Fatalf("srvic.add ran %q, want %q", got, want)
		}
		if s, err := rpc.Call[Sum](ctxFor(t), p.A, "srvic.Svc.Twice", Add{1, 2}, token); err != nil || s.N != 6 {
			t.Fatalf("srvic.Svc.Twice with the token: %v, %v", s, err)
		}
		want = []string{"server srvic.Svc.Twice", "own srvic.Svc.Twice", "handler srvic.Svc.Twice"}
		if got := log.take(t, 3); !slices.Equal(got, want) {
			t.Fatalf("srvic.Svc.Twice ran %q, want %q", got, want)
		}

		withTok := rpc.WithStreamClientInterceptors(withToken)
		var ticks []int
		for tick, err := range rpc.CallServerStream[Tick](ctxFor(t), p.A, "srvic.watch", Watch{3}, withTok) {
			if err != nil {
				t.Fatal(err)
			}
			ticks = append(ticks, tick.Seq)
		}
		if !slices.Equal(ticks, []int{0, 1, 2}) {
			t.Fatalf("srvic.watch with the token: %v, want [0 1 2]", ticks)
		}
		want = []string{"server srvic.watch", "own srvic.watch", "handler srvic.watch"}
		if got := log.take(t, 3); !slices.Equal(got, want) {
			t.Fatalf("srvic.watch ran %q, want %q", got, want)
		}
		cs, err := rpc.OpenClientStream[Sum, Add](ctxFor(t), p.A, "srvic.sum", withTok)
		if err != nil {
			t.Fatal(err)
		}
		if err := cs.Send(Add{1, 2}); err != nil {
			t.Fatal(err)
		}
		if s, err := cs.CloseAndRecv(); err != nil || s.N != 3 {
			t.Fatalf("srvic.sum with the token: %v, %v", s, err)
		}
		want = []string{"server srvic.sum", "handler srvic.sum"}
		if got := log.take(t, 2); !slices.Equal(got, want) {
			t.Fatalf("srvic.sum ran %q, want %q", got, want)
		}
		if got := runs.Load(); got != before+4 {
			t.Fatalf("handlers ran %d times, want 4", got-before)
		}
	}},
)
