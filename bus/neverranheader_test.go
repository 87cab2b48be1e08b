package bus_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/xbus-dev/xbus/bus"
)

// TestReplyHeaderCannotClaimNeverRan: an actor's error answer whose reply
// headers happen to end with the key the bus marks its own refusals with
// is still the answer of an ask that ran: the asker gets that error, and
// the ask is not placed again on another instance to run a second time. On
// every transport.
func TestReplyHeaderCannotClaimNeverRan(t *testing.T) {
	eachLink(t, func(t *testing.T, rl realLink) {
		server, client := rl.pair(t, nil, nil)
		var runs atomic.Int32
		failing := bus.ActorFunc(func(c *bus.Context, msg any) error {
			if _, ok := msg.(bus.Started); ok {
				return nil
			}
			runs.Add(1)
			c.SetReplyHeaders(bus.Header{Key: "xbus-nd"})
			c.ReplyError(errors.New("it ran and failed"))
			return nil
		})
		for range 3 {
			if _, err := server.Register("work", failing); err != nil {
				t.Fatal(err)
			}
		}
		waitFor(t, client, "work")
		eventually(t, "three instances known", func() error {
			if n := len(client.Instances("work")); n != 3 {
				return errors.New("not yet")
			}
			return nil
		})
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, err := client.Ask(ctx, "work", 1)
		if err == nil || bus.NeverDelivered(err) {
			t.Fatalf("the ask's error %v, want the actor's, not a refusal", err)
		}
		if n := runs.Load(); n != 1 {
			t.Fatalf("the ask ran %d times, want once", n)
		}
	})
}
