package bus

import (
	"encoding/json"
	"fmt"
	"maps"
	"reflect"
	"sync"
	"sync/atomic"
	"unsafe"
)

// Codec turns a Go value into body bytes and back. It is used only when a
// message leaves the process; in-process delivery never encodes.
//
// A link has a codec of its own (Link.Codec); a message may be sent in
// another (WithCodec), and then carries its name, so the receiving bus
// decodes it with its codec of that name (RegisterCodec). A codec is used
// from many goroutines at once, and must treat what it decodes as hostile:
// an error, never a panic, and nothing allocated beyond what the input's
// length justifies. docs/codecs.md shows how to write one.
type Codec interface {
	// Name identifies the codec on the wire and in link handshakes
	// ("cbor", "json"): 1 to MaxCodecLen bytes, the same on every node.
	Name() string
	// Append appends the encoding of v to dst. v is the message itself,
	// not a pointer to it.
	Append(dst []byte, v any) ([]byte, error)
	// Decode decodes data into v, a non-nil pointer to a new zero value of
	// the message's type. The result must not alias data, which the
	// transport reuses.
	Decode(data []byte, v any) error
}

// ValueDecoder is an optional fast path of a Codec. DecodeValue decodes data
// as a value of type t and returns it in an interface, or reports ok false
// when it has no fast path for t; the bus then decodes into a new *t with
// Decode. A codec implements it for the commonest bodies (codec/cbor: string
// and []byte), saving the reflected allocation of the pointer and the copy
// into the interface.
type ValueDecoder interface {
	DecodeValue(data []byte, t reflect.Type) (v any, ok bool, err error)
}

// TypeChecker is an optional interface of a Codec that encodes types by
// rules of its own: codec/proto encodes generated protobuf messages, whose
// unexported fields are the library's and need not cross. CheckType
// reports why values of t would not cross a process boundary with this
// codec, or nil. Types.RegisterFor asks it in place of the bus's own check.
type TypeChecker interface {
	CheckType(t reflect.Type) error
}

// JSON is a Codec using encoding/json. It is slower and larger than a binary
// codec but readable, and needs nothing outside the standard library.
var JSON Codec = jsonCodec{}

type jsonCodec struct{}

func (jsonCodec) Name() string { return "json" }
func (jsonCodec) Append(dst []byte, v any) ([]byte, error) {
	b, err := json.Marshal(v)
	return append(dst, b...), err
}
func (jsonCodec) Decode(data []byte, v any) error { return json.Unmarshal(data, v) }

// Raw is a codec for bodies that are already bytes: it encodes a []byte,
// *[]byte, string or *string by appending it as it is, and decodes into a
// *[]byte or *string. Any other type is an error wrapping ErrUnsupported.
//
// Encoding is a single copy into dst, with no framing. Decoding into a
// *[]byte reuses the capacity the slice already has, so a caller that
// decodes into the same slice again allocates nothing; the result never
// aliases data, which the transport may reuse.
var Raw Codec = rawCodec{}

type rawCodec struct{}

func (rawCodec) Name() string { return "raw" }

func (rawCodec) Append(dst []byte, v any) ([]byte, error) {
	switch v := v.(type) {
	case []byte:
		return append(dst, v...), nil
	case string:
		return append(dst, v...), nil
	case *[]byte:
		if v != nil {
			return append(dst, *v...), nil
		}
	case *string:
		if v != nil {
			return append(dst, *v...), nil
		}
	}
	return dst, fmt.Errorf("%w: raw codec cannot encode %T", ErrUnsupported, v)
}

func (rawCodec) Decode(data []byte, v any) error {
	switch v := v.(type) {
	case *[]byte:
		if v != nil {
			if len(data) == 0 && *v == nil {
				return nil // nothing encoded a nil slice; keep it nil
			}
			*v = append((*v)[:0], data...)
			return nil
		}
	case *string:
		if v != nil {
			*v = string(data)
			return nil
		}
	}
	return fmt.Errorf("%w: raw codec cannot decode into %T", ErrUnsupported, v)
}

// BytesOf implements BytesDecoder: a raw []byte body is its encoding. An
// empty one reports ok false, as Decode keeps it nil.
func (rawCodec) BytesOf(data []byte) ([]byte, bool) { return data, len(data) > 0 }

// Types maps message type names to Go types, so that a receiving node decodes
// a body into the Go type it was sent as. A type's name is what it was
// registered under, or else its Go name as reflect prints it ("orders.Add",
// "*orders.Add"); a *T whose T is registered is named "*" and T's name.
// Register types that cross process boundaries on the receiving side;
// naming them explicitly keeps two binaries in agreement. Types also names
// application errors (RegisterError), so that they keep their identity
// across processes.
//
// Types is safe for concurrent use. Lookups read an immutable snapshot
// without locking (every message sent or received across a process boundary
// does two); Register copies it.
type Types struct {
	mu   sync.Mutex // serializes Register and RegisterError
	maps atomic.Pointer[typeMaps]
	errs atomic.Pointer[errorMaps] // nil until an error is registered

	recentNames typeCache // recent lookups by name (typecache.go)
	recentTypes typeCache // recent lookups by Go type
}

