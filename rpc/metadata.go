package rpc

import (
	"context"

	"github.com/xbus-dev/xbus/bus"
)

// MD is a call's metadata: key/value pairs in the order they were added,
// carried as the envelope's headers (bus.WithHeaders), so a plain actor
// reads them too (bus.Context.Headers). A key may repeat.
type MD []bus.Header

// Get returns the value of the first pair with key k.
func (md MD) Get(k string) (string, bool) {
	for _, h := range md {
		if h.Key == k {
			return h.Value, true
		}
	}
	return "", false
}

type incomingKey struct{}

// IncomingMD returns the metadata of the call a handler's ctx belongs to,
// or nil.
func IncomingMD(ctx context.Context) MD {
	md, _ := ctx.Value(incomingKey{}).(MD)
	return md
}

// SetTrailer adds md to the metadata that travels back to the caller with
// the response (or the error) of the call a handler's ctx belongs to; the
// caller reads it with the Trailer option. It may be called from any
// goroutine until the handler returns. On a ctx that is not a handler's, or
// of a call whose caller reads no trailer in process, it does nothing.
func SetTrailer(ctx context.Context, md MD) {
	cc, _ := ctx.Value(callCtxKey{}).(*callCtx)
	if cc == nil {
		return
	}
	cc.mu.Lock()
	if !cc.returned {
		cc.trailer = append(cc.trailer, md...)
	}
	cc.mu.Unlock()
}

// WithOutgoingMD returns a context whose calls carry md after the metadata
// ctx already carries, as the Header option does for one call.
func WithOutgoingMD(ctx context.Context, md MD) context.Context {
	return bus.WithHeaders(ctx, md...)
}
