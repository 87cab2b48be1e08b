package rpc_test

import (
	"context"
	"errors"
	"io"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/xbus-dev/xbus/bus"
	"github.com/xbus-dev/xbus/rpc"
)

// Tick is a server stream's response; Watch opens one for N ticks (0: until
// the caller goes).
type (
	Watch struct{ N int }
	Tick  struct{ Seq int }
)

// errStreamFailed is what "stream.fail" ends with: an application code.
var codeStreamFailed = rpc.CodeApplication + 7

var _ = addServe(serveStreams)

// serveStreams registers the stream handlers of the rows below.
func serveStreams(t *testing.T, p *pair) []string {
	t.Helper()
	b := p.B
	must := mustOK(t)
	// stream.ticks sends Watch.N ticks, or ticks until its stream ends,
	// and reports how many sends succeeded and how its ctx ended.
	sent := make(chan int, 16)
	ended := make(chan error, 16)
	progress := new(atomic.Int64)
	p.set("stream.sent", sent)
	p.set("stream.ended", ended)
	p.set("stream.progress", progress)
	must(rpc.HandleServerStream(b, "stream.ticks", func(ctx context.Context, w Watch, send func(Tick) error) error {
		n := 0
		progress.Store(0)
		for w.N == 0 || n < w.N {
			err := send(Tick{n})
			if err == nil {
				progress.Add(1)
			}
			if err != nil {
				sent <- n
				<-ctx.Done()
				ended <- ctx.Err()
				return err
			}
			n++
		}
		sent <- n
		return nil
	}))
	// stream.fail sends two ticks, then fails with an application code.
	must(rpc.HandleServerStream(b, "stream.fail", func(ctx context.Context, w Watch, send func(Tick) error) error {
		for i := range 2 {
			if err := send(Tick{i}); err != nil {
				return err
			}
		}
		return rpc.Errorf(codeStreamFailed, "stream failed after %d", 2)
	}))
	// stream.forever never sends and never returns before its ctx ends.
	must(rpc.HandleServerStream(b, "stream.forever", func(ctx context.Context, w Watch, send func(Tick) error) error {
		<-ctx.Done()
		ended <- ctx.Err()
		return ctx.Err()
	}))
	// stream.sum adds the requests of a client stream; a negative one
	// fails it.
	must(rpc.HandleClientStream(b, "stream.sum", func(ctx context.Context, in *rpc.Receiver[Add]) (Sum, error) {
		var s Sum
		for a, err := range in.All() {
			if err != nil {
				return Sum{}, err
			}
			if a.A < 0 {
				return Sum{}, rpc.Errorf(rpc.CodeInvalidArgument, "negative: %d", a.A)
			}
			s.N += a.A + a.B
		}
		return s, nil
	}))
	// stream.strict reads Stricts: a body that does not decode ends it.
	must(rpc.HandleClientStream(b, "stream.strict", func(ctx context.Context, in *rpc.Receiver[Strict]) (Sum, error) {
		var s Sum
		for x, err := range in.All() {
			if err != nil {
				return Sum{}, err
			}
			s.N += x.N
		}
		return s, nil
	}))
	// stream.echo answers each request of a bidirectional stream, with its
	// metadata's "k" in the first answer.
	must(rpc.HandleBidiStream(b, "stream.echo", func(ctx context.Context, in *rpc.Receiver[Echo], send func(Echoed) error) error {
		md, _ := rpc.IncomingMD(ctx).Get("k")
		_, hasDeadline := ctx.Deadline()
		for e, err := range in.All() {
			if err != nil {
				return err
			}
			if err := send(Echoed{Value: e.Key + md, HasDeadline: hasDeadline}); err != nil {
				return err
			}
			md = ""
		}
		return nil
	}))
	return []string{"stream.ticks", "stream.fail", "stream.forever", "stream.sum", "stream.strict", "stream.echo"}
}

