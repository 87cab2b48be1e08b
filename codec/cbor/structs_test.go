package cbor

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"reflect"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"
)

// flat has a field of every kind a plan moves.
type flat struct {
	B   bool
	I   int
	I8  int8
	I16 int16
	I32 int32
	I64 int64
	U   uint
	U8  uint8
	U16 uint16
	U32 uint32
	U64 uint64
	F32 float32
	F64 float64
	S   string
	Bs  []byte
}

// tick is the small struct of the shmbus Tell benchmark.
type tick struct {
	Seq    uint64
	Price  float64
	Qty    int64
	Symbol string
	Venue  string
}

type (
	tagged struct {
		A int `cbor:"a"`
	}
	jsonTagged struct {
		A int `json:"a"`
	}
	embedded   struct{ tick }
	unexported struct{ A, b int }
	withTime   struct{ T time.Time }
	named      struct{ D time.Duration }
	nested     struct{ T tick }
	onePointer struct{ P *int }
	marshals   struct{ A int }
	empty      struct{}
)

func (marshals) MarshalBinary() ([]byte, error) { return []byte{1}, nil }

// TestPlanTypes: only flat structs of basic types, untagged, without
// marshaling methods, get a plan; every other type is left to the general
// encoder and decoder.
func TestPlanTypes(t *testing.T) {
	for _, tc := range []struct {
		v    any
		plan bool
	}{
		{flat{}, true}, {tick{}, true},
		{tagged{}, false}, {jsonTagged{}, false}, {embedded{}, false}, {unexported{}, false},
		{withTime{}, false}, {named{}, false}, {nested{}, false}, {onePointer{}, false},
		{marshals{}, false}, {empty{}, false}, {&tick{}, true}, {(*tick)(nil), true}, {&marshals{}, false},
		{&tagged{}, false}, {new(*tick), false}, {0, false}, {"", false},
		{map[string]int{}, false}, {[]int{}, false},
	} {
		rt := reflect.TypeOf(tc.v)
		ps := &Default().plans
		if got := ps.of(rt).fields != nil; got != tc.plan {
			t.Errorf("%v: plan %v, want %v", rt, got, tc.plan)
		}
		if ps.of(rt) != ps.of(rt) {
			t.Errorf("%v: a new plan on each lookup", rt)
		}
	}
}

// flatFrom fills a flat from data, so that a fuzzer reaches every value.
func flatFrom(data []byte) flat {
	var w [8]byte
	next := func() uint64 {
		n := copy(w[:], data)
		data = data[n:]
		clear(w[n:])
		return binary.LittleEndian.Uint64(w[:])
	}
	f := flat{
		B: next()&1 == 1, I: int(next()), I8: int8(next()), I16: int16(next()), I32: int32(next()), I64: int64(next()),
		U: uint(next()), U8: uint8(next()), U16: uint16(next()), U32: uint32(next()), U64: next(),
		F32: math.Float32frombits(uint32(next())), F64: math.Float64frombits(next()),
	}
	n := int(next() % 40)
	f.S = string(bytes.Repeat([]byte{'s'}, n))
	switch m := next() % 3; m {
	case 1:
		f.Bs = []byte{}
	case 2:
		f.Bs = bytes.Repeat([]byte{0xb5}, n*7)
	}
	return f
}

