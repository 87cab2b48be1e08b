package bus_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/xbus-dev/xbus/bus"
	"github.com/xbus-dev/xbus/mailbox"
)

// An ask that an actor answers with the refusal of an ask of its own ran:
// only the bus's own refusal proves that an ask never did, so the ask by
// name is not placed again on another instance, in process as across a
// link (rpc's TestFailModes).
func TestActorsRefusalNotTakenForNeverRan(t *testing.T) {
	b := linkedBus(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	// A real refusal: a full FailFast mailbox.
	hold := make(chan struct{})
	defer close(hold)
	busy := make(chan struct{}, 1)
	full, err := b.Register("full", bus.ActorFunc(func(c *bus.Context, msg any) error {
		if _, ok := msg.(int); ok {
			select {
			case busy <- struct{}{}:
			default:
			}
			<-hold
		}
		return nil
	}), bus.WithMailbox(mailbox.Options{Capacity: 2, Policy: mailbox.FailFast}))
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Tell(full, 1); err != nil {
		t.Fatal(err)
	}
	<-busy
	for i := 0; b.Tell(full, i) == nil; i++ { // fill the mailbox
	}
	_, refusal := b.Ask(ctx, full, 3)
	if !errors.Is(refusal, bus.ErrMailboxFull) || !bus.NeverDelivered(refusal) {
		t.Fatalf("an ask to a full mailbox: %v (never delivered %v)", refusal, bus.NeverDelivered(refusal))
	}

	var calls atomic.Int32
	for range 2 {
		if _, err := b.Register("svc", bus.ActorFunc(func(c *bus.Context, msg any) error {
			if _, ok := msg.(string); !ok {
				return nil // Started
			}
			calls.Add(1)
			if msg == "promise" {
				c.Promise().Fail(refusal)
			} else {
				c.ReplyError(refusal) // passed on as it came
			}
			return nil
		})); err != nil {
			t.Fatal(err)
		}
	}
	for i, msg := range []string{"reply", "promise"} {
		_, err := b.Ask(ctx, "svc", msg)
		if !errors.Is(err, bus.ErrMailboxFull) || bus.NeverDelivered(err) || calls.Load() != int32(i+1) {
			t.Fatalf("%s: %v (never delivered %v), %d calls; want the actor's error after one call", msg, err, bus.NeverDelivered(err), calls.Load())
		}
	}
}
