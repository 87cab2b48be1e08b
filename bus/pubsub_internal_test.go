package bus

import (
	"context"
	"errors"
	"testing"
)

// TestSubscribeWithEndedContext: a subscription whose ctx has already ended
// ends at once, with the ctx's error, while Subscribe is still setting it up
// (the race detector watches the two).
func TestSubscribeWithEndedContext(t *testing.T) {
	b := newBus(t)
	for range 100 {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		s, err := b.Subscribe(ctx, "x")
		if err != nil {
			t.Fatal(err)
		}
		<-s.done
		if _, open := <-s.Messages(); open || !errors.Is(s.Err(), context.Canceled) {
			t.Fatalf("subscription with an ended ctx: open %v, Err %v", open, s.Err())
		}
	}
}
