package rpc

import (
	"context"
	"sync"

	"github.com/xbus-dev/xbus/bus"
)

// StreamServerInfo describes the stream a StreamServerInterceptor wraps.
type StreamServerInfo struct {
	Name string // the name the handler is registered under
	Kind string // "server stream", "client stream" or "bidirectional stream"
	MD   MD     // the metadata the stream was opened with
}

// StreamServerInterceptor wraps every stream of a stream handler, on the
// stream's goroutine: it may read the metadata, refuse the stream by
// returning an error without calling next (the caller gets it, coded, and
// the handler never runs), and must call next to run the handler, whose
// ctx is the one given to next. next returns when the handler did, with
// the error that ends the stream (nil for a clean end; a handler's panic
// as CodeInternal, its ctx's ending as bus.ErrCanceled or
// bus.ErrDeadline); what the interceptor returns ends the stream.
type StreamServerInterceptor func(ctx context.Context, info StreamServerInfo, next func(ctx context.Context) error) error

// WithStreamServerInterceptors wraps each stream of a stream handler
// (HandleServerStream, HandleClientStream, HandleBidiStream) in ics, the
// first outermost, inside its Server's (StreamServerInterceptors). The
// unary ServerInterceptors do not wrap streams, nor these calls.
func WithStreamServerInterceptors(ics ...StreamServerInterceptor) Option {
	return func(o *serverOptions) { o.streamInterceptors = append(o.streamInterceptors, ics...) }
}

// StreamClientInfo describes the stream a StreamClientInterceptor wraps.
type StreamClientInfo struct {
	To   any    // the name or bus.Ref the stream is opened to
	Kind string // "server stream", "client stream" or "bidirectional stream"

	ends *streamEnds // OnEnd's; nil in an info rpc did not make
}

// OnEnd has f run once, when the stream ends, with the error that ended
// it as its caller sees it: nil for the handler's clean end, the
// handler's error (coded), or why it ended early (the caller's Close, or
// its leaving a range, as bus.ErrCanceled; its ctx's end; a lost link);
// or, when the open failed (next's error, or an interceptor's refusal),
// that error. f runs on a goroutine of its own as the stream ends, or
// before a failed open returns; the functions of one stream run the last
// given first, as deferred calls do. An interceptor calls OnEnd before it
// returns. On an info that rpc did not make, OnEnd does nothing.
func (i StreamClientInfo) OnEnd(f func(err error)) {
	if i.ends != nil {
		i.ends.add(f)
	}
}

// streamEnds holds the functions given to one stream's OnEnd.
type streamEnds struct {
	mu    sync.Mutex
	fs    []func(error)
	ended bool
	err   error
}

func (e *streamEnds) add(f func(error)) {
	e.mu.Lock()
	if !e.ended {
		e.fs = append(e.fs, f)
		e.mu.Unlock()
		return
	}
	err := e.err
	e.mu.Unlock()
	f(err)
}

// run ends the stream with err, once: the functions run, the last first.
func (e *streamEnds) run(err error) {
	e.mu.Lock()
	if e.ended {
		e.mu.Unlock()
		return
	}
	e.ended, e.err = true, err
	fs := e.fs
	e.fs = nil
	e.mu.Unlock()
	for i := len(fs) - 1; i >= 0; i-- {
		fs[i](err)
	}
}

// StreamClientInterceptor wraps a stream on the caller's side. It runs as
// the stream opens: it may add metadata to ctx (WithOutgoingMD), refuse by
// returning an error without calling next (nothing is sent; the caller
// gets the error), and must call next to open the stream; next's error is
// the open's. The ctx given to next bounds the whole stream, so it must
// not be cancelled before the stream ends. The stream's end, which reaches
// the caller's Recv, reaches the interceptor through info.OnEnd, as a
// gRPC interceptor sees it through the stream it wraps.
type StreamClientInterceptor func(ctx context.Context, info StreamClientInfo, next func(ctx context.Context) error) error

// WithStreamClientInterceptors wraps the stream in ics, the first
// outermost. The unary ClientInterceptors do not wrap streams, nor these
// calls.
func WithStreamClientInterceptors(ics ...StreamClientInterceptor) CallOption {
	return func(o *callOptions) { o.streamInterceptors = append(o.streamInterceptors, ics...) }
}

// chainStream returns h behind ics, the first outermost: a server's
// stream interceptors or a caller's.
func chainStream[I any, IC ~func(context.Context, I, func(context.Context) error) error](info I, ics []IC, h func(context.Context) error) func(context.Context) error {
	for i := len(ics) - 1; i >= 0; i-- {
		ic, next := ics[i], h
		h = func(ctx context.Context) error { return ic(ctx, info, next) }
	}
	return h
}

// openIntercepted opens a stream through o's interceptors and returns the
// ctx it was opened with, which bounds it.
func openIntercepted(ctx context.Context, b *bus.Bus, info StreamClientInfo, req any, o *callOptions, sopts []bus.StreamOption) (context.Context, *bus.Stream, error) {
	info.ends = new(streamEnds)
	var s *bus.Stream
	var openCtx context.Context
	h := func(ctx context.Context) error {
		if s != nil {
			s.Close(nil) // next called again: the stream before is abandoned
		}
		var err error
		s, err = b.OpenStream(ctx, info.To, req, sopts...)
		openCtx = ctx
		return err
	}
	err := chainStream(info, o.streamInterceptors, h)(ctx)
	if err == nil && s == nil {
		err = Errorf(CodeInternal, "rpc: a stream interceptor returned nil without opening the stream to %v", info.To)
	}
	if err != nil {
		if s != nil {
			s.Close(err) // opened, then refused by an interceptor on the way out
		}
		info.ends.run(err)
		return nil, nil, err
	}
	context.AfterFunc(s.Context(), func() { info.ends.run(s.Err()) })
	return openCtx, s, nil
}