// FuzzStructPlans holds a plan to the general encoder and decoder: a
// value encodes to the same bytes, and any input the plan decodes, the
// general decoder decodes to the same value without error.
func FuzzStructPlans(f *testing.F) {
	c := Default()
	for _, v := range []any{
		flat{}, flatFrom([]byte("some bytes to fill the fields of a flat struct with, and then some more")),
		flat{I: math.MinInt, I8: math.MinInt8, I16: math.MinInt16, I32: math.MinInt32, I64: math.MinInt64, Bs: []byte{}},
		flat{I: math.MaxInt, I8: math.MaxInt8, I16: math.MaxInt16, I32: math.MaxInt32, I64: math.MaxInt64,
			U: math.MaxUint, U8: math.MaxUint8, U16: math.MaxUint16, U32: math.MaxUint32, U64: math.MaxUint64, F64: math.NaN()},
		tick{Seq: 1 << 40, Price: 101.25, Qty: 300, Symbol: "EURUSD", Venue: "XLON"},
		tick{Qty: -24, Price: math.Inf(1)},
	} {
		b, err := c.Append(nil, v)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{0xa2, 0x63, 'Q', 't', 'y', 0x01, 0x63, 'Q', 't', 'y', 0x02})             // a duplicate key
	f.Add([]byte{0xa1, 0x63, 'q', 't', 'y', 0x01})                                        // a key in another case
	f.Add([]byte{0xa1, 0x63, 'Q', 't', 'y', 0x1b, 0, 0, 0, 0, 0, 0, 0, 1})                // a longer head than needed
	f.Add([]byte{0xa1, 0x63, 'S', 'e', 'q', 0x20})                                        // negative into a uint
	f.Add([]byte{0xa1, 0x65, 'P', 'r', 'i', 'c', 'e', 0xf9, 0x3c, 0x00})                  // a half float
	f.Add([]byte{0xa1, 0x62, 'B', 's', 0xf6})                                             // null
	f.Add([]byte{0xa1, 0x62, 'I', '8', 0x18, 0x80})                                       // 128 into an int8
	f.Add([]byte{0xbf, 0x63, 'Q', 't', 'y', 0x01, 0xff})                                  // an indefinite map
	f.Add([]byte{0xa1, 0x63, 'Q', 't', 'y', 0x01, 0x00})                                  // a trailing byte
	f.Add([]byte{0xa1, 0x66, 'S', 'y', 'm', 'b', 'o', 'l', 0x62, 0xff, 0xfe})             // invalid UTF-8
	f.Add([]byte{0xa1, 0x66, 'S', 'y', 'm', 'b', 'o', 'l', 0x42, 'a', 'b'})               // a byte string into a string
	f.Add([]byte{0xa1, 0x66, 'S', 'y', 'm', 'b', 'o', 'l', 0x7b, 0, 0, 0, 1, 0, 0, 0, 0}) // a length past the end
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, rt := range []reflect.Type{reflect.TypeFor[flat](), reflect.TypeFor[tick](), reflect.TypeFor[*tick]()} {
			p := c.plans.of(rt)
			v, ok := p.decode(data)
			want := reflect.New(rt)
			err := c.dm.Unmarshal(data, want.Interface())
			if ok && rt.Kind() == reflect.Pointer {
				if reflect.TypeOf(v) != rt || want.Elem().IsNil() {
					t.Fatalf("%v from %x: plan %#v; the decoder %#v, %v", rt, data, v, want.Elem().Interface(), err)
				}
				v, want = reflect.ValueOf(v).Elem().Interface(), want.Elem()
			}
			if ok && (err != nil || !sameBits(v, want.Elem().Interface())) {
				t.Fatalf("%v from %x: plan %#v; the decoder %#v, %v", rt, data, v, want.Elem().Interface(), err)
			}
			if ok && rt == reflect.TypeFor[flat]() {
				if bs := v.(flat).Bs; len(bs) > 0 && len(data) > 0 && &bs[0] == &data[len(data)-1] {
					t.Fatal("decoded bytes alias the input")
				}
			}
		}
		v := flatFrom(data)
		tk := tick{Seq: v.U64, Price: v.F64, Qty: v.I64, Symbol: v.S, Venue: string(v.Bs)}
		for _, x := range []any{v, tk, &tk, (*tick)(nil)} {
			got, err := c.Append([]byte{0xee}, x)
			if err != nil {
				t.Fatal(err)
			}
			var general bytes.Buffer
			if err := c.em.MarshalToBuffer(x, &general); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got[1:], general.Bytes()) || got[0] != 0xee {
				t.Fatalf("Append(%#v) = %x, the encoder gives %x", x, got[1:], general.Bytes())
			}
			back, ok, err := c.DecodeValue(got[1:], reflect.TypeOf(x))
			if err != nil {
				t.Fatalf("DecodeValue of Append(%#v): %v", x, err)
			}
			if p, isPtr := x.(*tick); isPtr {
				if p == nil {
					continue // null, left to the decoder
				}
				x = *p
				if ok {
					back = *back.(*tick)
				}
			}
			if notFinite(x) {
				continue // shortened by the encoder, left to the decoder; NaN is not equal to itself
			}
			if !ok {
				t.Fatalf("DecodeValue of Append(%#v): no plan", x)
			}
			if !reflect.DeepEqual(back, x) {
				t.Fatalf("round trip of %#v gave %#v", x, back)
			}
		}
	})
}

