package cbor_test

import (
	"bytes"
	"errors"
	"math"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/xbus-dev/xbus/codec/cbor"
)

type small struct {
	ID     int64
	Qty    int32
	Price  int64
	Side   uint8
	Symbol string
}

type inner struct {
	A int
	B []string
}

// message is representative of what actors send: scalars, a slice, a map,
// bytes, a nested struct by value and by pointer.
type message struct {
	ID      uint64
	Neg     int64
	Name    string
	OK      bool
	Tags    []string
	Points  []int64
	Attrs   map[string]int64
	Blob    []byte
	In      inner
	Ptr     *inner
	Renamed string `json:"r"`
	hidden  int
}

func mustNew(t testing.TB, l cbor.Limits) *cbor.Codec {
	t.Helper()
	c, err := cbor.New(l)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func roundTrip[T any](t *testing.T, c *cbor.Codec, v T) T {
	t.Helper()
	b, err := c.Append([]byte("pre"), v)
	if err != nil {
		t.Fatalf("Append(%T): %v", v, err)
	}
	if string(b[:3]) != "pre" {
		t.Fatalf("Append lost the bytes in dst")
	}
	var got T
	if err := c.Decode(b[3:], &got); err != nil {
		t.Fatalf("Decode(%T): %v", v, err)
	}
	return got
}

func TestRoundTrip(t *testing.T) {
	c := cbor.Default()
	full := message{
		ID: math.MaxUint64, Neg: math.MinInt64, Name: "orders/place", OK: true,
		Tags: []string{"a", "", "ü"}, Points: []int64{-1, 0, 1 << 40},
		Attrs: map[string]int64{"x": 1, "y": -2}, Blob: []byte{0, 1, 0xff},
		In: inner{A: 3, B: []string{"b"}}, Ptr: &inner{A: -4}, Renamed: "r",
	}
	cases := []any{
		small{ID: 1, Qty: 2, Price: 3, Side: 4, Symbol: "EURUSD"},
		full,
		message{},
		&full,
	}
	for _, v := range cases {
		switch v := v.(type) {
		case small:
			if got := roundTrip(t, c, v); got != v {
				t.Fatalf("got %+v, want %+v", got, v)
			}
		case message:
			if got := roundTrip(t, c, v); !reflect.DeepEqual(got, v) {
				t.Fatalf("got %+v, want %+v", got, v)
			}
		case *message:
			if got := roundTrip(t, c, v); !reflect.DeepEqual(got, v) {
				t.Fatalf("got %+v, want %+v", got, v)
			}
		}
	}
	if got := roundTrip(t, c, "text"); got != "text" {
		t.Fatalf("string: %q", got)
	}
	if got := roundTrip(t, c, 3.25); got != 3.25 {
		t.Fatalf("float: %v", got)
	}
	if got := roundTrip(t, c, bytes.Repeat([]byte{7}, 4096)); len(got) != 4096 || got[4095] != 7 {
		t.Fatalf("[]byte: %d bytes", len(got))
	}
}

func TestUnexportedAndRenamedFields(t *testing.T) {
	c := cbor.Default()
	got := roundTrip(t, c, message{Renamed: "x", hidden: 9})
	if got.hidden != 0 || got.Renamed != "x" {
		t.Fatalf("got %+v", got)
	}
	b, _ := c.Append(nil, message{Renamed: "x"})
	var m map[string]any
	if err := c.Decode(b, &m); err != nil {
		t.Fatal(err)
	}
	if _, ok := m["r"]; !ok {
		t.Fatalf("json tag not honoured: keys %v", m)
	}
}

func TestTimeKeepsNanoseconds(t *testing.T) {
	at := time.Date(2031, 5, 6, 7, 8, 9, 123456789, time.FixedZone("x", 3600))
	got := roundTrip(t, cbor.Default(), struct{ At time.Time }{at})
	if !got.At.Equal(at) {
		t.Fatalf("time %v, want %v", got.At, at)
	}
	if _, off := got.At.Zone(); off != 3600 {
		t.Fatalf("zone offset %d, want 3600", off)
	}
}

func TestInvalidUTF8StringsRoundTrip(t *testing.T) {
	s := "\xff\xfe\xc3\x28"
	if got := roundTrip(t, cbor.Default(), struct{ S string }{s}); got.S != s {
		t.Fatalf("got %q, want %q", got.S, s)
	}
}

func TestInterfaceMapsDecodeAsStringKeyed(t *testing.T) {
	got := roundTrip(t, cbor.Default(), struct{ V any }{map[string]any{"a": "b"}})
	m, ok := got.V.(map[string]any)
	if !ok || m["a"] != "b" {
		t.Fatalf("V = %#v, want map[string]any{\"a\": \"b\"}", got.V)
	}
}

func TestDecodeDoesNotAlias(t *testing.T) {
	c := cbor.Default()
	b, _ := c.Append(nil, message{Name: "name", Blob: []byte("blob")})
	var got message
	if err := c.Decode(b, &got); err != nil {
		t.Fatal(err)
	}
	for i := range b {
		b[i] = 0
	}
	if got.Name != "name" || string(got.Blob) != "blob" {
		t.Fatalf("decoded value changed with its input: %+v", got)
	}
}

func TestAppendErrorKeepsDst(t *testing.T) {
	dst := []byte("keep")
	out, err := cbor.Default().Append(dst, make(chan int))
	if err == nil {
		t.Fatal("encoding a channel succeeded")
	}
	if string(out) != "keep" {
		t.Fatalf("Append returned %q on error, want the original dst", out)
	}
}

func TestDecodeRejects(t *testing.T) {
	c := cbor.Default()
	deep := strings.Repeat("\x81", 40) + "\x01" // 40 nested one-element arrays
	cases := []struct {
		name string
		data string
	}{
		{"empty", ""},
		{"truncated map", "\xa2\x62ID\x01"},
		{"truncated text", "\x78\x10abc"},
		{"trailing bytes", "\xa0\x00"},
		{"wrong type", "\x63abc"},
		{"reserved additional info", "\x1c"},
		{"array claims 100000 elements", "\x9a\x00\x01\x86\xa0\x01"},
		{"array claims 2^32-1", "\x9a\xff\xff\xff\xff\x01"},
		{"bytes claim 2^64-1", "\x5b\xff\xff\xff\xff\xff\xff\xff\xff\x01"},
		{"map claims 2^32-1", "\xba\xff\xff\xff\xff\x01\x01"},
		{"too deep", deep},
		{"break outside indefinite", "\xff"},
		{"unterminated indefinite", "\x9f\x01\x02"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var m message
			if err := c.Decode([]byte(tc.data), &m); err == nil {
				t.Fatalf("decoding %x into a struct succeeded", tc.data)
			}
			var v any
			if err := c.Decode([]byte(tc.data), &v); err == nil && tc.name != "wrong type" {
				t.Fatalf("decoding %x into any succeeded", tc.data)
			}
		})
	}
}

