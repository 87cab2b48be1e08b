package rpc_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/xbus-dev/xbus/bus"
	"github.com/xbus-dev/xbus/rpc"
)

var _ = addServe(serveStreamInterceptors)

// streamEnd is one stream's end as a metrics interceptor saw it.
type streamEnd struct {
	Name string
	Code bus.Code
}

// interceptLog is what the ordered interceptors and their handler did, in
// order.
type interceptLog chan string

func (l interceptLog) add(s string) { l <- s }

// take returns the next n lines.
func (l interceptLog) take(t *testing.T, n int) []string {
	t.Helper()
	var got []string
	for range n {
		select {
		case s := <-l:
			got = append(got, s)
		case <-ctxFor(t).Done():
			t.Fatalf("the handler's side logged only %q", got)
		}
	}
	return got
}

type tagKey struct{}

// serveStreamInterceptors registers the stream handlers behind
// interceptors of the rows below.
func serveStreamInterceptors(t *testing.T, p *pair) []string {
	t.Helper()
	b := p.B
	must := mustOK(t)
	// auth refuses a stream without the token, before its handler runs.
	auth := func(ctx context.Context, info rpc.StreamServerInfo, next func(context.Context) error) error {
		if tok, _ := info.MD.Get("token"); tok != "s3cret" {
			return rpc.Errorf(rpc.CodeUnauthenticated, "%s: no valid token", info.Name)
		}
		return next(ctx)
	}
	// metrics counts the streams opened and each end with its code.
	opens := new(atomic.Int64)
	ends := make(chan streamEnd, 16)
	p.set("istream.opens", opens)
	p.set("istream.ends", ends)
	metrics := func(ctx context.Context, info rpc.StreamServerInfo, next func(context.Context) error) error {
		opens.Add(1)
		err := next(ctx)
		ends <- streamEnd{info.Name + " " + info.Kind, rpc.Code(err)}
		return err
	}
	runs := new(atomic.Int64)
	p.set("istream.runs", runs)
	// ticks sends w.N ticks (w.N -1: fails with an application code after
	// none; -2: panics; 0: ticks until its stream ends, then returns its
	// ctx's error).
	ticks := func(ctx context.Context, w Watch, send func(Tick) error) error {
		runs.Add(1)
		if w.N == -2 {
			panic("asked to panic")
		}
		if w.N < 0 {
			return rpc.Errorf(codeStreamFailed, "asked to fail")
		}
		for n := 0; w.N == 0 || n < w.N; n++ {
			if err := send(Tick{n}); err != nil {
				<-ctx.Done()
				return ctx.Err()
			}
		}
		return nil
	}
	must(rpc.HandleServerStream(b, "istream.guarded", ticks, rpc.WithStreamServerInterceptors(metrics, auth)))
	must(rpc.HandleClientStream(b, "istream.guardedsum", func(ctx context.Context, in *rpc.Receiver[Add]) (Sum, error) {
		runs.Add(1)
		var s Sum
		for a, err := range in.All() {
			if err != nil {
				return Sum{}, err
			}
			s.N += a.A + a.B
		}
		return s, nil
	}, rpc.WithStreamServerInterceptors(metrics, auth)))

	// first and second log their way in and out; first gives the handler
	// a ctx value, which it reports.
	log := make(interceptLog, 64)
	p.set("istream.log", log)
	logged := func(name string) rpc.StreamServerInterceptor {
		return func(ctx context.Context, info rpc.StreamServerInfo, next func(context.Context) error) error {
			log.add(name + " in")
			err := next(ctx)
			log.add(fmt.Sprintf("%s out %d", name, rpc.Code(err)))
			return err
		}
	}
	tag := func(ctx context.Context, info rpc.StreamServerInfo, next func(context.Context) error) error {
		return next(context.WithValue(ctx, tagKey{}, "tagged"))
	}
	must(rpc.HandleBidiStream(b, "istream.ordered", func(ctx context.Context, in *rpc.Receiver[Echo], send func(Echoed) error) error {
		tag, _ := ctx.Value(tagKey{}).(string)
		log.add("handler " + tag)
		for e, err := range in.All() {
			if err != nil {
				return err
			}
			if err := send(Echoed{Value: e.Key + "!"}); err != nil {
				return err
			}
		}
		return nil
	}, rpc.WithStreamServerInterceptors(logged("first"), tag), rpc.WithStreamServerInterceptors(logged("second"))))
	return []string{"istream.guarded", "istream.guardedsum", "istream.ordered"}
}