type typeMaps struct {
	byName map[string]reflect.Type
	byType map[reflect.Type]string
}

// NewTypes returns a registry that knows the basic Go types (string, []byte,
// bool, the sized integers and floats).
func NewTypes() *Types {
	t := &Types{}
	t.maps.Store(&typeMaps{byName: map[string]reflect.Type{}, byType: map[reflect.Type]string{}})
	for _, v := range []any{"", []byte(nil), false, 0, int8(0), int16(0), int32(0), int64(0),
		uint(0), uint8(0), uint16(0), uint32(0), uint64(0), float32(0), float64(0), map[string]any(nil), []any(nil)} {
		t.mustRegister(reflect.TypeOf(v).String(), reflect.TypeOf(v))
	}
	return t
}

func (t *Types) mustRegister(name string, rt reflect.Type) {
	if err := t.register(name, rt); err != nil {
		panic(err)
	}
}

// Register records sample's dynamic type under name; an empty name means the
// Go name. Registering the same type under the same name again is a no-op; a
// name already taken by another type, or a type already named otherwise, is
// an error.
//
// A type whose values would not cross a process boundary as they are is
// refused, with an error naming the field: an unexported field (a codec
// drops it without a word, so it would arrive as its zero value) and a
// channel, func, unsafe pointer or complex field (no codec encodes them).
// A type that encodes itself (MarshalJSON, MarshalBinary, MarshalCBOR, as
// time.Time does) is accepted as it is, and a field tagged json:"-" or
// cbor:"-" is left out on purpose.
//
// Registering T also lets a *T be sent: it travels as "*" and T's name
// and arrives as a *T, as it would in process (register *T itself to give
// it a name of its own).
func (t *Types) Register(name string, sample any) error {
	rt := reflect.TypeOf(sample)
	if rt == nil {
		return fmt.Errorf("%w: cannot register the nil type", ErrUnknownType)
	}
	if name == "" {
		name = rt.String()
	}
	if err := checkEncodable(rt); err != nil {
		return err
	}
	return t.register(name, rt)
}

// RegisterFor records sample's dynamic type under name as Register does,
// but checked by c's rules when c is a TypeChecker, for a type that only c
// encodes (a protobuf message with codec/proto).
func (t *Types) RegisterFor(c Codec, name string, sample any) error {
	rt := reflect.TypeOf(sample)
	tc, ok := c.(TypeChecker)
	if !ok || rt == nil {
		return t.Register(name, sample)
	}
	if name == "" {
		name = rt.String()
	}
	if err := tc.CheckType(rt); err != nil {
		return err
	}
	return t.register(name, rt)
}

// RegisterType records T under name (its Go name when name is empty), as
// Types.Register does.
func RegisterType[T any](t *Types, name string) error {
	rt := reflect.TypeFor[T]()
	if name == "" {
		name = rt.String()
	}
	if err := checkEncodable(rt); err != nil {
		return err
	}
	return t.register(name, rt)
}

