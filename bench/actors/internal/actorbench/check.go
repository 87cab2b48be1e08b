package actorbench

import "github.com/xbus-dev/xbus/internal/benchkit"

// rowNames are the rows every runtime's program reports, named as
// `xbus bench inproc` names them.
var rowNames = []string{
	"Tell to a Ref 1→1 (buffered chan → 1 goroutine)",
	"Tell to a Ref 2→1 (2 senders → 1 buffered chan)",
	"Ask round trip p50 (chan ping-pong)",
	"Ask round trip p99 (chan ping-pong)",
	"spawn 10k idle actors, per 1M (goroutines blocked on a chan)",
	"bytes per idle actor (per blocked goroutine)",
}

// TB is what CheckRows needs of a *testing.T (this package does not link
// package testing into the programs).
type TB interface {
	Helper()
	Errorf(format string, args ...any)
	Fatalf(format string, args ...any)
}

// CheckRows fails t unless rows are the quick run's rows, in order, each
// with a positive figure and baseline.
func CheckRows(t TB, rows []benchkit.Row) {
	t.Helper()
	if len(rows) != len(rowNames) {
		t.Fatalf("%d rows, want %d: %+v", len(rows), len(rowNames), rows)
	}
	for i, r := range rows {
		if r.Name != rowNames[i] || r.Xbus <= 0 || r.Baseline <= 0 {
			t.Errorf("row %d: %+v, want %q with a figure and a baseline", i, r, rowNames[i])
		}
	}
}