// sameBits is reflect.DeepEqual for two structs of a plan, but for floats,
// which must have the same bits (a NaN is not equal to itself).
func sameBits(a, b any) bool {
	va, vb := reflect.ValueOf(a), reflect.ValueOf(b)
	if va.Type() != vb.Type() {
		return false
	}
	for i := range va.NumField() {
		fa, fb := va.Field(i), vb.Field(i)
		switch fa.Kind() {
		case reflect.Float32:
			if math.Float32bits(float32(fa.Float())) != math.Float32bits(float32(fb.Float())) {
				return false
			}
		case reflect.Float64:
			if math.Float64bits(fa.Float()) != math.Float64bits(fb.Float()) {
				return false
			}
		default:
			if !reflect.DeepEqual(fa.Interface(), fb.Interface()) {
				return false
			}
		}
	}
	return true
}

// notFinite reports whether a flat or tick holds a NaN or an infinity.
func notFinite(x any) bool {
	bad := func(f float64) bool { return math.IsNaN(f) || math.IsInf(f, 0) }
	switch x := x.(type) {
	case flat:
		return bad(float64(x.F32)) || bad(x.F64)
	case tick:
		return bad(x.Price)
	}
	return false
}

// TestStructPlanAllocs: a planned struct encodes into a buffer with room
// without allocating, and decodes in less than one allocation, its value
// taken from a chunk of several, when its string fields repeat the values
// of the last bodies; a string seen for the first time takes one.
// (AllocsPerRun rounds the average down.)
func TestStructPlanAllocs(t *testing.T) {
	c := Default()
	var v any = tick{Seq: 1 << 40, Price: 101.25, Qty: 300, Symbol: "EURUSD", Venue: "XLON"}
	buf := make([]byte, 0, 256)
	if a := testing.AllocsPerRun(100, func() { buf, _ = c.Append(buf[:0], v) }); a != 0 {
		t.Errorf("Append: %v allocations, want 0", a)
	}
	rt := reflect.TypeFor[tick]()
	if a := testing.AllocsPerRun(100, func() { c.DecodeValue(buf, rt) }); a != 0 {
		t.Errorf("DecodeValue: %v allocations, want less than 1", a)
	}
	bodies := make([][]byte, 101)
	for i := range bodies {
		bodies[i], _ = c.Append(nil, tick{Symbol: "EURUSD", Venue: fmt.Sprintf("V%08d", i)})
	}
	i := 0
	if a := testing.AllocsPerRun(100, func() { c.DecodeValue(bodies[i], rt); i++ }); a != 1 {
		t.Errorf("DecodeValue of a new string: %v allocations, want 1", a)
	}
}

// TestStructPlanStringsStay: strings a plan hands out again are the bytes
// of the body they came in, and a value kept is unchanged by whatever is
// decoded after it, whatever the strings' lengths (some too long to be
// kept, some sharing a slot).
func TestStructPlanStringsStay(t *testing.T) {
	c := Default()
	rt := reflect.TypeFor[tick]()
	var kept []tick
	for i := range 2000 {
		want := tick{Seq: uint64(i), Symbol: strings.Repeat("s", i%40) + strconv.Itoa(i%13), Venue: strconv.Itoa(i % 3)}
		body, err := c.Append(nil, want)
		if err != nil {
			t.Fatal(err)
		}
		v, ok, err := c.DecodeValue(body, rt)
		if !ok || err != nil {
			t.Fatalf("DecodeValue(%#v) = %v, %v", want, ok, err)
		}
		clear(body) // the strings must not alias the body
		if v != want {
			t.Fatalf("DecodeValue gave %#v, want %#v", v, want)
		}
		kept = append(kept, v.(tick))
	}
	for i, v := range kept {
		if want := strings.Repeat("s", i%40) + strconv.Itoa(i%13); v.Symbol != want || v.Venue != strconv.Itoa(i%3) {
			t.Fatalf("value %d kept changed to %#v", i, v)
		}
	}
}

