package bus_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/xbus-dev/xbus/bus"
)

// An ask an actor takes up after a stop was asked for counts as canceled
// (Context.Canceled) and its AfterCancel hooks run, whether it came from
// the actor's own bus or from a peer: a stop looks for the ask the actor
// runs once, and one the actor published just after that look would
// otherwise keep its handler waiting on AfterCancel until the shutdown
// timeout abandons it.
func TestAskTakenUpAfterStopCountsAsCanceled(t *testing.T) {
	server, client := memPair(t)
	ref, err := server.Register("halted", bus.ActorFunc(func(c *bus.Context, msg any) error {
		if !c.IsAsk() {
			return nil
		}
		canceled := c.Canceled()
		fired := make(chan struct{})
		c.AfterCancel(func() { close(fired) })
		hook := false
		select {
		case <-fired:
			hook = true
		case <-time.After(10 * time.Second): // a bound on a hang, not a timing
		}
		return c.Reply(fmt.Sprintf("canceled=%v hook=%v", canceled, hook))
	}))
	if err != nil {
		t.Fatal(err)
	}
	waitForBench(t, client, "halted")
	bus.Halt(server, ref)
	const want = "canceled=true hook=true"
	for _, c := range []struct {
		from string
		b    *bus.Bus
	}{{"its own bus", server}, {"a peer", client}} {
		r, err := c.b.Ask(context.Background(), "halted", "work")
		if err != nil || r != want {
			t.Errorf("ask from %s: %v, %v; want %q", c.from, r, err, want)
		}
	}
}
