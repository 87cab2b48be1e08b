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

// WithOutgoingMD returns a context whose calls carry md after the metadata
// ctx already carries, as the Header option does for one call.
func WithOutgoingMD(ctx context.Context, md MD) context.Context {
	return bus.WithHeaders(ctx, md...)
}