var _ = addRows(
	row{"ServerStream", false, func(t *testing.T, p *pair) {
		const n = 100 // many windows of 4
		i := 0
		for tick, err := range rpc.CallServerStream[Tick](ctxFor(t), p.A, "stream.ticks", Watch{n}, rpc.StreamWindow(4)) {
			if err != nil || tick.Seq != i {
				t.Fatalf("item %d: %v, %v", i, tick, err)
			}
			i++
		}
		if i != n {
			t.Fatalf("%d items, want %d", i, n)
		}
		if got := <-get[chan int](p, "stream.sent"); got != n {
			t.Fatalf("the handler sent %d", got)
		}
	}},
	row{"ServerStreamCodedError", false, func(t *testing.T, p *pair) {
		var items int
		var last error
		for _, err := range rpc.CallServerStream[Tick](ctxFor(t), p.A, "stream.fail", Watch{}) {
			if err != nil {
				last = err
				break
			}
			items++
		}
		if items != 2 || !errors.Is(last, rpc.Sentinel(codeStreamFailed)) || rpc.Code(last) != codeStreamFailed {
			t.Fatalf("%d items, then %v (code %d), want 2 and code %d", items, last, rpc.Code(last), codeStreamFailed)
		}
	}},
	// A reader that stops: the handler sends its window and no more; the
	// reader leaving ends the handler's sends and its ctx.
	row{"ServerStreamSlowReader", false, func(t *testing.T, p *pair) {
		const window = 4
		got := 0
		for _, err := range rpc.CallServerStream[Tick](ctxFor(t), p.A, "stream.ticks", Watch{}, rpc.StreamWindow(window)) {
			if err != nil {
				t.Fatal(err)
			}
			got++
			// One item taken is less than half the window: no credit goes
			// back, so the handler sends the window and not one more.
			// Leaving the range cancels the stream.
			progress := get[*atomic.Int64](p, "stream.progress")
			for deadline := time.Now().Add(20 * time.Second); progress.Load() < window; time.Sleep(time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatalf("the handler sent %d of its window of %d", progress.Load(), window)
				}
			}
			break
		}
		if sent := <-get[chan int](p, "stream.sent"); sent != window {
			t.Fatalf("the handler sent %d items to a reader that took %d, want the window, %d", sent, got, window)
		}
		if err := <-get[chan error](p, "stream.ended"); !errors.Is(err, context.Canceled) {
			t.Fatalf("the handler's ctx ended with %v, want context.Canceled", err)
		}
	}},
	row{"ServerStreamNeverReturns", false, func(t *testing.T, p *pair) {
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		var last error
		for _, err := range rpc.CallServerStream[Tick](ctx, p.A, "stream.forever", Watch{}) {
			last = err
		}
		if !errors.Is(last, bus.ErrDeadline) {
			t.Fatalf("the caller got %v, want ErrDeadline", last)
		}
		if err := <-get[chan error](p, "stream.ended"); err == nil {
			t.Fatal("the handler's ctx did not end")
		}
	}},
	row{"ClientStream", false, func(t *testing.T, p *pair) {
		cs, err := rpc.OpenClientStream[Sum, Add](ctxFor(t), p.A, "stream.sum", rpc.StreamWindow(2))
		if err != nil {
			t.Fatal(err)
		}
		want := 0
		for i := range 200 {
			if err := cs.Send(Add{i, 1}); err != nil {
				t.Fatalf("send %d: %v", i, err)
			}
			want += i + 1
		}
		if s, err := cs.CloseAndRecv(); err != nil || s.N != want {
			t.Fatalf("sum %v, %v, want %d", s, err, want)
		}
	}},
	row{"ClientStreamHandlerFails", false, func(t *testing.T, p *pair) {
		cs, err := rpc.OpenClientStream[Sum, Add](ctxFor(t), p.A, "stream.sum")
		if err != nil {
			t.Fatal(err)
		}
		if err := cs.Send(Add{-1, 0}); err != nil {
			t.Fatal(err)
		}
		if _, err := cs.CloseAndRecv(); !errors.Is(err, rpc.ErrInvalidArgument) {
			t.Fatalf("CloseAndRecv: %v, want ErrInvalidArgument", err)
		}
	}},
	row{"BidiStream", false, func(t *testing.T, p *pair) {
		bs, err := rpc.OpenBidiStream[Echoed, Echo](ctxFor(t), p.A, "stream.echo", rpc.Header("k", "!"))
		if err != nil {
			t.Fatal(err)
		}
		for i, k := range []string{"a", "b", "c"} {
			if err := bs.Send(Echo{Key: k}); err != nil {
				t.Fatal(err)
			}
			e, err := bs.Recv()
			want := k
			if i == 0 {
				want += "!"
			}
			if err != nil || e.Value != want || !e.HasDeadline {
				t.Fatalf("answer %d: %+v, %v, want %q with a deadline", i, e, err, want)
			}
		}
		if err := bs.CloseSend(); err != nil {
			t.Fatal(err)
		}
		if _, err := bs.Recv(); !errors.Is(err, io.EOF) {
			t.Fatalf("after CloseSend: %v, want io.EOF", err)
		}
	}},
	row{"StreamToUnaryHandler", false, func(t *testing.T, p *pair) {
		for _, err := range rpc.CallServerStream[Sum](ctxFor(t), p.A, "arith.add", Add{1, 2}) {
			if !errors.Is(err, rpc.ErrUnimplemented) {
				t.Fatalf("a stream to a unary handler: %v, want ErrUnimplemented", err)
			}
			return
		}
		t.Fatal("a stream to a unary handler ended cleanly")
	}},
	row{"CallToStreamHandler", false, func(t *testing.T, p *pair) {
		if _, err := rpc.Call[Tick](ctxFor(t), p.A, "stream.ticks", Watch{1}); !errors.Is(err, rpc.ErrUnimplemented) {
			t.Fatalf("a call to a stream handler: %v, want ErrUnimplemented", err)
		}
	}},
	row{"StreamBodyDoesNotDecode", true, func(t *testing.T, p *pair) {
		if !p.A.Types().Known(reflect.TypeFor[badStrict]()) {
			if err := bus.RegisterType[badStrict](p.A.Types(), "rpc_test.Strict"); err != nil {
				t.Fatal(err)
			}
		}
		cs, err := rpc.OpenClientStream[Sum, badStrict](ctxFor(t), p.A, "stream.strict")
		if err != nil {
			t.Fatal(err)
		}
		_ = cs.Send(badStrict{"x"}) // may fail once the handler's end is told
		_, err = cs.CloseAndRecv()
		if !errors.Is(err, bus.ErrBadEnvelope) || !strings.Contains(err.Error(), "rpc_test.Strict") {
			t.Fatalf("a stream item that does not decode: %v, want ErrBadEnvelope naming rpc_test.Strict", err)
		}
		// The link stays.
		if s, err := rpc.Call[Sum](ctxFor(t), p.A, "arith.add", Add{1, 2}); err != nil || s.N != 3 {
			t.Fatalf("a call after: %v, %v", s, err)
		}
	}},
)
