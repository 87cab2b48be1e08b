package cbor

import (
	"bytes"
	"reflect"
	"sync"

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
	em   cbor.UserBufferEncMode
	dm   cbor.DecMode
	bufs sync.Pool // of *bytes.Buffer, borrowed to wrap a caller's dst
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
	return &Codec{em: em, dm: dm, bufs: sync.Pool{New: func() any { return new(bytes.Buffer) }}}, nil
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
func (c *Codec) Decode(data []byte, v any) error { return c.dm.Unmarshal(data, v) }
