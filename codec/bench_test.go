package codec_test

import (
	"testing"

	"github.com/xbus-dev/xbus/bus"
	"github.com/xbus-dev/xbus/codec"
	"github.com/xbus-dev/xbus/internal/benchkit"
)

// typical is the message of the codec benchmarks: an id, a few strings, a
// small map, a note (the same shape as codec/proto's Order).
type typical struct {
	ID    int64
	Items []string
	Qty   map[string]int32
	Note  string
}

var typicalMsg = typical{ID: 7, Items: []string{"tea", "cake", "scone"}, Qty: map[string]int32{"tea": 2, "cake": 1}, Note: "by the window"}

// BenchmarkCodecs measures encoding (into a reused buffer) and decoding
// (into a new value, as the bus does) of a typical struct with each
// built-in codec, and raw's of a []byte of the same encoded size as CBOR's.
// docs/performance.md gives the ratios to the default codec.
func BenchmarkCodecs(b *testing.B) {
	var v any = typicalMsg
	cborBody, _ := codec.Binary().Append(nil, v)
	var rawMsg any = append([]byte(nil), cborBody...)
	cases := []struct {
		name string
		c    bus.Codec
		v    any
		new  func() any
	}{
		{"cbor", codec.Binary(), v, func() any { return new(typical) }},
		{"json", codec.JSON, v, func() any { return new(typical) }},
		{"raw", codec.Raw, rawMsg, func() any { return new([]byte) }},
	}
	for _, tc := range cases {
		body, err := tc.c.Append(nil, tc.v)
		if err != nil {
			b.Fatal(err)
		}
		b.Run("encode/"+tc.name, func(b *testing.B) {
			b.ReportAllocs()
			buf := make([]byte, 0, 1024)
			cpu := benchkit.CPUTime()
			for b.Loop() {
				buf, _ = tc.c.Append(buf[:0], tc.v)
			}
			b.ReportMetric(float64(benchkit.CPUTime()-cpu)/float64(b.N), "cpu-ns/op")
			b.ReportMetric(float64(len(body)), "bytes")
		})
		b.Run("decode/"+tc.name, func(b *testing.B) {
			b.ReportAllocs()
			cpu := benchkit.CPUTime()
			for b.Loop() {
				if err := tc.c.Decode(body, tc.new()); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(benchkit.CPUTime()-cpu)/float64(b.N), "cpu-ns/op")
		})
	}
}
