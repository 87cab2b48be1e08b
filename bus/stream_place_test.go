package bus_test

import (
	"errors"
	"fmt"
	"io"
	"testing"

	"github.com/xbus-dev/xbus/bus"
	"github.com/xbus-dev/xbus/bus/placement"
)

// tagServer answers each ask, and each item of each stream it receives,
// with tag.
func tagServer(tag string) bus.Actor {
	return bus.ActorFunc(func(c *bus.Context, msg any) error {
		if s, ok := msg.(*bus.Stream); ok {
			go func() {
				ctx := s.Context()
				for {
					if _, err := s.Recv(ctx); err != nil {
						if errors.Is(err, io.EOF) {
							s.CloseSend(nil)
						}
						return
					}
					if s.Send(ctx, tag) != nil {
						return
					}
				}
			}()
			return nil
		}
		if c.IsAsk() {
			return c.Reply(tag)
		}
		return nil
	})
}

// A stream opened by name stays on the instance it reached while asks by
// the same name go round robin between two instances, and it counts in
// that instance's load until it ends.
func TestStreamStaysOnItsInstance(t *testing.T) {
	eachStreamPair(t, func(t *testing.T, p streamPair) {
		rr := []bus.Option{bus.WithPlacementFor("svc", placement.RoundRobin{})}
		server, client := p.pair(t, rr, rr)
		serverRef, err := server.Register("svc", tagServer("server"))
		if err != nil {
			t.Fatal(err)
		}
		clientRef, err := client.Register("svc", tagServer("client"))
		if err != nil {
			t.Fatal(err)
		}
		eventually(t, "two instances", func() error {
			if n := len(client.Instances("svc")); n != 2 {
				return fmt.Errorf("%d", n)
			}
			return nil
		})
		ctx := testCtx(t)
		s, err := client.OpenStream(ctx, "svc", nil)
		if err != nil {
			t.Fatal(err)
		}
		var on any
		asked := map[any]int{}
		for i := range 20 {
			if err := s.Send(ctx, i); err != nil {
				t.Fatal(err)
			}
			m, err := s.Recv(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if on == nil {
				on = m
			}
			if m != on {
				t.Fatalf("item %d answered by %v, the stream began on %v", i, m, on)
			}
			r, err := client.Ask(ctx, "svc", "x")
			if err != nil {
				t.Fatal(err)
			}
			asked[r]++
		}
		if asked["server"] != 10 || asked["client"] != 10 {
			t.Fatalf("asks by name went %v, want 10 each (round robin)", asked)
		}
		load := func() map[any]int64 {
			loads := bus.Loads(client, "svc")
			return map[any]int64{"server": loads[serverRef], "client": loads[clientRef]}
		}
		if l := load(); l[on] != 1 {
			t.Fatalf("loads %v while the stream is open on %v; want 1 there", l, on)
		}
		s.CloseSend(nil)
		if _, err := s.Recv(ctx); !errors.Is(err, io.EOF) {
			t.Fatalf("after CloseSend: %v, want io.EOF", err)
		}
		eventually(t, "the stream's load gone", func() error {
			if l := load(); l["server"] != 0 || l["client"] != 0 {
				return fmt.Errorf("loads %v", l)
			}
			return nil
		})
	})
}
