package rpc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"reflect"

	"github.com/xbus-dev/xbus/bus"
)

// Streams are bus streams (bus.OpenStream) with types: the request opens
// the stream, items travel as they are in process and encoded by the link's
// codec across one, and each direction has its own credit window, so a
// slow reader costs bounded memory at both ends. See docs/streaming.md.

// StreamWindow sets how many items the caller's end of a stream accepts
// ahead of its reader (bus.StreamWindow); zero keeps the bus's.
func StreamWindow(n int) CallOption {
	return func(o *callOptions) { o.window = n }
}

// HandleServerStream registers h on b under name: for each stream opened
// with a Req (CallServerStream), h runs on a goroutine of its own and sends
// the responses with send, which waits while the caller's window is full
// and fails once the stream ended (the caller went away or gave up: h
// should then return). h's return ends the stream: nil as its clean end,
// an error as the caller's last, with its code (as Handle's).
//
// h's ctx ends when the stream does: the caller's deadline, its cancel, a
// link that dies, the bus closing. An open stream counts in the instance's
// load, so placement spreads streams as it spreads calls.
func HandleServerStream[Req, Resp any](b *bus.Bus, name string, h func(ctx context.Context, req Req, send func(Resp) error) error, opts ...Option) (bus.Ref, error) {
	if h == nil {
		return bus.Ref{}, fmt.Errorf("rpc: nil handler for %q", name)
	}
	if err := ensurePair(b.Types(), serverCodec(opts), reflect.TypeFor[Req](), reflect.TypeFor[Resp]()); err != nil {
		return bus.Ref{}, fmt.Errorf("rpc: %s: %w", name, err)
	}
	run := func(ctx context.Context, s *bus.Stream) error {
		req, ok := s.Msg().(Req)
		if !ok {
			return errBadRequest(name, reflect.TypeFor[Req]().String(), s.Msg())
		}
		return h(ctx, req, func(r Resp) error { return s.Send(ctx, r) })
	}
	return registerStream(b, name, "server stream", run, opts)
}

// HandleClientStream registers h on b under name: for each stream opened
// with OpenClientStream, h runs on a goroutine of its own, reads the
// caller's requests from in until io.EOF, and returns the one response.
func HandleClientStream[Req, Resp any](b *bus.Bus, name string, h func(ctx context.Context, in *Receiver[Req]) (Resp, error), opts ...Option) (bus.Ref, error) {
	if h == nil {
		return bus.Ref{}, fmt.Errorf("rpc: nil handler for %q", name)
	}
	if err := ensurePair(b.Types(), serverCodec(opts), reflect.TypeFor[Req](), reflect.TypeFor[Resp]()); err != nil {
		return bus.Ref{}, fmt.Errorf("rpc: %s: %w", name, err)
	}
	run := func(ctx context.Context, s *bus.Stream) error {
		resp, err := h(ctx, &Receiver[Req]{s: s, ctx: ctx})
		if err != nil {
			return err
		}
		return s.Send(ctx, resp)
	}
	return registerStream(b, name, "client stream", run, opts)
}

// HandleBidiStream registers h on b under name: for each stream opened
// with OpenBidiStream, h runs on a goroutine of its own, reads requests
// from in and sends responses with send, in any order, until it returns;
// its return ends the stream as HandleServerStream's does.
func HandleBidiStream[Req, Resp any](b *bus.Bus, name string, h func(ctx context.Context, in *Receiver[Req], send func(Resp) error) error, opts ...Option) (bus.Ref, error) {
	if h == nil {
		return bus.Ref{}, fmt.Errorf("rpc: nil handler for %q", name)
	}
	if err := ensurePair(b.Types(), serverCodec(opts), reflect.TypeFor[Req](), reflect.TypeFor[Resp]()); err != nil {
		return bus.Ref{}, fmt.Errorf("rpc: %s: %w", name, err)
	}
	run := func(ctx context.Context, s *bus.Stream) error {
		return h(ctx, &Receiver[Req]{s: s, ctx: ctx}, func(r Resp) error { return s.Send(ctx, r) })
	}
	return registerStream(b, name, "bidirectional stream", run, opts)
}

// streamServer is the actor of a stream handler: it starts a goroutine per
// stream it receives, and refuses calls.
type streamServer struct {
	name, kind string
	run        func(context.Context, *bus.Stream) error
	ics        []StreamServerInterceptor // WithStreamServerInterceptors
	log        interface{ Error(string, ...any) }
	srv        *Server // WithServer; nil for none
}

func registerStream(b *bus.Bus, name, kind string, run func(context.Context, *bus.Stream) error, opts []Option) (bus.Ref, error) {
	o := parseOptions(opts)
	return register(b, name, &streamServer{name: name, kind: kind, run: run, ics: o.streamInterceptors, log: b.Logger(), srv: o.server}, &o)
}

