package codec_test

import (
	"errors"
	"fmt"
	"reflect"
	"testing"

	"github.com/xbus-dev/xbus/bus"
	"github.com/xbus-dev/xbus/codec"
)

type order struct {
	ID    int64
	Items []string
	Qty   map[string]int
}

func TestBinaryIsCBOR(t *testing.T) {
	if n := codec.Binary().Name(); n != "cbor" {
		t.Fatalf("Binary().Name() = %q, want cbor", n)
	}
	if codec.Binary() != codec.Binary() {
		t.Fatal("Binary() builds a new codec per call; its modes must be cached")
	}
}

func TestByName(t *testing.T) {
	for _, name := range []string{"cbor", "json", "raw"} {
		c, ok := codec.ByName(name)
		if !ok || c.Name() != name {
			t.Fatalf("ByName(%q) = %v, %v", name, c, ok)
		}
	}
	if _, ok := codec.ByName("gob"); ok {
		t.Fatal(`ByName("gob") found a codec`)
	}
}

// TestAgree: the link's codec is the acceptor's when the dialer has it,
// else the dialer's when the acceptor has it, else none; and both ends,
// each from its own side, compute the same.
func TestAgree(t *testing.T) {
	for _, tc := range []struct {
		dialer, acceptor string
		want             string // "" when they cannot agree
	}{
		{"cbor", "cbor", "cbor"},
		{"gob", "gob", "gob"},
		{"cbor", "json", "json"},
		{"json", "cbor", "cbor"},
		{"raw", "json", "json"},
		{"gob", "json", "json"},
		{"json", "gob", "json"},
		{"gob", "msgpack", ""},
	} {
		d, dok := codec.Agree(tc.dialer, tc.acceptor, true)
		a, aok := codec.Agree(tc.acceptor, tc.dialer, false)
		if d != a || dok != aok {
			t.Fatalf("dialer %s, acceptor %s: the dialer agrees on %q (%v), the acceptor on %q (%v)", tc.dialer, tc.acceptor, d, dok, a, aok)
		}
		if d != tc.want || dok != (tc.want != "") {
			t.Fatalf("dialer %s, acceptor %s: agreed on %q (%v), want %q", tc.dialer, tc.acceptor, d, dok, tc.want)
		}
	}
}

// TestTypesWithEachCodec sends values through the bus's type registry with
// every structured codec, the way a transport does.
func TestTypesWithEachCodec(t *testing.T) {
	types := bus.NewTypes()
	if err := types.Register("test.order", order{}); err != nil {
		t.Fatal(err)
	}
	if err := bus.RegisterType[*order](types, "test.*order"); err != nil {
		t.Fatal(err)
	}
	msgs := []any{
		order{ID: 7, Items: []string{"a", "b"}, Qty: map[string]int{"a": 1}},
		&order{ID: 8},
		"hello", int64(-3), uint16(9), true, 2.5, []byte("raw"),
	}
	for _, c := range []bus.Codec{codec.Binary(), codec.JSON} {
		for _, m := range msgs {
			env := bus.Envelope{Kind: bus.KindTell, Msg: m}
			body, err := types.EncodeBody(c, &env, []byte("hdr"))
			if err != nil {
				t.Fatalf("%s: EncodeBody(%T): %v", c.Name(), m, err)
			}
			got := bus.Envelope{Kind: bus.KindTell, Type: env.Type, Body: body[3:]}
			if err := types.DecodeBody(c, &got); err != nil {
				t.Fatalf("%s: DecodeBody(%s): %v", c.Name(), env.Type, err)
			}
			if !reflect.DeepEqual(got.Msg, m) {
				t.Fatalf("%s: %s decoded as %#v, want %#v", c.Name(), env.Type, got.Msg, m)
			}
		}
	}
}

