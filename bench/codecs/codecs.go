// Package codecs measures candidate binary codecs for xbus message bodies:
// CBOR (fxamacker/cbor/v2) against MessagePack (vmihailenco/msgpack/v5), with
// encoding/json as the same-run baseline. It is a separate module so that the
// main module does not carry the library that lost.
//
// Each candidate is used the way a careful caller would use it: modes and
// encoders are built once and reused, encoding appends into a reused buffer,
// and decoding reads straight from the byte slice.
package codecs

import (
	"bytes"
	"sync"

	"github.com/fxamacker/cbor/v2"
	"github.com/vmihailenco/msgpack/v5"
	"github.com/xbus-dev/xbus/bus"
)

// Small is a typical small message: a few integers and a short string.
type Small struct {
	ID     int64
	Qty    int32
	Price  int64
	Side   uint8
	Symbol string
}

// Medium is a typical medium message: a slice and a map among scalars.
type Medium struct {
	ID     uint64
	Name   string
	OK     bool
	Tags   []string
	Points []int64
	Attrs  map[string]string
}

// Messages returns the sample values, by name.
func Messages() (Small, Medium, []byte) {
	s := Small{ID: 12345, Qty: 100, Price: 1_234_567, Side: 1, Symbol: "EURUSD"}
	m := Medium{
		ID: 987654321, Name: "orders-svc/place", OK: true,
		Tags:   []string{"eu", "fx", "spot", "priority"},
		Points: []int64{1, 2, 3, 5, 8, 13, 21, 34, 55, 89, 144, 233, 377, 610, 987, 1597},
		Attrs:  map[string]string{"region": "eu-west", "tenant": "acme", "trace": "4bf92f3577b34da6", "user": "u-1842"},
	}
	blob := make([]byte, 4096)
	for i := range blob {
		blob[i] = byte(i * 7)
	}
	return s, m, blob
}

// CBOR is fxamacker/cbor with cached modes and a pooled bytes.Buffer that
// wraps the caller's dst, so encoding appends in place.
type CBOR struct {
	em  cbor.UserBufferEncMode
	dm  cbor.DecMode
	buf sync.Pool
}

// NewCBOR builds the modes once.
func NewCBOR() *CBOR {
	em, err := cbor.EncOptions{Time: cbor.TimeRFC3339Nano}.UserBufferEncMode()
	if err != nil {
		panic(err)
	}
	dm, err := cbor.DecOptions{}.DecMode()
	if err != nil {
		panic(err)
	}
	return &CBOR{em: em, dm: dm, buf: sync.Pool{New: func() any { return new(bytes.Buffer) }}}
}

func (*CBOR) Name() string { return "cbor" }

func (c *CBOR) Append(dst []byte, v any) ([]byte, error) {
	b := c.buf.Get().(*bytes.Buffer)
	*b = *bytes.NewBuffer(dst)
	err := c.em.MarshalToBuffer(v, b)
	out := b.Bytes()
	*b = bytes.Buffer{}
	c.buf.Put(b)
	if err != nil {
		return dst, err
	}
	return out, nil
}

func (c *CBOR) Decode(data []byte, v any) error { return c.dm.Unmarshal(data, v) }

// Msgpack is vmihailenco/msgpack/v5 with pooled encoders and decoders bound
// to an appending writer and a bytes.Reader, compact integers on.
type Msgpack struct {
	enc sync.Pool
	dec sync.Pool
}

type appendWriter struct{ b []byte }

func (w *appendWriter) Write(p []byte) (int, error) { w.b = append(w.b, p...); return len(p), nil }
func (w *appendWriter) WriteByte(c byte) error      { w.b = append(w.b, c); return nil }

type mpEnc struct {
	w   appendWriter
	enc *msgpack.Encoder
}

type mpDec struct {
	r   bytes.Reader
	dec *msgpack.Decoder
}

// NewMsgpack sets up the pools.
func NewMsgpack() *Msgpack {
	m := &Msgpack{}
	m.enc.New = func() any {
		e := &mpEnc{}
		e.enc = msgpack.NewEncoder(&e.w)
		e.enc.UseCompactInts(true)
		return e
	}
	m.dec.New = func() any {
		d := &mpDec{}
		d.dec = msgpack.NewDecoder(&d.r)
		return d
	}
	return m
}

func (*Msgpack) Name() string { return "msgpack" }

func (m *Msgpack) Append(dst []byte, v any) ([]byte, error) {
	e := m.enc.Get().(*mpEnc)
	e.w.b = dst
	err := e.enc.Encode(v)
	out := e.w.b
	e.w.b = nil
	m.enc.Put(e)
	if err != nil {
		return dst, err
	}
	return out, nil
}

func (m *Msgpack) Decode(data []byte, v any) error {
	d := m.dec.Get().(*mpDec)
	d.r.Reset(data)
	err := d.dec.Decode(v)
	d.r.Reset(nil)
	m.dec.Put(d)
	return err
}

var (
	_ bus.Codec = (*CBOR)(nil)
	_ bus.Codec = (*Msgpack)(nil)
)