func (ss *streamServer) Receive(c *bus.Context, msg any) error {
	switch m := msg.(type) {
	case *bus.Stream:
		if ss.srv != nil && !ss.srv.enter() {
			m.Close(Errorf(CodeUnavailable, "rpc: %s: the server is shutting down", ss.name))
			return nil
		}
		go ss.serve(m)
	case bus.Started, bus.Stopping, bus.Restarting, bus.Terminated:
	default:
		if c.IsAsk() {
			c.ReplyError(Errorf(CodeUnimplemented, "rpc: %s is a %s: open a stream to it, not a call", ss.name, ss.kind))
		}
	}
	return nil
}

// serve runs the handler on one stream and ends the stream with its
// outcome.
func (ss *streamServer) serve(s *bus.Stream) {
	if ss.srv != nil {
		// A stream still running when its server's shutdown deadline
		// passes is ended, its handler's ctx with it.
		stop := context.AfterFunc(ss.srv.hard, func() {
			s.Close(Errorf(CodeUnavailable, "rpc: %s: the server shut down", ss.name))
		})
		defer ss.srv.leave()
		defer stop()
	}
	ctx := s.Context()
	hs := s.Headers()
	if len(hs) > 0 {
		ctx = context.WithValue(ctx, incomingKey{}, MD(hs))
	}
	var err error
	if len(ss.ics) == 0 {
		err = ss.call(ctx, s)
	} else {
		err = ss.callWrapped(ctx, s, MD(hs))
	}
	if err != nil {
		err = ctxCoded(err)
	}
	s.Close(err)
}

// call runs the handler, turning a panic into a CodeInternal error.
func (ss *streamServer) call(ctx context.Context, s *bus.Stream) (err error) {
	defer recoverInto(ss.name, &err, ss.log)
	return ss.run(ctx, s)
}

// callWrapped runs the handler behind its interceptors, which see its
// error coded as its caller will (a panic, its ctx's ending).
func (ss *streamServer) callWrapped(ctx context.Context, s *bus.Stream, md MD) (err error) {
	defer recoverInto(ss.name, &err, ss.log)
	info := StreamServerInfo{Name: ss.name, Kind: ss.kind, MD: md}
	return chainStream(info, ss.ics, func(ctx context.Context) error {
		if err := ss.call(ctx, s); err != nil {
			return ctxCoded(err)
		}
		return nil
	})(ctx)
}

// refuseStream ends a stream opened to a unary handler: it takes calls.
func refuseStream(s *bus.Stream, name string) {
	s.Close(Errorf(CodeUnimplemented, "rpc: %s takes calls, not streams", name))
}

// Receiver reads the typed items of one stream: a handler's requests, or
// a caller's responses.
type Receiver[T any] struct {
	s   *bus.Stream
	ctx context.Context
}

// Recv returns the next item, waiting for it. After the last one it
// returns io.EOF when the other end ended cleanly, else its error (coded:
// errors.Is matches across links) or why the stream ended (bus.ErrDeadline,
// bus.ErrCanceled, bus.ErrPeerGone...). An item of another type than T
// ends the stream with an error wrapping bus.ErrWrongType.
func (r *Receiver[T]) Recv() (T, error) {
	var zero T
	m, err := r.s.Recv(r.ctx)
	if err != nil {
		return zero, err
	}
	v, ok := m.(T)
	if !ok {
		err := fmt.Errorf("%w: a stream item of type %T, want %T", bus.ErrWrongType, m, zero)
		r.s.Close(err)
		return zero, err
	}
	return v, nil
}

// All ranges over the items until the stream's clean end; an error ends
// the range as its last pair. Breaking out of the range leaves the stream
// as it is.
func (r *Receiver[T]) All() iter.Seq2[T, error] {
	return func(yield func(T, error) bool) {
		for {
			v, err := r.Recv()
			if errors.Is(err, io.EOF) {
				return
			}
			if !yield(v, err) || err != nil {
				return
			}
		}
	}
}

// serverCodec returns the codec opts choose (WithServerCodec), or nil.
func serverCodec(opts []Option) bus.Codec {
	var o serverOptions
	for _, f := range opts {
		f(&o)
	}
	return o.codec
}

// callCodec returns the codec opts choose (WithCodec), or nil.
func callCodec(opts []CallOption) bus.Codec {
	if len(opts) == 0 {
		return nil
	}
	return parseCallOptions(opts).codec
}

// open opens a stream of kind for a caller with the call's options,
// through its interceptors; the ctx it returns bounds the stream.
func open(ctx context.Context, b *bus.Bus, to any, kind string, req any, opts []CallOption) (context.Context, *bus.Stream, error) {
	var o callOptions
	for _, f := range opts {
		f(&o)
	}
	ctx = bus.WithHeaders(ctx, o.md...)
	if o.codec != nil {
		ctx = bus.WithCodec(ctx, o.codec)
	}
	var sopts []bus.StreamOption
	if o.window != 0 {
		sopts = append(sopts, bus.StreamWindow(o.window))
	}
	if len(o.streamInterceptors) > 0 {
		return openIntercepted(ctx, b, StreamClientInfo{To: to, Kind: kind}, req, &o, sopts)
	}
	s, err := b.OpenStream(ctx, to, req, sopts...)
	return ctx, s, err
}

