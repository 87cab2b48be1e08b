package bus

import (
	"sync/atomic"
	"unsafe"
)

// HeaderCache keeps the binary form of the header of the last tell or
// publish a link framed, so that a stream of them with one header (one
// sender to one actor) encodes it once rather than once per message. A
// transport that frames every envelope whole, as shmbus's records do,
// keeps one per link. It is safe for concurrent use, and its zero value is
// ready.
//
// When the header changes the cache keeps the new one only at every
// keepEvery-th change (or when it holds none), so that messages whose
// headers alternate cost an allocation now and then, never one each.
type HeaderCache struct {
	last    atomic.Pointer[cachedHeader]
	changes atomic.Uint32
}

// keepEvery is how many header changes the cache lets pass before it keeps
// the new header.
const keepEvery = 16

type cachedHeader struct {
	env Envelope // the header's fields: Kind, From, To, Codec, Type
	b   []byte   // their binary form; never changed once kept
}

// Header returns env's binary form without its body, as AppendBinary
// writes it for env with a nil Body: the kept bytes when env is a tell or a
// publish whose header the cache holds (the caller must not change them),
// else env's header appended to dst. It fails as AppendBinary does.
func (c *HeaderCache) Header(env *Envelope, dst []byte) ([]byte, error) {
	if !repeatable(env) {
		return env.appendHeader(dst)
	}
	h := c.last.Load()
	if h != nil && SameHeader(&h.env, env) {
		return h.b, nil
	}
	out, err := env.appendHeader(dst)
	if err == nil && (h == nil || c.changes.Add(1)%keepEvery == 0) {
		kept := &cachedHeader{b: append([]byte(nil), out[len(dst):]...)}
		kept.env.Kind, kept.env.Codec, kept.env.Type = env.Kind, env.Codec, env.Type
		setRef(&kept.env.From, &env.From)
		setRef(&kept.env.To, &env.To)
		c.last.Store(kept)
	}
	return out, err
}

// repeatable reports whether env's header may be kept for the messages
// after it: a tell or a publish without a correlation id, a deadline or
// headers, whose header is then its kind, addresses, codec and type.
func repeatable(env *Envelope) bool {
	return (env.Kind == KindTell || env.Kind == KindPublish) && env.Corr == 0 && env.Timeout == 0 && env.Headers == nil
}

// SameHeader reports whether env has the header h has: kind, addresses,
// codec and type, the whole header of a tell or publish without a
// correlation id, deadline or headers. It compares where strings lie
// before their bytes: a stream of tells most often carries the very same
// strings (a name its sender passes each time, a registered type name, a
// name the decoder keeps).
func SameHeader(h, env *Envelope) bool {
	return env.Kind == h.Kind && sameRef(&env.To, &h.To) && sameRef(&env.From, &h.From) && sameString(env.Type, h.Type) && sameString(env.Codec, h.Codec)
}

func sameRef(a, b *Ref) bool {
	return a.ID == b.ID && a.Node == b.Node && sameString(a.Name, b.Name)
}

// sameString is a == b, comparing where they lie first.
func sameString(a, b string) bool {
	return len(a) == len(b) && (unsafe.StringData(a) == unsafe.StringData(b) || a == b)
}
