package bus_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/xbus-dev/xbus/bus"
)

// seen is what an actor observed of an ask: Cancelable and
// WantsReplyHeaders.
type seen struct{ Cancelable, Wants bool }

// TestAfterCancel: a hook an actor adds runs once its asker gives up, in
// process and across a link; one added after the asker gave up runs at
// once; a stopped one never runs; Cancelable and WantsReplyHeaders say
// what the asker can do.
func TestAfterCancel(t *testing.T) {
	server, client := linkedPair(t)
	for _, b := range []*bus.Bus{server, client} {
		if err := bus.RegisterType[seen](b.Types(), "test.seen"); err != nil {
			t.Fatal(err)
		}
	}
	fired := make(chan string, 4)
	started := make(chan struct{}, 4)
	stopped := make(chan bool, 4)
	if _, err := server.Register("cancel", bus.ActorFunc(func(c *bus.Context, msg any) error {
		switch msg {
		case "hook": // a hook, then wait for it
			done := make(chan struct{})
			c.AfterCancel(func() { fired <- "hook"; close(done) })
			started <- struct{}{}
			<-done
		case "late": // wait until the asker gave up, then add the hook
			started <- struct{}{}
			for !c.Canceled() {
				time.Sleep(time.Millisecond)
			}
			done := make(chan struct{})
			c.AfterCancel(func() { fired <- "late"; close(done) })
			<-done
		case "stopped": // a hook stopped before the asker gives up
			stop := c.AfterCancel(func() { fired <- "stopped" })
			stopped <- stop()
			started <- struct{}{}
			for !c.Canceled() {
				time.Sleep(time.Millisecond)
			}
		case "seen":
			return c.Reply(seen{c.Cancelable(), c.WantsReplyHeaders()})
		}
		return nil
	})); err != nil {
		t.Fatal(err)
	}
	waitFor(t, client, "cancel")
	for _, tc := range []struct {
		name  string
		asker *bus.Bus
	}{{"in process", server}, {"across a link", client}} {
		t.Run(tc.name, func(t *testing.T) {
			for _, what := range []string{"hook", "late", "stopped"} {
				ctx, cancel := context.WithCancel(context.Background())
				errc := make(chan error, 1)
				go func() { _, err := tc.asker.Ask(ctx, "cancel", what); errc <- err }()
				<-started
				cancel()
				if err := <-errc; !errors.Is(err, bus.ErrCanceled) {
					t.Fatalf("%s: the asker got %v", what, err)
				}
				if what == "stopped" {
					if !<-stopped {
						t.Fatal("stop reported the hook had run")
					}
					continue
				}
				select {
				case got := <-fired:
					if got != what {
						t.Fatalf("%s: %s fired", what, got)
					}
				case <-time.After(20 * time.Second):
					t.Fatalf("%s: the hook never ran", what)
				}
			}
			bg := context.Background()
			var hs []bus.Header
			cancelable, cancel := context.WithCancel(bg)
			defer cancel()
			for _, c := range []struct {
				ctx  context.Context
				want seen
			}{
				{bg, seen{tc.asker != server, tc.asker != server}},
				{cancelable, seen{true, tc.asker != server}},
				{bus.WithReplyHeaders(bg, &hs), seen{tc.asker != server, true}},
			} {
				got, err := bus.AskAs[seen](c.ctx, tc.asker, "cancel", "seen")
				if err != nil || got != c.want {
					t.Fatalf("got %+v, %v; want %+v", got, err, c.want)
				}
			}
			if len(fired) != 0 {
				t.Fatalf("a stopped hook ran: %s", <-fired)
			}
		})
	}
}

// TestPromiseReplyHeaders: headers set before Promise travel with the
// promise's reply, given from another goroutine, in process and across a
// link; a plain reply's headers reach WithReplyHeaders.
func TestPromiseReplyHeaders(t *testing.T) {
	server, client := linkedPair(t)
	if _, err := server.Register("promise", bus.ActorFunc(func(c *bus.Context, msg any) error {
		s, ok := msg.(string)
		if !ok {
			return nil
		}
		c.SetReplyHeaders(bus.Header{Key: "who", Value: s})
		if s == "now" {
			return c.Reply(s)
		}
		p := c.Promise()
		go p.Reply(s)
		return nil
	})); err != nil {
		t.Fatal(err)
	}
	waitFor(t, client, "promise")
	for _, asker := range []*bus.Bus{server, client} {
		for _, s := range []string{"now", "later"} {
			var hs []bus.Header
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			r, err := asker.Ask(bus.WithReplyHeaders(ctx, &hs), "promise", s)
			cancel()
			if err != nil || r != s || !slices.Equal(hs, []bus.Header{{Key: "who", Value: s}}) {
				t.Fatalf("%s: got %v, %v, headers %v", s, r, err, hs)
			}
		}
	}
}