func TestLimits(t *testing.T) {
	c := mustNew(t, cbor.Limits{MaxArrayElements: 16, MaxMapPairs: 16, MaxNestedLevels: 4})
	var v []int
	if err := c.Decode([]byte("\x90"+strings.Repeat("\x01", 16)), &v); err != nil || len(v) != 16 {
		t.Fatalf("16 elements: %v, %d", err, len(v))
	}
	if err := c.Decode([]byte("\x91"+strings.Repeat("\x01", 17)), &v); err == nil {
		t.Fatal("17 elements accepted with MaxArrayElements 16")
	}
	var a any
	if err := c.Decode([]byte(strings.Repeat("\x81", 5)+"\x01"), &a); err == nil {
		t.Fatal("5 levels accepted with MaxNestedLevels 4")
	}
	if _, err := cbor.New(cbor.Limits{MaxNestedLevels: -1}); err == nil {
		t.Fatal("New accepted MaxNestedLevels -1")
	}
}

// TestHostileLengthAllocatesLittle: a short body whose header claims a
// huge array must fail before the array is allocated.
func TestHostileLengthAllocatesLittle(t *testing.T) {
	c := cbor.Default()
	data := []byte{0x9a, 0x00, 0x01, 0x86, 0xa0, 0x01} // array(100000), 1
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	var v []int64
	err := c.Decode(data, &v)
	runtime.ReadMemStats(&after)
	if err == nil {
		t.Fatal("decoded a truncated array")
	}
	// 100000 int64s would be 800 KB; a few KB means nothing was sized from
	// the header.
	if n := after.TotalAlloc - before.TotalAlloc; n > 64<<10 {
		t.Fatalf("allocated %d bytes before rejecting a 6-byte body", n)
	}
}

func TestAppendAllocs(t *testing.T) {
	c := cbor.Default()
	var v any = small{ID: 1, Qty: 2, Price: 3, Side: 4, Symbol: "EURUSD"}
	buf := make([]byte, 0, 256)
	allocs := testing.AllocsPerRun(100, func() {
		var err error
		if buf, err = c.Append(buf[:0], v); err != nil {
			t.Fatal(err)
		}
	})
	// v is boxed into an interface once, by the caller, outside the loop;
	// the codec itself must add nothing.
	if allocs != 0 {
		t.Fatalf("Append into a reused buffer: %v allocs, want 0", allocs)
	}
}

func TestConcurrentUse(t *testing.T) {
	c := cbor.Default()
	done := make(chan error)
	for g := range 4 {
		go func() {
			var err error
			buf := []byte(nil)
			for i := range 200 {
				want := small{ID: int64(g*1000 + i), Symbol: "s"}
				buf, err = c.Append(buf[:0], want)
				var got small
				if err == nil {
					err = c.Decode(buf, &got)
				}
				if err == nil && got != want {
					err = errors.New("mismatch under concurrency")
				}
				if err != nil {
					break
				}
			}
			done <- err
		}()
	}
	for range 4 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
}

func FuzzDecode(f *testing.F) {
	c := cbor.Default()
	for _, v := range []any{
		message{},
		message{ID: 1, Name: "n", Tags: []string{"a"}, Points: []int64{1, -1}, Attrs: map[string]int64{"k": 2},
			Blob: []byte{1}, In: inner{A: 1, B: []string{"x"}}, Ptr: &inner{A: 2}, Renamed: "r"},
		small{ID: 1, Symbol: "s"},
		[]any{1, "a", []byte{2}, map[string]any{"b": true}},
	} {
		b, err := c.Append(nil, v)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{0x9a, 0xff, 0xff, 0xff, 0xff, 0x01})
	f.Fuzz(func(t *testing.T, data []byte) {
		var m message
		if err := c.Decode(data, &m); err != nil {
			return
		}
		// Whatever decodes re-encodes, and decodes again to the same value.
		b, err := c.Append(nil, m)
		if err != nil {
			t.Fatalf("re-encoding %+v: %v", m, err)
		}
		var m2 message
		if err := c.Decode(b, &m2); err != nil {
			t.Fatalf("decoding a re-encoding: %v", err)
		}
		if !reflect.DeepEqual(m, m2) {
			t.Fatalf("round trip changed the value:\n%+v\n%+v", m, m2)
		}
	})
}
