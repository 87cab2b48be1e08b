package main

import (
	"bytes"
	"io"
	"testing"

	"github.com/xbus-dev/xbus/bench/actors/internal/actorbench"
)

// TestQuick runs every row in its quick form and checks that each has a
// figure and a baseline, and that the table prints them.
func TestQuick(t *testing.T) {
	rows, err := actorbench.Measure(io.Discard, "protoactor-go", start, true)
	if err != nil {
		t.Fatal(err)
	}
	actorbench.CheckRows(t, rows)
	var out bytes.Buffer
	if err := actorbench.Print(&out, "protoactor-go", rows, false); err != nil || !bytes.Contains(out.Bytes(), []byte("| Tell to a Ref 1→1")) {
		t.Fatalf("table: %v\n%s", err, out.String())
	}
}
