package bus_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/xbus-dev/xbus/bus"
)

// TestUndecodablePublishGivesItsCreditBack: publishes whose bodies the
// subscriber's node cannot decode are dead letters there, and the credit
// they took comes back to the publisher: publishes after them, more than a
// window of them, reach the subscriber in order, on every transport; the
// subscription counts the undecodable ones as dropped.
// Before, each took a credit that was never granted again, and a window's
// worth of them shut the subscription for good.
func TestUndecodablePublishGivesItsCreditBack(t *testing.T) {
	eachLink(t, func(t *testing.T, rl realLink) {
		ct := bus.NewTypes()
		if err := bus.RegisterType[secret](ct, "test.secret"); err != nil {
			t.Fatal(err)
		}
		server, client := rl.pair(t, nil, []bus.Option{bus.WithTypes(ct)})
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		const window = 2
		sub, err := server.Subscribe(ctx, "t.>", bus.WithWindow(window))
		if err != nil {
			t.Fatal(err)
		}
		eventually(t, "the subscription known", func() error {
			if n, _ := bus.RemoteSubs(client); n < 1 {
				return errors.New("not yet")
			}
			return nil
		})
		const bad = 4 * window
		for i := range bad {
			if err := client.PublishContext(ctx, "t.x", secret{"x"}); err != nil {
				t.Fatalf("undecodable publish %d: %v", i, err)
			}
		}
		for i := range 2 * window {
			pctx, pcancel := context.WithTimeout(ctx, 10*time.Second)
			err := client.PublishContext(pctx, "t.x", i)
			pcancel()
			if err != nil {
				t.Fatalf("publish %d after %d undecodable ones: %v", i, bad, err)
			}
			m, err := sub.Next(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if got, ok := m.Msg.(int64); !ok || got != int64(i) {
				if got, ok := m.Msg.(int); !ok || got != i {
					t.Fatalf("message %d is %#v", i, m.Msg)
				}
			}
		}
		if n := server.DeadLetterCount(bus.ErrUnknownType); n != bad {
			t.Fatalf("%d dead letters of unknown types on the subscriber's node, want %d", n, bad)
		}
		if n := sub.Dropped(); n != bad {
			t.Fatalf("the subscription counts %d dropped, want the %d undecodable", n, bad)
		}
	})
}