func TestRaw(t *testing.T) {
	b := []byte("bytes")
	s := "string"
	for _, tc := range []struct {
		v    any
		want string
	}{{b, ">bytes"}, {s, ">string"}, {&b, ">bytes"}, {&s, ">string"}, {[]byte(nil), ">"}} {
		out, err := codec.Raw.Append([]byte(">"), tc.v)
		if err != nil || string(out) != tc.want {
			t.Fatalf("Append(%T) = %q, %v; want %q", tc.v, out, err, tc.want)
		}
	}
	for _, v := range []any{42, struct{}{}, (*[]byte)(nil), (*string)(nil), nil} {
		if _, err := codec.Raw.Append(nil, v); !errors.Is(err, bus.ErrUnsupported) {
			t.Fatalf("Append(%T) error %v, want ErrUnsupported", v, err)
		}
	}

	data := []byte("payload")
	var got []byte
	if err := codec.Raw.Decode(data, &got); err != nil || string(got) != "payload" {
		t.Fatalf("Decode = %q, %v", got, err)
	}
	data[0] = 'X'
	if string(got) != "payload" {
		t.Fatal("decoded bytes alias the input")
	}
	var str string
	if err := codec.Raw.Decode(data, &str); err != nil || str != "Xayload" {
		t.Fatalf("Decode into string = %q, %v", str, err)
	}
	var empty []byte
	if err := codec.Raw.Decode(nil, &empty); err != nil || empty != nil {
		t.Fatalf("Decode(nil) = %v, %v; want a nil slice", empty, err)
	}
	var n int
	if err := codec.Raw.Decode(data, &n); !errors.Is(err, bus.ErrUnsupported) {
		t.Fatalf("Decode into *int: %v, want ErrUnsupported", err)
	}
	if err := codec.Raw.Decode(data, (*[]byte)(nil)); !errors.Is(err, bus.ErrUnsupported) {
		t.Fatalf("Decode into nil *[]byte: %v, want ErrUnsupported", err)
	}
}

func TestRawThroughTypes(t *testing.T) {
	types := bus.NewTypes()
	env := bus.Envelope{Kind: bus.KindTell, Msg: []byte{1, 2, 3}}
	body, err := types.EncodeBody(codec.Raw, &env, nil)
	if err != nil {
		t.Fatal(err)
	}
	if string(body) != "\x01\x02\x03" {
		t.Fatalf("raw body %x, want the bytes themselves", body)
	}
	got := bus.Envelope{Kind: bus.KindTell, Type: env.Type, Body: body}
	if err := types.DecodeBody(codec.Raw, &got); err != nil {
		t.Fatal(err)
	}
	if b, ok := got.Msg.([]byte); !ok || string(b) != "\x01\x02\x03" {
		t.Fatalf("Msg = %#v", got.Msg)
	}
}

func TestRawAllocs(t *testing.T) {
	var src any = make([]byte, 4096)
	data := make([]byte, 4096)
	buf := make([]byte, 0, 8192)
	dst := make([]byte, 0, 4096)
	allocs := testing.AllocsPerRun(100, func() {
		buf, _ = codec.Raw.Append(buf[:0], src)
		_ = codec.Raw.Decode(data, &dst)
	})
	if allocs != 0 {
		t.Fatalf("Raw Append and Decode into reused buffers: %v allocs, want 0", allocs)
	}
}

func BenchmarkBinary(b *testing.B) {
	var v any = order{ID: 7, Items: []string{"a", "b"}, Qty: map[string]int{"a": 1}}
	for _, c := range []bus.Codec{codec.JSON, codec.Binary()} {
		b.Run(c.Name(), func(b *testing.B) {
			b.ReportAllocs()
			var buf []byte
			for b.Loop() {
				buf, _ = c.Append(buf[:0], v)
				var o order
				if err := c.Decode(buf, &o); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func Example() {
	types := bus.NewTypes()
	if err := types.Register("shop.order", order{}); err != nil {
		panic(err)
	}
	// Sending side: the transport encodes the body once.
	out := bus.Envelope{Kind: bus.KindTell, Msg: order{ID: 1, Items: []string{"tea"}}}
	body, err := types.EncodeBody(codec.Binary(), &out, nil)
	if err != nil {
		panic(err)
	}
	// Receiving side: Type names the Go type to decode into.
	in := bus.Envelope{Kind: bus.KindTell, Type: out.Type, Body: body}
	if err := types.DecodeBody(codec.Binary(), &in); err != nil {
		panic(err)
	}
	fmt.Printf("%s %d bytes: %+v\n", in.Type, len(body), in.Msg)
	// Output: shop.order 21 bytes: {ID:1 Items:[tea] Qty:map[]}
}
