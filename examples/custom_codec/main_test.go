package main

import (
	"bytes"
	"io"
	"log/slog"
	"testing"
)

func TestRun(t *testing.T) {
	var out bytes.Buffer
	if err := run(&out, slog.New(slog.NewTextHandler(io.Discard, nil)), t.TempDir()); err != nil {
		t.Fatal(err)
	}
	want := `forecast for Lyon: [18.5 19.5 20.5]
bodies encoded with gob: 2, decoded: 2 (the call and its answer, once each way)
forecast for Oslo in the default codec: [18.5]
a call in a codec the service's node lacks: unknown codec true, code 18
dead letters there: 1
next ask on the same link: still linked <nil>
`
	if out.String() != want {
		t.Fatalf("output:\n%s\nwant:\n%s", out.String(), want)
	}
}
