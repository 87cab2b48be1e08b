package rpc

import (
	"context"
	"fmt"
	"reflect"
	"time"

	"github.com/xbus-dev/xbus/bus"
	"github.com/xbus-dev/xbus/bus/placement"
	"github.com/xbus-dev/xbus/mailbox"
)

// CallOption configures one call (Call, Go, Send).
type CallOption func(*callOptions)

type callOptions struct {
	md                 MD
	interceptors       []ClientInterceptor
	streamInterceptors []StreamClientInterceptor
	trailer            *MD
	codec              bus.Codec

	// Fail mode (failmode.go).
	mode       FailMode
	modeSet    bool
	retries    int
	after      time.Duration
	idempotent bool
	budget     *placement.Budget
	window     int // a stream's window (StreamWindow)
}

func parseCallOptions(opts []CallOption) *callOptions {
	o := new(callOptions)
	for _, f := range opts {
		f(o)
	}
	return o
}

// context returns ctx carrying the call's metadata and codec.
func (o *callOptions) context(ctx context.Context) context.Context {
	ctx = bus.WithHeaders(ctx, o.md...)
	if o.trailer != nil {
		ctx = bus.WithReplyHeaders(ctx, (*[]bus.Header)(o.trailer))
	}
	if o.codec != nil {
		ctx = bus.WithCodec(ctx, o.codec)
	}
	return ctx
}

// WithCodec encodes the call's request with c when it goes to another
// node; the handler's node decodes it with its codec of that name and
// replies in it (unless the handler chose its codec: WithServerCodec). In
// process nothing is encoded. Without it the link's codec is used
// (codec/cbor by default). Req and Resp must be types c encodes.
func WithCodec(c bus.Codec) CallOption {
	return func(o *callOptions) { o.codec = c }
}

// Header adds one metadata pair to the call; the handler reads it with
// IncomingMD.
func Header(key, value string) CallOption {
	return func(o *callOptions) { o.md = append(o.md, bus.Header{Key: key, Value: value}) }
}

// Trailer stores in *md the metadata the handler sent back with its
// response or error (SetTrailer), once the call returns; *md is left as it
// was when there is none or the call ends before its reply.
func Trailer(md *MD) CallOption {
	return func(o *callOptions) { o.trailer = md }
}

// ClientInfo describes the call a ClientInterceptor wraps.
type ClientInfo struct {
	To     any  // the name or bus.Ref called
	OneWay bool // Send: no reply is awaited
}

// ClientInterceptor wraps a call on the caller's side: it may add metadata
// to ctx (WithOutgoingMD), inspect or refuse the request, and must call
// next to send it. next's reply is nil for a one-way call.
type ClientInterceptor func(ctx context.Context, info ClientInfo, req any, next func(ctx context.Context, req any) (any, error)) (any, error)

// WithClientInterceptors wraps the call in ics, the first outermost.
func WithClientInterceptors(ics ...ClientInterceptor) CallOption {
	return func(o *callOptions) { o.interceptors = append(o.interceptors, ics...) }
}

// Call sends req to the handler registered as to (a name or a bus.Ref) and
// waits for its response, bounded by ctx, whose deadline becomes the
// handler's. Req and Resp are registered with the bus's type registry as
// Handle registers them. It returns the handler's error as the handler
// returned it in process, and across a link as a *bus.RemoteError of the
// same code (errors.Is matches either way), or the bus's error when the
// call did not get through (bus.ErrNoRoute, bus.ErrDeadline, ...). A
// response of another type than Resp is an error wrapping bus.ErrWrongType.
//
// A call by name that fails for want of its instance is sent to another
// instance when it provably never ran (ModeFailover, the default); the
// options Failfast, Failover, Failtry, Failbackup, Idempotent and
// RetryBudget say otherwise (see FailMode).
func Call[Resp, Req any](ctx context.Context, b *bus.Bus, to any, req Req, opts ...CallOption) (Resp, error) {
	var zero Resp
	var o *callOptions
	var codec bus.Codec
	if len(opts) > 0 {
		o = parseCallOptions(opts)
		codec = o.codec
	}
	if err := ensurePair(b.Types(), codec, reflect.TypeFor[Req](), reflect.TypeFor[Resp]()); err != nil {
		return zero, err
	}
	var r any
	var err error
	if o == nil {
		r, err = invoke(ctx, b, to, req, nil)
	} else {
		ctx = o.context(ctx)
		if len(o.interceptors) == 0 {
			r, err = invoke(ctx, b, to, req, o)
		} else {
			r, err = chainClient(ClientInfo{To: to}, o.interceptors, func(ctx context.Context, req any) (any, error) {
				return invoke(ctx, b, to, req, o)
			})(ctx, req)
		}
	}
	if err != nil {
		return zero, err
	}
	v, ok := r.(Resp)
	if !ok {
		return zero, fmt.Errorf("%w: %v answered %T, want %T", bus.ErrWrongType, to, r, zero)
	}
	return v, nil
}

// Send is a one-way call: req is queued for the handler registered as to
// (a bus.Ref, or a name placed as a Tell is), whose response is dropped and
// whose error is logged on its node. It returns once req is queued or
// handed to a link, with an error when it cannot be (bus.ErrNoRoute,
// bus.ErrMailboxFull...). Metadata travels to another node; a one-way call
// in process carries none.
func Send[Req any](ctx context.Context, b *bus.Bus, to any, req Req, opts ...CallOption) error {
	o := parseCallOptions(opts)
	if err := ensure(b.Types(), o.codec, reflect.TypeFor[Req]()); err != nil {
		return err
	}
	ctx = o.context(ctx)
	send := func(ctx context.Context, req any) (any, error) {
		return nil, b.Send(ctx, to, req, mailbox.Default)
	}
	if len(o.interceptors) > 0 {
		send = chainClient(ClientInfo{To: to, OneWay: true}, o.interceptors, send)
	}
	_, err := send(ctx, req)
	return err
}

// Future is the pending outcome of a call started with Go.
type Future[Resp any] struct {
	done chan struct{}
	resp Resp
	err  error
}

// Go starts a call as Call does and returns at once; the Future holds its
// outcome. The call is bounded by ctx: cancel it to give up.
func Go[Resp, Req any](ctx context.Context, b *bus.Bus, to any, req Req, opts ...CallOption) *Future[Resp] {
	f := &Future[Resp]{done: make(chan struct{})}
	go func() {
		defer close(f.done)
		f.resp, f.err = Call[Resp](ctx, b, to, req, opts...)
	}()
	return f
}

// Done is closed when the outcome is there.
func (f *Future[Resp]) Done() <-chan struct{} { return f.done }

// Wait waits for the outcome; it returns once the call's ctx ends at the
// latest.
func (f *Future[Resp]) Wait() (Resp, error) {
	<-f.done
	return f.resp, f.err
}

func chainClient(info ClientInfo, ics []ClientInterceptor, h func(context.Context, any) (any, error)) func(context.Context, any) (any, error) {
	for i := len(ics) - 1; i >= 0; i-- {
		ic, next := ics[i], h
		h = func(ctx context.Context, req any) (any, error) {
			return ic(ctx, info, req, next)
		}
	}
	return h
}
