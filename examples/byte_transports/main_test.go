package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestEveryTransportAnswersAlike(t *testing.T) {
	var out bytes.Buffer
	if err := run(&out); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 4 {
		t.Fatalf("want a line per transport, got:\n%s", out.String())
	}
	for i, name := range []string{"in-process", "shared mem", "unix socket", "tcp"} {
		if !strings.HasPrefix(lines[i], name) || !strings.Contains(lines[i], `"hello, world"`) {
			t.Fatalf("line %d: %q", i, lines[i])
		}
	}
}
