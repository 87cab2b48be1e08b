package netbus

import (
	"context"
	"testing"

	"github.com/xbus-dev/xbus/bus"
	"github.com/xbus-dev/xbus/internal/race"
)

// The send path allocates nothing per message in steady state: the frame
// is encoded into the writer's queue (into pooled buffers when it is
// compressed) and the writer swaps two buffers it keeps.
// (The body is the bus's to encode, before Send.)
func TestSendAllocs(t *testing.T) {
	if testing.CoverMode() != "" || race.Enabled {
		t.Skip("allocation counts differ under -race and -cover")
	}
	for _, comp := range []Compression{NoCompression, S2} {
		t.Run(comp.String(), func(t *testing.T) {
			_, _, _, _, l := pair(t, "tcp://127.0.0.1:0", Config{}, Config{Compression: comp, CompressMin: 64})
			body := make([]byte, 256)
			env := encoded(l, &bus.Envelope{Kind: bus.KindTell, From: bus.Ref{Node: l.Peer(), Name: "sender", ID: 3}, To: bus.Ref{Name: "nobody"}, Msg: body})
			ctx := context.Background()
			for range 1000 { // warm the pools and buffers
				l.Send(ctx, env)
			}
			allocs := testing.AllocsPerRun(2000, func() {
				if err := l.Send(ctx, env); err != nil {
					t.Fatal(err)
				}
			})
			if allocs > 0 {
				t.Fatalf("%.1f allocations per Send", allocs)
			}
			t.Logf("%.2f allocations per Send", allocs)
		})
	}
}

// A lone ask, which its sender writes straight to the socket, allocates
// nothing either.
func TestDirectSendAllocs(t *testing.T) {
	if testing.CoverMode() != "" || race.Enabled {
		t.Skip("allocation counts differ under -race and -cover")
	}
	network(t, func(t *testing.T, listen string) {
		_, _, _, _, bl := pair(t, listen, Config{}, Config{})
		l := bl.(*link)
		env := encoded(l, &bus.Envelope{Kind: bus.KindAsk, From: bus.Ref{Node: l.Peer(), Name: "asker", ID: 3}, To: bus.Ref{Name: "hold"}, Corr: 1, Msg: make([]byte, 64)})
		ctx := context.Background()
		send := func() {
			l.asksOut.Store(0) // "hold" never replies: make every ask the lone one
			if err := l.Send(ctx, env); err != nil {
				t.Fatal(err)
			}
		}
		for range 100 {
			send()
		}
		if allocs := testing.AllocsPerRun(1000, send); allocs > 0 {
			t.Fatalf("%.1f allocations per direct Send", allocs)
		}
	})
}
