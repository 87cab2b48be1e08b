package netbus

import (
	"fmt"

	"github.com/xbus-dev/xbus/bus"
)

// Repeat frames. A stream of tells from one sender to one actor repeats
// one envelope header with a new body each time: the sender writes the
// header once, in a data frame, and each tell after it with that header as
// a repeat frame, which carries only the body. The receiver takes the
// header from the data frame before it on the connection (docs/wire.md,
// section 2.2). A repeat frame counts as a data frame everywhere: read
// counts, acknowledgements, close frames.

// repeatable reports whether env's header may be repeated: a tell or a
// publish without a correlation id, a deadline or headers.
func repeatable(env *bus.Envelope) bool {
	return (env.Kind == bus.KindTell || env.Kind == bus.KindPublish) && env.Corr == 0 && env.Timeout == 0 && env.Headers == nil
}

// sameHeader reports whether env, repeatable, has the header h has.
func sameHeader(h, env *bus.Envelope) bool { return bus.SameHeader(h, env) }

// headerOf returns env's header, without body or message; env is
// repeatable.
func headerOf(env *bus.Envelope) bus.Envelope {
	return bus.Envelope{Kind: env.Kind, From: env.From, To: env.To, Codec: env.Codec, Type: env.Type}
}

// decodeRepeat decodes a repeat frame's payload p into env: the header of
// prev, the previous data frame's envelope (nil if there was none), with
// body p. env may hold an envelope decoded before; when it holds prev's
// header already, only its body is set, saving the copy of a whole
// envelope (write barriers while the collector runs).
func decodeRepeat(env, prev *bus.Envelope, p []byte) error {
	if prev == nil || !repeatable(prev) {
		return fmt.Errorf("%w: repeat frame after no tell or publish to repeat", ErrBadFrame)
	}
	if !repeatable(env) || !sameHeader(prev, env) || env.Msg != nil {
		*env = headerOf(prev)
	}
	env.Body = nil
	if len(p) > 0 {
		env.Body = p
	}
	return nil
}