func (t *Types) register(name string, rt reflect.Type) error {
	if name == "" || len(name) > MaxTypeLen {
		return fmt.Errorf("%w: type name %q must be 1..%d bytes", ErrInvalidName, name, MaxTypeLen)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	m := t.maps.Load()
	if old, ok := m.byName[name]; ok {
		if old == rt {
			return nil
		}
		return fmt.Errorf("bus: type name %q already names %v, not %v", name, old, rt)
	}
	if old, ok := m.byType[rt]; ok {
		return fmt.Errorf("bus: type %v already registered as %q", rt, old)
	}
	next := &typeMaps{byName: maps.Clone(m.byName), byType: maps.Clone(m.byType)}
	next.byName[name] = rt
	next.byType[rt] = name
	t.maps.Store(next)
	t.recentNames.clear()
	t.recentTypes.clear()
	return nil
}

// NameOf returns the wire name of v's dynamic type.
func (t *Types) NameOf(v any) string {
	rt := reflect.TypeOf(v)
	if rt == nil {
		return ""
	}
	return t.cachedNameOf(rt)
}

// nameOf is NameOf of a value of type rt, not nil, in m, without the
// cache.
func (m *typeMaps) nameOf(rt reflect.Type) string {
	if name, ok := m.byType[rt]; ok {
		return name
	}
	if rt.Kind() == reflect.Pointer {
		// A *T whose T is registered: "*" and T's name (see Register).
		if name, ok := m.byType[rt.Elem()]; ok && len(name) < MaxTypeLen {
			return "*" + name
		}
	}
	return rt.String()
}

// Known reports whether rt is registered, under whatever name.
func (t *Types) Known(rt reflect.Type) bool {
	_, ok := t.maps.Load().byType[rt]
	return ok
}

// New returns a pointer to a new zero value of the type registered as name.
func (t *Types) New(name string) (reflect.Value, error) {
	rt, err := t.typeOf(name)
	if err != nil {
		return reflect.Value{}, err
	}
	return reflect.New(rt), nil
}

// typeOf returns the type registered as name.
func (t *Types) typeOf(name string) (reflect.Type, error) { return t.maps.Load().typeOf(name) }

func (m *typeMaps) typeOf(name string) (reflect.Type, error) {
	if rt, ok := m.byName[name]; ok {
		return rt, nil
	}
	if len(name) > 1 && name[0] == '*' {
		if rt, ok := m.byName[name[1:]]; ok {
			return reflect.PointerTo(rt), nil
		}
	}
	return nil, fmt.Errorf("%w: %q is not registered", ErrUnknownType, name)
}

// EncodeBody encodes env.Msg with c, appending the bytes to dst, and sets
// env.Type. An error envelope's Msg (an error) is encoded by the bus itself as
// its Code and text, with the name of its registered application error (see
// RegisterError) as env.Type, so errors keep their identity whatever the
// codec. A nil
// Msg encodes as no body.
func (t *Types) EncodeBody(c Codec, env *Envelope, dst []byte) ([]byte, error) {
	if env.Kind == KindError || ((env.Kind == KindStreamEnd || env.Kind == KindCancel) && env.Msg != nil) {
		return t.appendErrorBody(env, env.Msg, dst), nil
	}
	if env.Msg == nil {
		env.Type = ""
		return dst, nil
	}
	env.Type = t.NameOf(env.Msg)
	out, err := c.Append(dst, env.Msg)
	if err != nil {
		if why := checkEncodable(reflect.TypeOf(env.Msg)); why != nil {
			err = fmt.Errorf("%w (%w)", why, err) // names the field
		}
		return dst, fmt.Errorf("bus: encoding %s with %s: %w", env.Type, c.Name(), err)
	}
	return out, nil
}

// DecodeBody sets env.Msg from env.Type and env.Body, the reverse of
// EncodeBody. The decoded value does not alias env.Body.
func (t *Types) DecodeBody(c Codec, env *Envelope) error {
	if env.Kind == KindError || ((env.Kind == KindStreamEnd || env.Kind == KindCancel) && len(env.Body) > 0) {
		return t.decodeErrorBody(env)
	}
	if env.Type == "" {
		if len(env.Body) > 0 {
			return fmt.Errorf("%w: body without a type", ErrBadEnvelope)
		}
		env.Msg = nil
		return nil
	}
	rt, err := t.cachedTypeOf(env.Type)
	if err != nil {
		return err
	}
	if vd, ok := c.(ValueDecoder); ok {
		v, ok, err := vd.DecodeValue(env.Body, rt)
		if err != nil {
			return fmt.Errorf("%w: decoding %s with %s: %v", ErrBadEnvelope, env.Type, c.Name(), err)
		}
		if ok {
			env.Msg = v
			return nil
		}
	}
	p := reflect.New(rt)
	if err := c.Decode(env.Body, p.Interface()); err != nil {
		return fmt.Errorf("%w: decoding %s with %s: %v", ErrBadEnvelope, env.Type, c.Name(), err)
	}
	env.Msg = elemInterface(p)
	return nil
}

// elemInterface returns the value p points to as an interface. A value an
// interface holds indirectly (a struct, a string, an array...) is not
// copied: the interface points at p's memory, which p's codec filled and
// nothing else refers to, so a body costs the allocation of its value and
// not a second one for the interface. A value an interface holds in its
// data word (a pointer, a map, a struct of one pointer) and one larger
// than the runtime's zero-value area take the usual copy.
func elemInterface(p reflect.Value) any {
	rt := p.Type().Elem()
	if rt.Size() > 1024 {
		return p.Elem().Interface()
	}
	// The zero value's interface is built without allocating (the runtime
	// points it at its zero-value area); its data word is nil exactly when
	// the type is held in the word itself.
	z := reflect.Zero(rt).Interface()
	ze := (*eface)(unsafe.Pointer(&z))
	if ze.data == nil {
		return p.Elem().Interface()
	}
	return *(*any)(unsafe.Pointer(&eface{typ: ze.typ, data: p.UnsafePointer()}))
}

// eface is the layout of an interface value of a type without methods.
type eface struct {
	typ  unsafe.Pointer
	data unsafe.Pointer
}
