package bus

import (
	"context"
	"fmt"
	"maps"
	"reflect"
	"sync"
	"sync/atomic"
)

// MaxCodecLen is the longest codec name: it travels in an envelope that
// names its codec, and in transports' handshakes.
const MaxCodecLen = 32

// WithCodec returns a context whose Ask, or Tell and Send to another node,
// encodes its message with c instead of the link's codec; the envelope names
// c, so the receiver decodes with the codec of that name and encodes its
// reply with it too. In process nothing is encoded and c is not used. The
// sending bus learns c (RegisterCodec), so a reply in it decodes.
func WithCodec(ctx context.Context, c Codec) context.Context {
	if c == nil {
		return ctx
	}
	return withOptions(ctx, func(o *callOptions) { o.codec = c })
}

// WithCodecs makes the bus know cs besides its links' codecs, bus.JSON and
// bus.Raw,
// so that a message or a reply encoded with one of them decodes here. A
// codec the bus sends with (WithCodec) or replies with (WithReplyCodec) it
// learns by itself.
func WithCodecs(cs ...Codec) Option {
	return func(c *config) { c.codecs = append(c.codecs, cs...) }
}

// WithReplyCodec encodes the actor's replies to asks from other nodes
// with c, whatever codec the ask came in; without it a reply goes in the
// codec of its ask. The bus learns c (RegisterCodec).
func WithReplyCodec(c Codec) ActorOption {
	return func(ac *actorConfig) { ac.replyCodec = c }
}

// RegisterCodec makes the bus know c by its name, so that an envelope
// naming that codec decodes here. A bus knows bus.JSON, bus.Raw and each
// link's own codec from the start; netbus and shmbus give it the other
// built-in codecs and their configured one as they start. Registering a codec again is a no-op; another
// codec under a name already taken is an error, as are a nil codec and a
// name of 0 or more than MaxCodecLen bytes.
func (b *Bus) RegisterCodec(c Codec) error { return b.codecs.register(c) }

// Codec returns the codec the bus knows under name (RegisterCodec), or nil.
// A link's own codec is known on that link even when it is not here.
func (b *Bus) Codec(name string) Codec { return (*b.codecs.m.Load())[name] }

// codecSet maps codec names to codecs. Lookups read an immutable snapshot
// without locking; register copies it under mu.
type codecSet struct {
	mu sync.Mutex
	m  atomic.Pointer[map[string]Codec]
}

func newCodecSet() *codecSet {
	s := &codecSet{}
	m := map[string]Codec{JSON.Name(): JSON, Raw.Name(): Raw}
	s.m.Store(&m)
	return s
}

func (s *codecSet) register(c Codec) error {
	if c == nil {
		return fmt.Errorf("%w: nil codec", ErrUnsupported)
	}
	name := c.Name()
	if name == "" || len(name) > MaxCodecLen {
		return fmt.Errorf("%w: codec name %q must be 1..%d bytes", ErrInvalidName, name, MaxCodecLen)
	}
	if old, ok := (*s.m.Load())[name]; ok {
		return sameCodec(old, c, name)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	m := *s.m.Load()
	if old, ok := m[name]; ok {
		return sameCodec(old, c, name)
	}
	next := maps.Clone(m)
	next[name] = c
	s.m.Store(&next)
	return nil
}

// sameCodec reports an error unless old and c are the same codec: of one
// type, and equal when that type is comparable.
func sameCodec(old, c Codec, name string) error {
	ot, ct := reflect.TypeOf(old), reflect.TypeOf(c)
	if ot == ct && (!ct.Comparable() || old == c) {
		return nil
	}
	return fmt.Errorf("bus: codec name %q already names a %v, not a %v", name, ot, ct)
}

// learn registers c if its name is free, quietly: a codec used to send is
// one its replies come back in.
func (s *codecSet) learn(c Codec) {
	if c == nil {
		return
	}
	if _, ok := (*s.m.Load())[c.Name()]; !ok {
		_ = s.register(c)
	}
}

// codecFor returns the codec an envelope that arrived on l is encoded with:
// l's own when it names none or names l's, else the one registered under
// its name, or an error wrapping ErrUnknownCodec.
func (b *Bus) codecFor(l Link, name string) (Codec, error) {
	lc := l.Codec()
	if name == "" || name == lc.Name() {
		return lc, nil
	}
	if c := (*b.codecs.m.Load())[name]; c != nil {
		return c, nil
	}
	return nil, fmt.Errorf("%w: %q is not known on node %s: give it to the bus there (bus.WithCodecs, or rpc.WithServerCodec on the handler)",
		ErrUnknownCodec, name, b.id.Short())
}

// decodeBody sets env.Msg from its body, decoded with the codec env names
// (codecFor); every path that takes envelopes from a link decodes here.
func (b *Bus) decodeBody(l Link, env *Envelope) error {
	c, err := b.codecFor(l, env.Codec)
	if err != nil {
		return err
	}
	return b.types.DecodeBody(c, env)
}

// encodeFor encodes env's body for l with c, or with l's codec when c is
// nil, and names c in env.Codec when it is not l's codec (an error body
// is the bus's own, whatever the codec: it names none).
func (b *Bus) encodeFor(l Link, c Codec, env *Envelope, dst []byte) ([]byte, error) {
	env.Codec = ""
	lc := l.Codec()
	if c == nil {
		c = lc
	} else if name := c.Name(); name != lc.Name() && env.Kind != KindError && env.Kind != KindStreamEnd {
		env.Codec = name
	}
	return b.types.EncodeBody(c, env, dst)
}
