// Package codecbench measures what each body codec costs to encode and
// decode a typical message, beside the default codec (CBOR) in the same
// rounds, for `xbus bench codec` and `go test -bench . ./internal/bench/codecbench`.
// Protobuf is measured in codec/proto, a module of its own
// (docs/performance.md, "Codecs").
package codecbench

import (
	"fmt"
	"runtime"
	"slices"
	"time"

	"github.com/xbus-dev/xbus/bus"
	"github.com/xbus-dev/xbus/codec"
	"github.com/xbus-dev/xbus/internal/benchkit"
)

// Typical is the measured message: an id, a few strings in a slice, a small
// map and a note.
type Typical struct {
	ID    int64
	Items []string
	Qty   map[string]int32
	Note  string
}

var typical = Typical{ID: 7, Items: []string{"tea", "cake", "scone"}, Qty: map[string]int32{"tea": 2, "cake": 1}, Note: "by the window"}

// Case is one codec on one message.
type Case struct {
	Name  string
	Codec bus.Codec
	Msg   any
	New   func() any // a new value to decode into, as the bus makes one per body
}

// Cases are the codecs of the main module, CBOR first: raw carries a
// []byte of CBOR's encoded size.
func Cases() []Case {
	body, _ := codec.Binary().Append(nil, typical)
	return []Case{
		{"cbor", codec.Binary(), typical, func() any { return new(Typical) }},
		{"json", codec.JSON, typical, func() any { return new(Typical) }},
		{"raw", codec.Raw, body, func() any { return new([]byte) }},
	}
}

// Figures are one case's medians over the rounds.
type Figures struct {
	EncodeCPU, DecodeCPU       time.Duration // per operation
	EncodeAllocs, DecodeAllocs float64       // per operation
	Size                       int           // bytes of the body
}

// RunBench measures every case in rounds, each round running every case
// once, and reports each codec's CPU per operation against CBOR's (the
// median of the per-round figures), its allocations and its body's size.
// quick runs 2 rounds of 20,000 operations instead of 8 of 200,000.
func RunBench(out benchkit.Out, quick bool) error {
	rounds, n := 8, 200_000
	if quick {
		rounds, n = 2, 20_000
	}
	figs, err := Measure(rounds, n, func(r int) { out.Progress("round %d of %d, %d operations per codec and direction", r+1, rounds, n) })
	if err != nil {
		return err
	}
	cb := figs["cbor"]
	ns := func(d time.Duration) float64 { return float64(max(d, 1)) }
	for _, c := range Cases()[1:] {
		f := figs[c.Name]
		out.Row(benchkit.Row{Name: fmt.Sprintf("encode a typical struct, %s, CPU (cbor)", c.Name), Unit: benchkit.Nanos,
			Xbus: ns(f.EncodeCPU), Baseline: ns(cb.EncodeCPU)})
		out.Row(benchkit.Row{Name: fmt.Sprintf("decode a typical struct, %s, CPU (cbor)", c.Name), Unit: benchkit.Nanos,
			Xbus: ns(f.DecodeCPU), Baseline: ns(cb.DecodeCPU)})
		out.Row(benchkit.Row{Name: fmt.Sprintf("decode, %s, allocations (cbor)", c.Name), Unit: benchkit.Count,
			Xbus: f.DecodeAllocs, Baseline: cb.DecodeAllocs})
		out.Row(benchkit.Row{Name: fmt.Sprintf("body, %s (cbor)", c.Name), Unit: benchkit.Bytes,
			Xbus: float64(f.Size), Baseline: float64(cb.Size)})
	}
	out.Row(benchkit.Row{Name: "encode a typical struct, cbor, allocations", Unit: benchkit.Count, Xbus: cb.EncodeAllocs})
	return nil
}

// Measure runs rounds of n encodes and n decodes per case and returns each
// case's medians; progress is called before each round.
func Measure(rounds, n int, progress func(round int)) (map[string]Figures, error) {
	cases := Cases()
	enc := make(map[string][]time.Duration)
	dec := make(map[string][]time.Duration)
	figs := make(map[string]Figures)
	for r := range rounds {
		progress(r)
		for _, c := range cases {
			body, err := c.Codec.Append(nil, c.Msg)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", c.Name, err)
			}
			buf := make([]byte, 0, 2*len(body))
			e, ea := measure(n, func() { buf, _ = c.Codec.Append(buf[:0], c.Msg) })
			var derr error
			d, da := measure(n, func() {
				if err := c.Codec.Decode(body, c.New()); err != nil {
					derr = err
				}
			})
			if derr != nil {
				return nil, fmt.Errorf("%s: %w", c.Name, derr)
			}
			enc[c.Name], dec[c.Name] = append(enc[c.Name], e), append(dec[c.Name], d)
			figs[c.Name] = Figures{EncodeAllocs: ea, DecodeAllocs: da, Size: len(body)}
		}
	}
	for name, f := range figs {
		f.EncodeCPU, f.DecodeCPU = median(enc[name]), median(dec[name])
		figs[name] = f
	}
	return figs, nil
}

// measure runs op n times and returns the CPU time and the allocations per
// run.
func measure(n int, op func()) (time.Duration, float64) {
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	t0 := benchkit.CPUTime()
	for range n {
		op()
	}
	t := benchkit.CPUTime() - t0
	runtime.ReadMemStats(&m1)
	// Whole allocations, as testing.AllocsPerRun counts them: a stray one
	// of the runtime's in the window is not the codec's.
	return t / time.Duration(n), float64((m1.Mallocs - m0.Mallocs) / uint64(n))
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}
