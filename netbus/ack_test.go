package netbus

import (
	"context"
	"testing"
	"time"

	"github.com/xbus-dev/xbus/bus"
)

// TestStreamIsAcknowledgedBetweenTicks: a stream of tells longer than the
// ring of unacknowledged data frames flows while heartbeats are a minute
// apart. The peer acknowledges every ackEvery frames at once, not on its
// tick, so no tell past the ring waits for room (it would wait out its
// context), and every tell arrives, in order.
func TestStreamIsAcknowledgedBetweenTicks(t *testing.T) {
	network(t, func(t *testing.T, listen string) {
		cfg := Config{HeartbeatInterval: time.Minute, IdleTimeout: 3 * time.Minute}
		srv, _, _, _, l := pair(t, listen, cfg, cfg)
		const n = ackRing + 2*ackEvery
		from := bus.Ref{Node: l.Peer(), Name: "streamer", ID: 1}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		for i := range n {
			env := &bus.Envelope{Kind: bus.KindTell, From: from, To: bus.Ref{Name: "sink"}, Msg: Payload{Seq: i}}
			if err := l.Send(ctx, encoded(l, env)); err != nil {
				t.Fatalf("tell %d of %d: %v", i, n, err)
			}
		}
		for {
			srv.mu.Lock()
			got := append([]int(nil), srv.tells["streamer"]...)
			srv.mu.Unlock()
			if len(got) == n {
				for i, s := range got {
					if s != i {
						t.Fatalf("tell %d arrived as number %d", s, i)
					}
				}
				break
			}
			if ctx.Err() != nil {
				t.Fatalf("%d of %d tells arrived", len(got), n)
			}
			time.Sleep(5 * time.Millisecond)
		}
		c := l.(*link).conns[0]
		c.mu.Lock()
		acked := c.acked
		c.mu.Unlock()
		if acked < n-ackRing {
			t.Fatalf("the peer acknowledged %d of %d data frames", acked, n)
		}
	})
}
