package cbor

import (
	"bytes"
	"encoding/binary"
	"math"
	"reflect"
	"sync"
	"unsafe"

	"github.com/fxamacker/cbor/v2"
	"github.com/xbus-dev/xbus/bus"
)

// Limits bound what one decode may build. The zero value of a field means
// its default.
type Limits struct {
	// MaxNestedLevels bounds nesting of arrays, maps and tags; 0 means 32.
	MaxNestedLevels int
	// MaxArrayElements bounds the elements of one array; 0 means 131072.
	MaxArrayElements int
	// MaxMapPairs bounds the pairs of one map; 0 means 131072.
	MaxMapPairs int
}

// Codec encodes and decodes message bodies as CBOR. Its modes are built once
// by New; a Codec is safe for concurrent use.
type Codec struct {
	em    cbor.UserBufferEncMode
	dm    cbor.DecMode
	bufs  sync.Pool // of *bytes.Buffer, borrowed to wrap a caller's dst
	plans plans     // of flat structs (structs.go)
	// maxPairs is the decode limit on a map's pairs: a plan decodes only
	// structs of no more fields.
	maxPairs int
}

var _ bus.Codec = (*Codec)(nil)

// New returns a codec with the given decode limits. The zero Limits gives
// the defaults.
func New(l Limits) (*Codec, error) {
	em, err := cbor.EncOptions{
		Time: cbor.TimeRFC3339Nano,
	}.UserBufferEncMode()
	if err != nil {
		return nil, err
	}
	dm, err := cbor.DecOptions{
		MaxNestedLevels:   l.MaxNestedLevels,
		MaxArrayElements:  l.MaxArrayElements,
		MaxMapPairs:       l.MaxMapPairs,
		DefaultMapType:    reflect.TypeFor[map[string]any](),
		UTF8:              cbor.UTF8DecodeInvalid,
		DupMapKey:         cbor.DupMapKeyQuiet,
		ExtraReturnErrors: cbor.ExtraDecErrorNone,
	}.DecMode()
	if err != nil {
		return nil, err
	}
	c := &Codec{em: em, dm: dm, maxPairs: dm.DecOptions().MaxMapPairs}
	c.bufs.New = func() any { return new(bytes.Buffer) }
	return c, nil
}

var std = sync.OnceValue(func() *Codec {
	c, err := New(Limits{})
	if err != nil {
		panic("cbor: default options rejected: " + err.Error())
	}
	return c
})

// Default returns the shared codec with default limits.
func Default() *Codec { return std() }

// Name returns "cbor".
func (*Codec) Name() string { return "cbor" }

// Append appends the CBOR encoding of v to dst. It allocates nothing of its
// own when dst has room for the encoding. On error it returns dst with its
// original length (bytes past that length may have been overwritten).
func (c *Codec) Append(dst []byte, v any) ([]byte, error) {
	switch x := v.(type) { // the commonest bodies skip reflection, same bytes
	case string:
		return append(appendHead(dst, majorText, uint64(len(x))), x...), nil
	case []byte:
		if x != nil { // nil encodes as null
			return append(appendHead(dst, majorBytes, uint64(len(x))), x...), nil
		}
	default:
		if rt := reflect.TypeOf(v); rt != nil { // a flat struct by its plan (structs.go)
			if p := c.plans.of(rt); p.fields != nil {
				if out, ok := p.append(dst, (*eface)(unsafe.Pointer(&v)).data); ok {
					return out, nil
				}
			}
		}
	}
	b := c.bufs.Get().(*bytes.Buffer)
	*b = *bytes.NewBuffer(dst) // writes go after len(dst)
	err := c.em.MarshalToBuffer(v, b)
	out := b.Bytes()
	*b = bytes.Buffer{} // drop the reference to the caller's memory
	c.bufs.Put(b)
	if err != nil {
		return dst, err
	}
	return out, nil
}

// Decode decodes one CBOR value that fills data exactly into v, a non-nil
// pointer. The result does not alias data.
func (c *Codec) Decode(data []byte, v any) error {
	switch x := v.(type) { // a definite-length string fast; anything else as usual
	case *string:
		if p, ok := definite(data, majorText); ok {
			*x = string(p) // any bytes: invalid UTF-8 is accepted, as by dm
			return nil
		}
	case *[]byte:
		if p, ok := definite(data, majorBytes); ok {
			*x = append([]byte{}, p...)
			return nil
		}
	}
	return c.dm.Unmarshal(data, v)
}

// BytesOf implements bus.BytesDecoder: the content of a definite-length
// byte string that fills data exactly, as a slice of data.
func (c *Codec) BytesOf(data []byte) ([]byte, bool) { return definite(data, majorBytes) }

var (
	_          bus.BytesDecoder = (*Codec)(nil)
	_          bus.ValueDecoder = (*Codec)(nil)
	stringType                  = reflect.TypeFor[string]()
	bytesType                   = reflect.TypeFor[[]byte]()
)

// DecodeValue implements bus.ValueDecoder: a definite-length string or byte
// string decodes straight into the interface, in one allocation for a
// small one (see boxBytes); anything else reports ok false and goes
// through Decode.
func (c *Codec) DecodeValue(data []byte, t reflect.Type) (any, bool, error) {
	switch t {
	case stringType:
		if p, ok := definite(data, majorText); ok {
			return boxString(p), true, nil
		}
	case bytesType:
		if p, ok := definite(data, majorBytes); ok {
			return boxBytes(p), true, nil
		}
	default:
		if p := c.plans.of(t); p.fields != nil && len(p.fields) <= c.maxPairs {
			if v, ok := p.decode(data); ok {
				return v, true, nil
			}
		}
	}
	return nil, false, nil
}

// CBOR major types of the fast paths (RFC 8949, section 3.1).
const (
	majorBytes = 2
	majorText  = 3
)

// appendHead appends the head of a data item of major type m and argument n
// in its shortest form, as the encoder does.
func appendHead(dst []byte, m byte, n uint64) []byte {
	m <<= 5
	switch {
	case n < 24:
		return append(dst, m|byte(n))
	case n <= math.MaxUint8:
		return append(dst, m|24, byte(n))
	case n <= math.MaxUint16:
		return binary.BigEndian.AppendUint16(append(dst, m|25), uint16(n))
	case n <= math.MaxUint32:
		return binary.BigEndian.AppendUint32(append(dst, m|26), uint32(n))
	}
	return binary.BigEndian.AppendUint64(append(dst, m|27), n)
}

// definite returns the content of data when data is exactly one
// definite-length string of major type m.
func definite(data []byte, m byte) ([]byte, bool) {
	s, rest, ok := text(data, m)
	return s, ok && len(rest) == 0
}
