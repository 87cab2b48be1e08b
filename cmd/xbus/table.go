package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// Row is one line of the bench table.
type Row struct {
	Name     string // what is measured, with its baseline: "Tell 1→1, msgs/s (buffered chan)"
	Xbus     string // xbus's figure
	Baseline string // the same-run baseline's figure
	Ratio    string // xbus / baseline
	Target   string // the project's target, or ""
	Verdict  string // "ok", "MISS" or ""
}

// write puts r on w as one tab-separated line, as table.Write takes it.
func (r Row) write(w io.Writer) error {
	_, err := fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", r.Name, r.Xbus, r.Baseline, r.Ratio, r.Target, r.Verdict)
	return err
}

// table aligns tab-separated rows into a Markdown table, so the output can
// be pasted into docs/performance.md as it is.
type table struct {
	tw *tabwriter.Writer
}

func newTable(w io.Writer) *table {
	t := &table{tw: tabwriter.NewWriter(w, 0, 0, 1, ' ', tabwriter.Debug)}
	fmt.Fprintln(t.tw, "| row\t xbus\t baseline\t ratio\t target\t \t")
	fmt.Fprintln(t.tw, "|---\t---\t---\t---\t---\t---\t")
	return t
}

// Write takes whole lines of tab-separated fields.
func (t *table) Write(p []byte) (int, error) {
	for line := range strings.SplitSeq(strings.TrimRight(string(p), "\n"), "\n") {
		fields := strings.Split(line, "\t")
		for i := range fields {
			fields[i] = " " + fields[i]
		}
		if _, err := fmt.Fprintf(t.tw, "|%s\t\n", strings.Join(fields, "\t")); err != nil {
			return 0, err
		}
	}
	return len(p), nil
}

func (t *table) flush() { t.tw.Flush() }