// BenchmarkStructPlan encodes and decodes the small struct of the shmbus
// Tell benchmark by its plan and by the general encoder and decoder.
func BenchmarkStructPlan(b *testing.B) {
	c := Default()
	var v any = tick{Seq: 1 << 40, Price: 101.25, Qty: 300, Symbol: "EURUSD", Venue: "XLON"}
	body, err := c.Append(nil, v)
	if err != nil {
		b.Fatal(err)
	}
	rt := reflect.TypeFor[tick]()
	buf := make([]byte, 0, 256)
	b.Run("encode/plan", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			buf, _ = c.Append(buf[:0], v)
		}
	})
	b.Run("encode/general", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			w := bytes.NewBuffer(buf[:0])
			c.em.MarshalToBuffer(v, w)
		}
	})
	b.Run("decode/plan", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			c.DecodeValue(body, rt)
		}
	})
	b.Run("decode/general", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			c.dm.Unmarshal(body, reflect.New(rt).Interface())
		}
	})
}

// wide has more fields than the smallest limit on a map's pairs.
type wide struct {
	A, B, C, D, E, F, G, H, I, J, K, L, M, N, O, P, Q int
}

// TestStructPlanKeepsLimits: a codec whose limit on a map's pairs is
// below a struct's fields refuses its bodies as the general decoder does,
// plan or not.
func TestStructPlanKeepsLimits(t *testing.T) {
	c, err := New(Limits{MaxMapPairs: 16})
	if err != nil {
		t.Fatal(err)
	}
	body, err := c.Append(nil, wide{Q: 1})
	if err != nil {
		t.Fatal(err)
	}
	rt := reflect.TypeFor[wide]()
	if c.plans.of(rt).fields == nil {
		t.Fatal("wide has no plan")
	}
	if v, ok, err := c.DecodeValue(body, rt); ok || err != nil {
		t.Fatalf("DecodeValue of 17 pairs under a limit of 16 = %v, %v, %v; want it left to the decoder", v, ok, err)
	}
	if err := c.Decode(body, new(wide)); err == nil {
		t.Fatal("the decoder took 17 pairs under a limit of 16")
	}
	if v, ok, err := Default().DecodeValue(body, rt); !ok || err != nil || v != (wide{Q: 1}) {
		t.Fatalf("DecodeValue with the default limits = %v, %v, %v", v, ok, err)
	}
}

// TestStructPlanValuesNeverShared: values decoded at once on several
// goroutines, several to a chunk, are each handed out once: every one
// kept holds what its own body said after all the others were decoded.
func TestStructPlanValuesNeverShared(t *testing.T) {
	c := Default()
	const goroutines, each = 4, 500
	kept := make([][]*tick, goroutines)
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range each {
				body, err := c.Append(nil, tick{Seq: uint64(g*each + i), Qty: int64(g)})
				if err != nil {
					t.Error(err)
					return
				}
				v, ok, err := c.DecodeValue(body, reflect.TypeFor[*tick]())
				if !ok || err != nil {
					t.Errorf("DecodeValue = %v, %v", ok, err)
					return
				}
				kept[g] = append(kept[g], v.(*tick))
			}
		})
	}
	wg.Wait()
	seen := map[*tick]bool{}
	for g, vs := range kept {
		for i, v := range vs {
			if seen[v] {
				t.Fatalf("value %d of goroutine %d handed out twice", i, g)
			}
			seen[v] = true
			if v.Seq != uint64(g*each+i) || v.Qty != int64(g) {
				t.Fatalf("value %d of goroutine %d changed to %+v", i, g, *v)
			}
		}
	}
}