// CallServerStream opens a stream with req to the handler registered as
// to (HandleServerStream) and ranges over its responses:
//
//	for tick, err := range rpc.CallServerStream[Tick](ctx, b, "prices.watch", Watch{"EUR"}) {
//		if err != nil {
//			return err // the handler's error, coded, or why the stream ended
//		}
//		use(tick)
//	}
//
// The range ends after the handler's last response when it returned nil;
// otherwise its last pair carries the error. Breaking out of the range, or
// ctx ending, cancels the stream: the handler's ctx ends. ctx bounds the
// whole stream and its deadline becomes the handler's.
func CallServerStream[Resp, Req any](ctx context.Context, b *bus.Bus, to any, req Req, opts ...CallOption) iter.Seq2[Resp, error] {
	return func(yield func(Resp, error) bool) {
		var zero Resp
		if err := ensurePair(b.Types(), callCodec(opts), reflect.TypeFor[Req](), reflect.TypeFor[Resp]()); err != nil {
			yield(zero, err)
			return
		}
		ctx, s, err := open(ctx, b, to, "server stream", req, opts)
		if err != nil {
			yield(zero, err)
			return
		}
		defer s.Close(nil)   // a range left early cancels; after the end it does nothing
		_ = s.CloseSend(nil) // an error here is the stream's end, which Recv reports
		r := Receiver[Resp]{s: s, ctx: ctx}
		for v, err := range r.All() {
			if !yield(v, err) {
				return
			}
		}
	}
}

// ClientStream is the caller's end of a client stream (OpenClientStream):
// it sends requests, then takes the one response.
type ClientStream[Req, Resp any] struct {
	s   *bus.Stream
	ctx context.Context
}

// OpenClientStream opens a stream to the handler registered as to
// (HandleClientStream). ctx bounds the whole stream.
func OpenClientStream[Resp, Req any](ctx context.Context, b *bus.Bus, to any, opts ...CallOption) (*ClientStream[Req, Resp], error) {
	if err := ensurePair(b.Types(), callCodec(opts), reflect.TypeFor[Req](), reflect.TypeFor[Resp]()); err != nil {
		return nil, err
	}
	ctx, s, err := open(ctx, b, to, "client stream", nil, opts)
	if err != nil {
		return nil, err
	}
	return &ClientStream[Req, Resp]{s: s, ctx: ctx}, nil
}

// Send sends one request, waiting while the handler's window is full. It
// fails once the stream ended: when the handler returned early, with its
// error.
func (c *ClientStream[Req, Resp]) Send(req Req) error { return c.s.Send(c.ctx, req) }

// CloseAndRecv ends the requests and waits for the handler's response or
// error.
func (c *ClientStream[Req, Resp]) CloseAndRecv() (Resp, error) {
	var zero Resp
	if err := c.s.CloseSend(nil); err != nil {
		return zero, err
	}
	r := Receiver[Resp]{s: c.s, ctx: c.ctx}
	resp, err := r.Recv()
	if errors.Is(err, io.EOF) {
		return zero, fmt.Errorf("%w: the handler ended the stream without a response", bus.ErrNoReply)
	}
	if err != nil {
		return zero, err
	}
	if _, err := r.Recv(); !errors.Is(err, io.EOF) {
		c.s.Close(nil)
		if err == nil {
			err = fmt.Errorf("%w: a client stream answered more than once", bus.ErrWrongType)
		}
		return zero, err
	}
	return resp, nil
}

// Close abandons the stream: the handler's ctx ends.
func (c *ClientStream[Req, Resp]) Close() { c.s.Close(nil) }

// BidiStream is the caller's end of a bidirectional stream
// (OpenBidiStream). One goroutine may Send while another Recvs.
type BidiStream[Req, Resp any] struct {
	Receiver[Resp]
}

// OpenBidiStream opens a stream to the handler registered as to
// (HandleBidiStream). ctx bounds the whole stream.
func OpenBidiStream[Resp, Req any](ctx context.Context, b *bus.Bus, to any, opts ...CallOption) (*BidiStream[Req, Resp], error) {
	if err := ensurePair(b.Types(), callCodec(opts), reflect.TypeFor[Req](), reflect.TypeFor[Resp]()); err != nil {
		return nil, err
	}
	ctx, s, err := open(ctx, b, to, "bidirectional stream", nil, opts)
	if err != nil {
		return nil, err
	}
	return &BidiStream[Req, Resp]{Receiver[Resp]{s: s, ctx: ctx}}, nil
}

// Send sends one request, waiting while the handler's window is full.
func (c *BidiStream[Req, Resp]) Send(req Req) error { return c.s.Send(c.ctx, req) }

// CloseSend ends the requests: the handler's in reads io.EOF after the last.
func (c *BidiStream[Req, Resp]) CloseSend() error { return c.s.CloseSend(nil) }

// Close abandons the stream: the handler's ctx ends. After the handler's
// clean end it does nothing.
func (c *BidiStream[Req, Resp]) Close() { c.s.Close(nil) }
