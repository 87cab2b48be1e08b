package netbus

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/xbus-dev/xbus/bus"
	"github.com/xbus-dev/xbus/mailbox"
)

// TestRelinkSettlesInDoubt: tells stream from four senders on A to an
// actor on B, and B's end of the socket is cut under them (a reset over
// TCP); A's bus links again. Each end then tells the other how many data
// frames it read on the broken connection, and the ledger is exact: every
// tell is processed by B, refused to its sender, or a dead letter on A or
// B, none counted twice. The records wait a minute, so an exact sum seen
// before then comes from the settlement, not from their expiry.
func TestRelinkSettlesInDoubt(t *testing.T) {
	network(t, func(t *testing.T, listen string) { relinkSettles(t, listen, 1) })
	// The first of four connections is cut; the others end with it.
	t.Run("tcp-pool", func(t *testing.T) { relinkSettles(t, "tcp://127.0.0.1:0", 4) })
}

// relinkSettles is TestRelinkSettlesInDoubt over listen, with links of
// pool connections.
func relinkSettles(t *testing.T, listen string, pool int) {
	for _, cut := range []int64{1000, 6000} {
		t.Run(fmt.Sprint(cut), func(t *testing.T) {
			cfg := Config{SettleTimeout: time.Minute, PoolSize: pool}
			cb := cfg
			cb.Listen = []string{listen}
			trB := New(cb)
			B := newBus(t, trB)
			ca := cfg
			ca.Peers = trB.Addrs()
			A := newBus(t, New(ca), bus.WithBackoff(time.Millisecond, 20*time.Millisecond))
			var processed, tried, refused atomic.Int64
			hello := make(chan struct{}, 1)
			B.Register("sink", bus.ActorFunc(func(c *bus.Context, msg any) error {
				switch msg.(type) {
				case int:
					processed.Add(1)
				case string:
					hello <- struct{}{}
				}
				return nil
			}), bus.WithMailbox(mailbox.Options{Capacity: 1 << 10}))
			for A.Tell("sink", "hello") != nil {
				time.Sleep(time.Millisecond)
			}
			<-hello
			const senders, each = 4, 7500
			const sent = senders * each
			var wg sync.WaitGroup
			for range senders {
				wg.Go(func() {
					for i := range each {
						tried.Add(1)
						if A.Tell("sink", i) != nil {
							refused.Add(1)
						}
					}
				})
			}
			for processed.Load() < cut && tried.Load() < sent {
				time.Sleep(100 * time.Microsecond)
			}
			cutSocket(t, trB)
			wg.Wait()
			sum := func() int64 { return processed.Load() + refused.Load() + int64(A.DeadLetters()+B.DeadLetters()) }
			for i := 0; i < 2000 && sum() != sent; i++ {
				time.Sleep(10 * time.Millisecond)
			}
			time.Sleep(50 * time.Millisecond) // an excess shows up too
			t.Logf("sent %d: processed %d, refused %d, dead letters A %d, B %d",
				sent, processed.Load(), refused.Load(), A.DeadLetters(), B.DeadLetters())
			if got := sum(); got != sent {
				t.Fatalf("cut after %d processed: processed + refused + dead letters = %d, want %d", cut, got, sent)
			}
		})
	}
}

// newBus makes a quiet bus on tr, closed when t ends.
func newBus(t *testing.T, tr *Transport, opts ...bus.Option) *bus.Bus {
	t.Helper()
	b, err := bus.New(append(opts, bus.WithTransport(tr), bus.WithLogger(slog.New(slog.DiscardHandler)))...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		b.Close(ctx)
	})
	return b
}

// cutSocket closes the socket of tr's one link at once: over TCP with a
// reset, which destroys what the socket held unread.
func cutSocket(t *testing.T, tr *Transport) {
	t.Helper()
	tr.mu.Lock()
	var nc net.Conn
	for l := range tr.links {
		nc = l.conns[0].nc
	}
	tr.mu.Unlock()
	if nc == nil {
		t.Fatal("no link to cut")
	}
	if tc, ok := nc.(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
	nc.Close()
}

// TestSettledCounts drives a transport's records directly: a peer's count
// hands back exactly the tells in doubt past it, once; a count outside the
// range in doubt settles nothing; a count for a connection not ended here
// waits for it; Close hands back what is still in doubt.
func TestSettledCounts(t *testing.T) {
	h := newTestHost(t)
	tr := startTransport(t, h, Config{SettleTimeout: time.Minute})
	peer := bus.NewNodeID()
	l := &link{t: tr, peer: peer, done: make(chan struct{})}
	// Frames 10..19 in doubt; bit i set: frame 10+i is a tell.
	r := &record{id: connID{1, 0}, base: 10, from: 10, to: 20, bits: []uint64{0b11_0110_1101}, l: l, err: net.ErrClosed}
	other := &record{id: connID{1, 1}, base: 0, from: 0, to: 3, bits: []uint64{0b111}, l: l, err: net.ErrClosed}
	tr.keep(r)
	tr.keep(other)
	if f := tr.settleFrame(peer); len(parseSettle(f[frameHeaderLen:])) != 2 {
		t.Fatalf("a new link to the peer would start with %x", f)
	}
	for _, c := range []struct {
		read uint64
		want int64 // tells handed back, in all
	}{
		{9, 0},  // below the frames in doubt: the peer acknowledged more
		{21, 0}, // past what was written
		{14, 4}, // frames 14..19 are bits 4..9, of which 5, 6, 8 and 9 are tells
		{14, 4}, // once
		{10, 4}, // settled already
	} {
		tr.settled(peer, []settleEntry{{connID{1, 0}, c.read}})
		if got := h.undeliv.Load(); got != c.want {
			t.Fatalf("after count %d: %d handed back, want %d", c.read, got, c.want)
		}
	}
	tr.settled(peer, []settleEntry{{connID{7, 2}, 5}}) // a connection still ending here
	if read, ok := tr.told(peer, connID{7, 2}); !ok || read != 5 {
		t.Fatalf("told %d, %v; want 5, true", read, ok)
	}
	if _, ok := tr.told(peer, connID{7, 2}); ok {
		t.Fatal("a told count is taken twice")
	}
	tr.Close(context.Background())
	if got := h.undeliv.Load(); got != 4+3 {
		t.Fatalf("after Close: %d handed back, want the 3 still in doubt too", got-4)
	}
}
