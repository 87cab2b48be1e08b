package benchkit

import (
	"fmt"
	"io"
	"math"
	"text/tabwriter"
	"time"
)

// Row is one line of a bench suite: a figure of xbus beside the figure of
// a baseline that does the same work in the same run. Every suite of
// `xbus bench` reports its rows in this one shape.
type Row struct {
	// Name says what is measured, with the baseline in parentheses:
	// "Tell 1→1 (buffered chan → 1 goroutine)".
	Name     string  `json:"row"`
	Unit     Unit    `json:"unit"`
	Xbus     float64 `json:"xbus"`
	Baseline float64 `json:"baseline,omitempty"` // 0: the row has none
	// Target is what the project holds the row to, written against the
	// ratio ("≥ 1.0×", "≤ 3×") or the figure ("< 1 s"); "" for none.
	Target string `json:"target,omitempty"`
	Status string `json:"status,omitempty"` // "ok", "MISS", or "" without a target
}

// Ratio is xbus ÷ baseline, or 0 when the row has no baseline.
func (r Row) Ratio() float64 {
	if r.Baseline == 0 {
		return 0
	}
	return r.Xbus / r.Baseline
}

// Unit is what a row's figures count.
type Unit string

const (
	PerSec  Unit = "/s"      // messages or calls per second
	Nanos   Unit = "ns"      // a time
	Bytes   Unit = "B"       // a size
	Count   Unit = "count"   // allocations and other counts
	Seconds Unit = "s"       // a longer time
	CPU     Unit = "% CPU"   // a share of one CPU
	Other   Unit = "figures" // as Format prints a plain number
)

// Format prints v in unit u for a table: "17.9 M/s", "1.56 µs", "630 B".
func (u Unit) Format(v float64) string {
	switch u {
	case PerSec:
		switch {
		case v >= 1e6:
			return fmt.Sprintf("%.3g M/s", v/1e6)
		case v >= 1e3:
			return fmt.Sprintf("%.3g k/s", v/1e3)
		}
		return fmt.Sprintf("%.3g /s", v)
	case Nanos:
		return time.Duration(math.Round(v)).Round(roundTo(v)).String()
	case Bytes:
		return fmt.Sprintf("%.0f B", v)
	case Seconds:
		return fmt.Sprintf("%.2f s", v)
	case CPU:
		return fmt.Sprintf("%.2f %%", v)
	}
	return fmt.Sprintf("%.4g", v)
}

// roundTo keeps three significant digits of a time of v nanoseconds.
func roundTo(v float64) time.Duration {
	r := time.Duration(1)
	for x := v; x >= 1000; x /= 10 {
		r *= 10
	}
	return r
}

// Verdict is a row's status for whether it met its target.
func Verdict(ok bool) string {
	if ok {
		return "ok"
	}
	return "MISS"
}

// Out receives a suite's rows as they are measured, and says what the
// suite is doing meanwhile.
type Out interface {
	Row(Row)
	Progress(format string, args ...any)
}

// Rows collects rows and drops progress, for tests.
type Rows []Row

func (r *Rows) Row(x Row)               { *r = append(*r, x) }
func (r *Rows) Progress(string, ...any) {}
func (r Rows) Find(name string) (Row, bool) {
	for _, x := range r {
		if x.Name == name {
			return x, true
		}
	}
	return Row{}, false
}

// WriteTable prints rows as an aligned Markdown table, so that the output
// can be pasted into docs/performance.md as it is. who names the runtime
// measured ("xbus"), which heads the figure's column and the ratio's.
func WriteTable(w io.Writer, who string, rows []Row) error {
	tw := tabwriter.NewWriter(w, 0, 0, 1, ' ', tabwriter.Debug)
	fmt.Fprintf(tw, "| row\t %s\t baseline\t %s ÷ baseline\t target\t status\t\n", who, who)
	fmt.Fprintln(tw, "|---\t---\t---\t---\t---\t---\t")
	for _, r := range rows {
		base, ratio := "", ""
		if r.Baseline != 0 {
			base, ratio = r.Unit.Format(r.Baseline), fmt.Sprintf("%.2f×", r.Ratio())
		}
		fmt.Fprintf(tw, "| %s\t %s\t %s\t %s\t %s\t %s\t\n", r.Name, r.Unit.Format(r.Xbus), base, ratio, r.Target, r.Status)
	}
	return tw.Flush()
}

// Abbrev writes a count for a row's name: 1M, 10k, 1500.
func Abbrev(n int) string {
	switch {
	case n%1_000_000 == 0:
		return fmt.Sprintf("%dM", n/1_000_000)
	case n%1_000 == 0:
		return fmt.Sprintf("%dk", n/1_000)
	}
	return fmt.Sprint(n)
}
