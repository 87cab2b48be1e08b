package rpc

import (
	"context"

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

// StreamClientInfo describes the opening a StreamClientInterceptor wraps.
type StreamClientInfo struct {
	To   any    // the name or bus.Ref the stream is opened to
	Kind string // "server stream", "client stream" or "bidirectional stream"
}

// StreamClientInterceptor wraps the opening of a stream on the caller's
// side: it may add metadata to ctx (WithOutgoingMD), refuse by returning
// an error without calling next (nothing is sent; the caller gets the
// error), and must call next to open the stream; next's error is the
// open's. The ctx given to next bounds the whole stream, so it must not be
// cancelled before the stream ends. What the handler ends the stream with
// reaches the caller's Recv, not next.
type StreamClientInterceptor func(ctx context.Context, info StreamClientInfo, next func(ctx context.Context) error) error

// WithStreamClientInterceptors wraps the opening of the stream in ics,
// the first outermost. The unary ClientInterceptors do not wrap streams,
// nor these calls.
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
	if err := chainStream(info, o.streamInterceptors, h)(ctx); err != nil {
		if s != nil {
			s.Close(err) // opened, then refused by an interceptor on the way out
		}
		return nil, nil, err
	}
	if s == nil {
		return nil, nil, Errorf(CodeInternal, "rpc: a stream interceptor returned nil without opening the stream to %v", info.To)
	}
	return openCtx, s, nil
}