// TestStructPlanChunkKeepsNoLargeBody: a value whose string or []byte
// field is large, or a body the plan gives up on after it filled one, does
// not stay in a chunk of values: once its receiver drops it, the large
// field is collected, however few values are decoded after it.
func TestStructPlanChunkKeepsNoLargeBody(t *testing.T) {
	type payload struct {
		Seq  int
		Data []byte
		Text string
	}
	c := Default()
	rt := reflect.TypeFor[payload]()
	if c.plans.of(rt).vals.arr == nil {
		t.Fatal("payload takes no chunks: the test would test nothing")
	}
	big := bytes.Repeat([]byte("x"), 1<<20)
	good, err := c.Append(nil, payload{Seq: 1, Data: big, Text: string(big)})
	if err != nil {
		t.Fatal(err)
	}
	// The same fields, then an unknown key: the plan gives up after it
	// decoded both.
	bad := append([]byte{0xa4}, good[1:]...)
	bad = append(bad, 0x61, 'Z', 0x01)
	for _, tc := range []struct {
		name string
		body []byte
	}{{"kept", good}, {"given up", bad}} {
		t.Run(tc.name, func(t *testing.T) {
			var freed atomic.Int32
			func() {
				v, ok, err := c.DecodeValue(tc.body, rt)
				if err != nil {
					t.Fatal(err)
				}
				if tc.body[0] == 0xa4 {
					if ok {
						t.Fatal("the plan took a body with an unknown key")
					}
					// What the plan filled is in its chunk's slot, now
					// zeroed; the general decoder's value is its own.
					return
				}
				pl := v.(payload)
				if !bytes.Equal(pl.Data, big) || pl.Text != string(big) {
					t.Fatal("decoded a different payload")
				}
				runtime.AddCleanup(&pl.Data[0], func(*atomic.Int32) { freed.Add(1) }, &freed)
				runtime.AddCleanup(unsafe.StringData(pl.Text), func(*atomic.Int32) { freed.Add(1) }, &freed)
			}()
			if tc.body[0] == 0xa4 {
				p := c.plans.of(rt)
				ch := p.vals.cur.Load()
				for i := range p.vals.n {
					s := (*payload)(unsafe.Add(ch.base, uintptr(i)*p.vals.size))
					if s.Data != nil || s.Text != "" {
						t.Fatalf("slot %d of the chunk still holds %d and %d bytes", i, len(s.Data), len(s.Text))
					}
				}
				return
			}
			for i := 0; freed.Load() < 2 && i < 100; i++ {
				runtime.GC()
				time.Sleep(time.Millisecond) // cleanups run on a goroutine of their own
			}
			if n := freed.Load(); n != 2 {
				t.Fatalf("%d of the 2 large fields collected after the value was dropped", n)
			}
		})
	}
}

// TestStructPlanValuesSurviveHostileNeighbours: while several goroutines
// decode into the same chunks, bodies the plan gives up on half filled
// (an unknown key after the fields, a body cut short) and values large
// enough to leave their chunk are mixed with small ones: every value kept,
// small or large, by value or by pointer, still holds what its own body
// said once all are decoded, and no pointer is handed out twice.
func TestStructPlanValuesSurviveHostileNeighbours(t *testing.T) {
	c := Default()
	const goroutines, each = 4, 600
	type keptTick struct {
		want tick
		got  any
	}
	kept := make([][]keptTick, goroutines)
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range each {
				want := tick{Seq: uint64(g*each + i), Qty: int64(g), Symbol: strconv.Itoa(i % 5), Venue: strconv.Itoa(g)}
				if i%4 == 1 {
					want.Symbol = strings.Repeat(strconv.Itoa(g), internMax+1+i%7)
				}
				body, err := c.Append(nil, want)
				if err != nil {
					t.Error(err)
					return
				}
				rt := reflect.TypeFor[tick]()
				if i%2 == 0 {
					rt = reflect.TypeFor[*tick]()
				}
				switch i % 4 {
				case 2: // every field, then a key the type lacks
					bad := append([]byte{0xa6}, body[1:]...)
					body = append(bad, 0x61, 'Z', 0x01)
				case 3: // cut inside its last string
					body = body[:len(body)-1]
				}
				v, ok, err := c.DecodeValue(body, rt)
				if err != nil {
					t.Errorf("DecodeValue: %v", err)
					return
				}
				if i%4 >= 2 {
					if ok {
						t.Errorf("DecodeValue took a body it should give up on: %#v", v)
						return
					}
					continue
				}
				if !ok {
					t.Errorf("DecodeValue(%#v) gave up", want)
					return
				}
				kept[g] = append(kept[g], keptTick{want, v})
			}
		})
	}
	wg.Wait()
	seen := map[*tick]bool{}
	for g, ks := range kept {
		for _, k := range ks {
			got, ok := k.got.(tick)
			if p, isPtr := k.got.(*tick); isPtr {
				if seen[p] {
					t.Fatalf("goroutine %d: %p handed out twice", g, p)
				}
				seen[p] = true
				got, ok = *p, true
			}
			if !ok || got != k.want {
				t.Fatalf("goroutine %d: value kept changed to %#v, want %#v", g, k.got, k.want)
			}
		}
	}
	if len(seen) == 0 {
		t.Fatal("no value kept by pointer: the test would test nothing")
	}
}