// withToken is the caller's half of the authentication pair.
func withToken(ctx context.Context, info rpc.StreamClientInfo, next func(context.Context) error) error {
	return next(rpc.WithOutgoingMD(ctx, rpc.MD{{Key: "token", Value: "s3cret"}}))
}

// nextEnd returns the next end the metrics interceptor saw.
func nextEnd(t *testing.T, p *pair) streamEnd {
	t.Helper()
	select {
	case e := <-get[chan streamEnd](p, "istream.ends"):
		return e
	case <-ctxFor(t).Done():
		t.Fatal("the metrics interceptor never saw the stream end")
		return streamEnd{}
	}
}

var _ = addRows(
	row{"StreamInterceptorAuth", false, func(t *testing.T, p *pair) {
		runs := get[*atomic.Int64](p, "istream.runs")
		before := runs.Load()
		n := 0
		var last error
		for _, err := range rpc.CallServerStream[Tick](ctxFor(t), p.A, "istream.guarded", Watch{3}) {
			n++
			last = err
		}
		if n != 1 || !errors.Is(last, rpc.ErrUnauthenticated) || rpc.Code(last) != rpc.CodeUnauthenticated {
			t.Fatalf("server stream without a token: %d pairs, last %v; want one, CodeUnauthenticated", n, last)
		}
		if e := nextEnd(t, p); e.Code != rpc.CodeUnauthenticated {
			t.Fatalf("metrics saw %+v, want CodeUnauthenticated", e)
		}

		cs, err := rpc.OpenClientStream[Sum, Add](ctxFor(t), p.A, "istream.guardedsum")
		if err != nil {
			t.Fatal(err)
		}
		_ = cs.Send(Add{1, 2}) // may fail once the refusal arrived: CloseAndRecv says why
		if _, err := cs.CloseAndRecv(); !errors.Is(err, rpc.ErrUnauthenticated) {
			t.Fatalf("client stream without a token: %v, want CodeUnauthenticated", err)
		}
		if e := nextEnd(t, p); e.Code != rpc.CodeUnauthenticated {
			t.Fatalf("metrics saw %+v, want CodeUnauthenticated", e)
		}
		if got := runs.Load(); got != before {
			t.Fatalf("the handler ran %d times for streams refused", got-before)
		}

		var got []int
		for tick, err := range rpc.CallServerStream[Tick](ctxFor(t), p.A, "istream.guarded", Watch{3}, rpc.WithStreamClientInterceptors(withToken)) {
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, tick.Seq)
		}
		if !slices.Equal(got, []int{0, 1, 2}) {
			t.Fatalf("with a token: %v, want [0 1 2]", got)
		}
		if e := nextEnd(t, p); e.Code != 0 {
			t.Fatalf("metrics saw %+v, want a clean end", e)
		}
		if got := runs.Load(); got != before+1 {
			t.Fatalf("the handler ran %d times, want once", got-before)
		}
	}},
	row{"StreamInterceptorMetrics", false, func(t *testing.T, p *pair) {
		opens := get[*atomic.Int64](p, "istream.opens")
		before := opens.Load()
		// The caller's side counts opens and their errors, and each end
		// with its code.
		var copens, cfails atomic.Int64
		var codes sync.Map
		cends := make(chan bus.Code, 16)
		cmetrics := func(ctx context.Context, info rpc.StreamClientInfo, next func(context.Context) error) error {
			copens.Add(1)
			info.OnEnd(func(err error) { cends <- rpc.Code(err) })
			err := next(ctx)
			if err != nil {
				cfails.Add(1)
				codes.Store(fmt.Sprint(info.To), rpc.Code(err))
			}
			return err
		}
		client := rpc.Options(rpc.WithStreamClientInterceptors(cmetrics, withToken))
		callerEnd := func(what string, want bus.Code) {
			t.Helper()
			select {
			case c := <-cends:
				if c != want {
					t.Fatalf("%s: the caller's side saw the end with code %d, want %d", what, c, want)
				}
			case <-ctxFor(t).Done():
				t.Fatalf("%s: the caller's side never saw the stream end", what)
			}
		}

		// A clean end, an application error, and a caller that leaves.
		for range rpc.CallServerStream[Tick](ctxFor(t), p.A, "istream.guarded", Watch{2}, client) {
		}
		if e := nextEnd(t, p); e != (streamEnd{"istream.guarded server stream", 0}) {
			t.Fatalf("clean end: metrics saw %+v", e)
		}
		callerEnd("clean end", 0)
		var last error
		for _, err := range rpc.CallServerStream[Tick](ctxFor(t), p.A, "istream.guarded", Watch{-1}, client) {
			last = err
		}
		if rpc.Code(last) != codeStreamFailed {
			t.Fatalf("caller got %v, want code %d", last, codeStreamFailed)
		}
		if e := nextEnd(t, p); e.Code != codeStreamFailed {
			t.Fatalf("failed end: metrics saw %+v, want code %d", e, codeStreamFailed)
		}
		callerEnd("failed end", codeStreamFailed)
		for _, err := range rpc.CallServerStream[Tick](ctxFor(t), p.A, "istream.guarded", Watch{}, client) {
			if err != nil {
				t.Fatal(err)
			}
			break
		}
		if e := nextEnd(t, p); e.Code != bus.CodeCanceled {
			t.Fatalf("caller left: metrics saw %+v, want CodeCanceled", e)
		}
		callerEnd("caller left", bus.CodeCanceled)
		// A handler that panics ends as CodeInternal for its interceptors too.
		for _, err := range rpc.CallServerStream[Tick](ctxFor(t), p.A, "istream.guarded", Watch{-2}, client) {
			last = err
		}
		if !errors.Is(last, rpc.ErrInternal) {
			t.Fatalf("caller got %v, want CodeInternal", last)
		}
		if e := nextEnd(t, p); e.Code != rpc.CodeInternal {
			t.Fatalf("panic: metrics saw %+v, want CodeInternal", e)
		}
		callerEnd("panic", rpc.CodeInternal)
		if got := opens.Load() - before; got != 4 {
			t.Fatalf("the handler's side counted %d opens, want 4", got)
		}

		// An open that fails is seen by the caller's interceptor.
		for _, err := range rpc.CallServerStream[Tick](ctxFor(t), p.A, "istream.nosuch", Watch{1}, client) {
			if !errors.Is(err, bus.ErrNoRoute) {
				t.Fatalf("open to no handler: %v, want ErrNoRoute", err)
			}
		}
		if copens.Load() != 5 || cfails.Load() != 1 {
			t.Fatalf("the caller's side counted %d opens, %d failed; want 5, 1", copens.Load(), cfails.Load())
		}
		if c, _ := codes.Load("istream.nosuch"); c != bus.CodeNoRoute {
			t.Fatalf("the caller's side saw code %v for the failed open, want CodeNoRoute", c)
		}
		callerEnd("failed open", bus.CodeNoRoute)
		if got := opens.Load() - before; got != 4 {
			t.Fatalf("the handler's side counted %d opens, want still 4", got)
		}

		// A client stream's clean end, after its response.
		cs, err := rpc.OpenClientStream[Sum, Add](ctxFor(t), p.A, "istream.guardedsum", client)
		if err != nil {
			t.Fatal(err)
		}
		if err := cs.Send(Add{1, 2}); err != nil {
			t.Fatal(err)
		}
		if s, err := cs.CloseAndRecv(); err != nil || s.N != 3 {
			t.Fatalf("client stream: %v, %v; want 3", s, err)
		}
		nextEnd(t, p)
		callerEnd("client stream", 0)
		// A caller's ctx that ends while nobody uses the stream: the end is
		// seen all the same.
		ctx, cancel := context.WithCancel(ctxFor(t))
		cs, err = rpc.OpenClientStream[Sum, Add](ctx, p.A, "istream.guardedsum", client)
		if err != nil {
			t.Fatal(err)
		}
		if err := cs.Send(Add{1, 2}); err != nil {
			t.Fatal(err)
		}
		cancel()
		callerEnd("ctx ended", bus.CodeCanceled)
		cs.Close()
		nextEnd(t, p)
		// A caller that closes a stream it is still sending on.
		cs, err = rpc.OpenClientStream[Sum, Add](ctxFor(t), p.A, "istream.guardedsum", client)
		if err != nil {
			t.Fatal(err)
		}
		cs.Close()
		callerEnd("caller closed", bus.CodeCanceled)
		nextEnd(t, p)
		select {
		case c := <-cends:
			t.Fatalf("an end seen twice, or one more: code %d", c)
		default:
		}
	}},
	row{"StreamInterceptorOrder", false, func(t *testing.T, p *pair) {
		log := get[interceptLog](p, "istream.log")
		var clog []string
		ends := make(chan string, 2)
		logged := func(name string) rpc.StreamClientInterceptor {
			return func(ctx context.Context, info rpc.StreamClientInfo, next func(context.Context) error) error {
				info.OnEnd(func(err error) { ends <- fmt.Sprintf("%s end %d", name, rpc.Code(err)) })
				clog = append(clog, name+" in "+info.Kind)
				err := next(ctx)
				clog = append(clog, name+" out")
				return err
			}
		}
		bs, err := rpc.OpenBidiStream[Echoed, Echo](ctxFor(t), p.A, "istream.ordered",
			rpc.Options(rpc.WithStreamClientInterceptors(logged("first"))), rpc.WithStreamClientInterceptors(logged("second")))
		if err != nil {
			t.Fatal(err)
		}
		defer bs.Close()
		if err := bs.Send(Echo{"hi"}); err != nil {
			t.Fatal(err)
		}
		if e, err := bs.Recv(); err != nil || e.Value != "hi!" {
			t.Fatalf("got %+v, %v", e, err)
		}
		if err := bs.CloseSend(); err != nil {
			t.Fatal(err)
		}
		if _, err := bs.Recv(); err == nil {
			t.Fatal("a second item, want the end")
		}
		want := []string{"first in bidirectional stream", "second in bidirectional stream", "second out", "first out"}
		if !slices.Equal(clog, want) {
			t.Fatalf("caller's side: %q, want %q", clog, want)
		}
		// The end reaches the innermost first, as a return does.
		if got := []string{<-ends, <-ends}; !slices.Equal(got, []string{"second end 0", "first end 0"}) {
			t.Fatalf("caller's side ends: %q, want second's then first's, clean", got)
		}
		// The handler's side logs its last line after the caller saw the end.
		want = []string{"first in", "second in", "handler tagged", "second out 0", "first out 0"}
		if got := log.take(t, len(want)); !slices.Equal(got, want) {
			t.Fatalf("handler's side: %q, want %q", got, want)
		}

		// A caller's interceptor that refuses: nothing is opened.
		refuse := func(ctx context.Context, info rpc.StreamClientInfo, next func(context.Context) error) error {
			return rpc.Errorf(rpc.CodePermissionDenied, "not to %v", info.To)
		}
		if _, err := rpc.OpenBidiStream[Echoed, Echo](ctxFor(t), p.A, "istream.ordered", rpc.WithStreamClientInterceptors(refuse)); !errors.Is(err, rpc.ErrPermissionDenied) {
			t.Fatalf("refused open: %v, want CodePermissionDenied", err)
		}
		select {
		case s := <-log:
			t.Fatalf("a refused open reached the handler's side: %q", s)
		default:
		}
	}},
)
