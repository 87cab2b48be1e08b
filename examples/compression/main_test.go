package main

import (
	"bytes"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/xbus-dev/xbus/netbus"
)

// TestCompressionShrinksTheWire: every message arrives with each setting,
// and each algorithm sends the same records in fewer bytes; Zstd in fewer
// than S2.
func TestCompressionShrinksTheWire(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	rs, err := measureAll(log)
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 3 || rs[0].Compression != netbus.NoCompression {
		t.Fatalf("results %v", rs)
	}
	// Uncompressed, the wire carries at least the records' text.
	if rs[0].Wire < batches*perBatch*150 {
		t.Fatalf("uncompressed: %d bytes for %d records", rs[0].Wire, batches*perBatch)
	}
	s2, zstd := Ratio(rs[0], rs[1]), Ratio(rs[0], rs[2])
	if s2 < 1.5 || zstd < 1.5 || zstd <= s2 {
		t.Fatalf("ratios: s2 %.2f, zstd %.2f; want both above 1.5 and zstd above s2", s2, zstd)
	}

	var out bytes.Buffer
	if err := run(&out, log); err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{"none", "s2", "zstd", "ratio 1.0"} {
		if !strings.Contains(out.String(), w) {
			t.Fatalf("output lacks %q:\n%s", w, out.String())
		}
	}
}
