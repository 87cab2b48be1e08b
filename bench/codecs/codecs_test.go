package codecs

import (
	"flag"
	"fmt"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/xbus-dev/xbus/bus"
	"github.com/xbus-dev/xbus/codec"
)

var table = flag.Bool("table", false, "TestTable: print the comparison table (runs each benchmark)")

type candidate struct {
	name  string
	codec bus.Codec
}

func candidates() []candidate {
	return []candidate{
		{"json", bus.JSON},
		{"cbor", NewCBOR()},
		{"msgpack", NewMsgpack()},
		{"codec.Binary", codec.Binary()}, // what xbus ships: must match the cbor row
	}
}

type sample struct {
	name string
	v    any
	new  func() any // a pointer to decode into
}

func samples() []sample {
	s, m, blob := Messages()
	return []sample{
		{"small", s, func() any { return new(Small) }},
		{"medium", m, func() any { return new(Medium) }},
		{"blob4k", blob, func() any { return new([]byte) }},
	}
}

func TestRoundTrip(t *testing.T) {
	for _, c := range candidates() {
		for _, s := range samples() {
			b, err := c.codec.Append([]byte("prefix"), s.v)
			if err != nil {
				t.Fatalf("%s %s: %v", c.name, s.name, err)
			}
			if !strings.HasPrefix(string(b), "prefix") {
				t.Fatalf("%s %s: Append lost dst", c.name, s.name)
			}
			p := s.new()
			if err := c.codec.Decode(b[len("prefix"):], p); err != nil {
				t.Fatalf("%s %s decode: %v", c.name, s.name, err)
			}
			if got := reflect.ValueOf(p).Elem().Interface(); !reflect.DeepEqual(got, s.v) {
				t.Fatalf("%s %s: got %+v, want %+v", c.name, s.name, got, s.v)
			}
		}
	}
}

func benchEncode(b *testing.B, c bus.Codec, v any) {
	buf, err := c.Append(nil, v)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(len(buf)), "bytes")
	b.ReportAllocs()
	for b.Loop() {
		buf, err = c.Append(buf[:0], v)
		if err != nil {
			b.Fatal(err)
		}
	}
}

func benchDecode(b *testing.B, c bus.Codec, s sample) {
	buf, err := c.Append(nil, s.v)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(len(buf)), "bytes")
	b.ReportAllocs()
	for b.Loop() {
		// A fresh value per message, as Types.DecodeBody does.
		if err := c.Decode(buf, s.new()); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncode(b *testing.B) {
	for _, s := range samples() {
		for _, c := range candidates() {
			b.Run(s.name+"/"+c.name, func(b *testing.B) { benchEncode(b, c.codec, s.v) })
		}
	}
}

func BenchmarkDecode(b *testing.B) {
	for _, s := range samples() {
		for _, c := range candidates() {
			b.Run(s.name+"/"+c.name, func(b *testing.B) { benchDecode(b, c.codec, s) })
		}
	}
}

// hostileArray returns, per codec, a short body whose header claims an
// array of n 64-bit integers but holds only one.
func hostileArray(codec string, n uint32) []byte {
	switch codec {
	case "cbor", "codec.Binary":
		return []byte{0x9a, byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n), 0x01} // array(n), 1
	case "msgpack":
		return []byte{0xdd, byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n), 0x01} // array32(n), 1
	}
	return []byte("[1,")
}

// TestHostileAllocation measures what each codec allocates before it notices
// that a short body cannot hold what its header claims. Every codec must
// reject the input; the bytes are logged (go test -v) and recorded in
// DEPENDENCIES.md.
func TestHostileAllocation(t *testing.T) {
	for _, n := range []uint32{100_000, 1_000_000} {
		for _, c := range candidates() {
			data := hostileArray(c.name, n)
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			var v []int64
			err := c.codec.Decode(data, &v)
			runtime.ReadMemStats(&after)
			if err == nil {
				t.Fatalf("%s: decoding %x succeeded", c.name, data)
			}
			t.Logf("%-8s %d-byte body claiming %d elements: %d bytes allocated before the error (%v)",
				c.name, len(data), n, after.TotalAlloc-before.TotalAlloc, err)
		}
	}
}

var rounds = flag.Int("rounds", 5, "TestTable: rounds over all cells; each cell reports its median")

// TestTable prints the comparison as a markdown table, with each binary
// codec's time as a ratio of encoding/json's in the same run. The cells are
// measured in interleaved rounds and each reports its median, so a burst of
// load on a shared machine moves one sample, not a whole row:
//
//	go test -run TestTable -table -v -benchtime 200ms
func TestTable(t *testing.T) {
	if !*table {
		t.Skip("run with -table")
	}
	type cell struct {
		s          sample
		c          candidate
		enc, dec   []float64
		encA, decA int64
	}
	var cells []*cell
	for _, s := range samples() {
		for _, c := range candidates() {
			cells = append(cells, &cell{s: s, c: c})
		}
	}
	for range *rounds {
		for _, x := range cells {
			enc := testing.Benchmark(func(b *testing.B) { benchEncode(b, x.c.codec, x.s.v) })
			dec := testing.Benchmark(func(b *testing.B) { benchDecode(b, x.c.codec, x.s) })
			x.enc = append(x.enc, float64(enc.T.Nanoseconds())/float64(enc.N))
			x.dec = append(x.dec, float64(dec.T.Nanoseconds())/float64(dec.N))
			x.encA, x.decA = enc.AllocsPerOp(), dec.AllocsPerOp()
		}
	}
	median := func(v []float64) float64 { slices.Sort(v); return v[len(v)/2] }
	var sb strings.Builder
	fmt.Fprintf(&sb, "%s/%s, GOMAXPROCS=%d, median of %d rounds\n\n", runtime.GOOS, runtime.GOARCH, runtime.GOMAXPROCS(0), *rounds)
	sb.WriteString("| message | codec | bytes | encode ns/op | allocs | decode ns/op | allocs | encode vs json | decode vs json |\n")
	sb.WriteString("|---|---|---:|---:|---:|---:|---:|---:|---:|\n")
	var jsonEnc, jsonDec float64
	for _, x := range cells {
		size, _ := x.c.codec.Append(nil, x.s.v)
		en, de := median(x.enc), median(x.dec)
		if x.c.name == "json" {
			jsonEnc, jsonDec = en, de
		}
		fmt.Fprintf(&sb, "| %s | %s | %d | %.0f | %d | %.0f | %d | %.2f× | %.2f× |\n",
			x.s.name, x.c.name, len(size), en, x.encA, de, x.decA, en/jsonEnc, de/jsonDec)
	}
	t.Log("\n" + sb.String())
}
