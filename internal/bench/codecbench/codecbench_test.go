package codecbench

import (
	"testing"

	"github.com/xbus-dev/xbus/internal/benchkit"
)

// TestRunBench runs the quick suite and checks its rows: every codec
// measured beside CBOR, JSON's body larger.
func TestRunBench(t *testing.T) {
	var rows benchkit.Rows
	if err := RunBench(&rows, true); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"encode a typical struct, json, CPU (cbor)", "decode a typical struct, raw, CPU (cbor)", "body, json (cbor)"} {
		r, ok := rows.Find(name)
		if !ok || r.Xbus <= 0 || r.Baseline <= 0 {
			t.Fatalf("row %q: %+v, %v", name, r, ok)
		}
	}
	if r, _ := rows.Find("body, json (cbor)"); r.Xbus <= r.Baseline {
		t.Fatalf("JSON's body (%v B) is not larger than CBOR's (%v B)", r.Xbus, r.Baseline)
	}
	if _, ok := rows.Find("encode a typical struct, cbor, allocations"); !ok {
		t.Fatal("no row of CBOR's allocations")
	}
}

// BenchmarkCodecs is RunBench's measure as a Go benchmark, per codec and
// direction.
func BenchmarkCodecs(b *testing.B) {
	for _, c := range Cases() {
		body, _ := c.Codec.Append(nil, c.Msg)
		b.Run("encode/"+c.Name, func(b *testing.B) {
			b.ReportAllocs()
			buf := make([]byte, 0, 2*len(body))
			for b.Loop() {
				buf, _ = c.Codec.Append(buf[:0], c.Msg)
			}
		})
		b.Run("decode/"+c.Name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := c.Codec.Decode(body, c.New()); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
