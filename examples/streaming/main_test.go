package main

import (
	"bytes"
	"context"
	"testing"
	"time"
)

func TestOutput(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var out bytes.Buffer
	if err := run(ctx, &out); err != nil {
		t.Fatal(err)
	}
	const want = `== server stream
EURUSD #0 1.0850
EURUSD #1 1.0851
EURUSD #2 1.0852
EURUSD #3 1.0853
== a handler's error
error: no prices for XXXYYY; errors.Is(err, rpc.ErrNotFound) = true
== leaving early
the client leaves after tick #2
the handler's ctx ended: context canceled
== client stream
mean of 4 samples: 2.50
== bidirectional stream
hello -> HELLO
streams -> STREAMS
the chat ended cleanly
`
	if got := out.String(); got != want {
		t.Fatalf("output:\n%s\nwant:\n%s", got, want)
	}
}
