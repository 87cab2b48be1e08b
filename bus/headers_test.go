package bus_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/xbus-dev/xbus/bus"
)

// headerEcho replies with the headers of its message and whether it has a
// deadline.
type headerEcho struct {
	Headers     []bus.Header
	HasDeadline bool
}

func echoHeaders(c *bus.Context, msg any) error {
	if _, ok := msg.(string); ok {
		_, dl := c.Deadline()
		return c.Reply(headerEcho{Headers: slices.Clone(c.Headers()), HasDeadline: dl})
	}
	return nil
}

// TestHeadersAndDeadline: an Ask's headers (WithHeaders) and its deadline
// reach the actor in process and across a link; an Ask without them
// carries none.
func TestHeadersAndDeadline(t *testing.T) {
	server, client := linkedPair(t)
	for _, b := range []*bus.Bus{server, client} {
		if err := bus.RegisterType[headerEcho](b.Types(), "test.header-echo"); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := server.Register("hdr", bus.ActorFunc(echoHeaders)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, client, "hdr")
	want := []bus.Header{{Key: "a", Value: "1"}, {Key: "b", Value: "2"}}
	for _, tc := range []struct {
		name  string
		asker *bus.Bus
	}{{"in process", server}, {"across a link", client}} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			hctx := bus.WithHeaders(bus.WithHeaders(ctx, want[0]), want[1])
			got, err := bus.AskAs[headerEcho](hctx, tc.asker, "hdr", "x")
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got.Headers, want) || !got.HasDeadline {
				t.Fatalf("got %+v, want headers %v and a deadline", got, want)
			}
			got, err = bus.AskAs[headerEcho](context.Background(), tc.asker, "hdr", "x")
			if err != nil {
				t.Fatal(err)
			}
			if len(got.Headers) != 0 || got.HasDeadline {
				t.Fatalf("a bare ask arrived with %+v", got)
			}
		})
	}
}
