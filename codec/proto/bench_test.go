package proto_test

import (
	"testing"

	"github.com/xbus-dev/xbus/bus"
	"github.com/xbus-dev/xbus/codec"
	"github.com/xbus-dev/xbus/codec/proto"
	"github.com/xbus-dev/xbus/codec/proto/internal/testpb"
	"github.com/xbus-dev/xbus/internal/benchkit"
)

// typical is testpb.Order as a plain Go struct, for the default codec.
type typical struct {
	ID    int64
	Items []string
	Qty   map[string]int32
	Note  string
}

// BenchmarkCodecs measures the proto codec on a typical message against
// the default codec (CBOR) on the same data as a Go struct, in one run:
// encoding into a reused buffer, decoding into a new value as the bus
// does (proto through its ValueDecoder).
func BenchmarkCodecs(b *testing.B) {
	items, qty := []string{"tea", "cake", "scone"}, map[string]int32{"tea": 2, "cake": 1}
	cases := []struct {
		name   string
		c      bus.Codec
		v      any
		decode func(c bus.Codec, body []byte) error
	}{
		{"cbor", codec.Binary(), typical{ID: 7, Items: items, Qty: qty, Note: "by the window"},
			func(c bus.Codec, body []byte) error { return c.Decode(body, new(typical)) }},
		{"proto", proto.Codec, &testpb.Order{Id: 7, Items: items, Qty: qty, Note: "by the window"},
			func(c bus.Codec, body []byte) error {
				_, _, err := c.(bus.ValueDecoder).DecodeValue(body, orderType)
				return err
			}},
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
				if err := tc.decode(tc.c, body); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(benchkit.CPUTime()-cpu)/float64(b.N), "cpu-ns/op")
		})
	}
}
