//go:build linux

package netbus

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/xbus-dev/xbus/bus"
	"github.com/xbus-dev/xbus/bus/bustest"
	"github.com/xbus-dev/xbus/bus/placement"
)

// gatedTransport is a Transport whose host takes no envelope while held:
// its node reads nothing more from the socket, as a busy node would not.
type gatedTransport struct {
	*Transport
	g *gatedHost
}

func (t gatedTransport) Start(h bus.Host) error {
	t.g.Host = h
	return t.Transport.Start(t.g)
}

type gatedHost struct {
	bus.Host // not a BatchHost: envelopes come one by one
	held     atomic.Bool
	release  chan struct{}
}

func (h *gatedHost) Deliver(l bus.Link, env *bus.Envelope) {
	if h.held.Load() {
		<-h.release
		// Released as its link closes: the close, waiting for the reader
		// to leave Deliver (conn.stop), is handed the lock before the
		// reader's next batch.
		time.Sleep(10 * time.Millisecond)
	}
	h.Host.Deliver(l, env)
}

// TestAsksPastCloseCountPlacedAgain: a node stops reading its socket while
// asks by name are sent to it, so they fill the socket and the sender's
// queue; then it closes (bus.Close). Its close frame counts the data
// frames it read: every ask past that count, written whole to the socket
// or not, is handed back before LinkDown and answered by the name's other
// instance, on another node. Only asks within the count, which may have
// run, fail with ErrPeerGone (or are answered by the closing node).
func TestAsksPastCloseCountPlacedAgain(t *testing.T) {
	network(t, asksPastCloseCountPlacedAgain)
}

func asksPastCloseCountPlacedAgain(t *testing.T, listen string) {
	types := bus.NewTypes()
	registerTestTypes(types)
	quiet := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	whoami := bus.ActorFunc(func(c *bus.Context, msg any) error {
		if !c.IsAsk() {
			return nil
		}
		return c.Reply(c.Self())
	})
	g := &gatedHost{release: make(chan struct{})}
	aT := gatedTransport{New(Config{Listen: []string{listen}}), g}
	a, err := bus.New(bus.WithName("a"), bus.WithTransport(aT), bus.WithTypes(types), bus.WithLogger(quiet))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close(context.Background())
	a.Register("whoami", whoami)
	bT := New(Config{Listen: []string{listenAgain(t, listen)}})
	b, err := bus.New(bus.WithName("b"), bus.WithTransport(bT), bus.WithTypes(types), bus.WithLogger(quiet))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close(context.Background())
	b.Register("whoami", whoami)

	cfg := Config{MaxQueued: 256 << 10, HeartbeatInterval: 10 * time.Second, IdleTimeout: time.Minute}
	cT := bustest.WatchHandBacks(New(cfg))
	var first atomic.Uint64 // the first attempt goes to a's instance, a retry elsewhere
	c, err := bus.New(bus.WithName("client"), bus.WithTransport(cT), bus.WithTypes(types),
		bus.WithPlacementFor("whoami", prefer(&first)), bus.WithRetryBudget(1e6, 1<<20), bus.WithLogger(quiet))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for _, addr := range []string{aT.Addrs()[0], bT.Addrs()[0]} {
		if _, err := cT.Dial(ctx, addr); err != nil {
			t.Fatal(err)
		}
	}
	for {
		if refs := c.Instances("whoami"); len(refs) == 2 {
			for _, r := range refs {
				if r.Node == a.NodeID() {
					first.Store(placement.HashID(r.Node, r.ID))
				}
			}
			break
		}
		if ctx.Err() != nil {
			t.Fatal("the client never learned both instances of whoami")
		}
		time.Sleep(time.Millisecond)
	}
	aLink := linkTo(t, cT, a.NodeID())
	g.held.Store(true)
	var sentBefore uint64 // data frames sent to a before the asks
	for _, cn := range aLink.conns {
		cn.mu.Lock()
		sentBefore += cn.sent
		cn.mu.Unlock()
	}

	var (
		wg                  sync.WaitGroup
		fromB, fromA, other atomic.Int64
		peerGone            atomic.Int64
		firstOther          atomic.Value
	)
	ask := func() {
		r, err := bus.AskAs[bus.Ref](ctx, c, "whoami", Payload{Data: make([]byte, 16<<10)})
		switch {
		case err == nil && r.Node == b.NodeID():
			fromB.Add(1)
		case err == nil:
			fromA.Add(1)
		case errors.Is(err, bus.ErrPeerGone):
			peerGone.Add(1)
		default:
			other.Add(1)
			firstOther.CompareAndSwap(nil, err.Error())
		}
	}
	// Asks go to a until the sockets are full and the client's writer's
	// queue holds at least half of MaxQueued, then a few more wait.
	asks, more := 0, -1
	for ; asks < 5000 && more != 0; asks++ {
		wg.Go(ask)
		if more > 0 {
			more--
		} else if asks%16 == 15 {
			for range 100 {
				if _, q := aLink.wroteAndQueued(); q >= cfg.MaxQueued/2 {
					more = 16
					break
				}
				time.Sleep(time.Millisecond)
			}
		}
	}
	if more != 0 {
		t.Fatalf("%d asks did not fill the writer's queue", asks)
	}

	closed := make(chan error, 1)
	go func() { closed <- a.Close(ctx) }()
	// a's reader waits in Deliver; it may deliver once its link closes:
	// then the close frame's count is taken, and a reads on, discarding.
	for !aT.closing() && ctx.Err() == nil {
		time.Sleep(time.Millisecond)
	}
	close(g.release)
	wg.Wait()
	if err := <-closed; err != nil {
		t.Errorf("a.Close: %v", err)
	}

	wrote, _ := aLink.wroteAndQueued()
	var read uint64 // data frames a handed to its node, by its close frames
	said := true
	for _, cn := range aLink.conns {
		cn.mu.Lock()
		read += cn.peerRead
		said = said && cn.peerSaid
		cn.mu.Unlock()
	}
	before, after := cT.Counts(aLink)
	t.Logf("%d asks: %d data frames written whole, a read %d of them; %d handed back; answered by b %d, by a %d; %d failed with ErrPeerGone",
		asks, wrote-sentBefore, read-sentBefore, before+after, fromB.Load(), fromA.Load(), peerGone.Load())
	if !said {
		t.Fatal("a closed without a close frame on each connection: the test did not test its count")
	}
	if after > 0 {
		t.Errorf("%d asks handed back after LinkDown: they failed instead of being placed again", after)
	}
	if n := other.Load(); n > 0 {
		t.Errorf("%d asks ended otherwise, the first with %v", n, firstOther.Load())
	}
	if wrote <= read {
		t.Errorf("a read every data frame written (%d of %d): the test did not test asks past its count", read, wrote)
	}
	if n := fromA.Load() + peerGone.Load(); uint64(n) > read-sentBefore {
		t.Errorf("%d asks answered by a or failed with ErrPeerGone; a read only %d data frames", n, read-sentBefore)
	}
	if fromB.Load()+fromA.Load()+peerGone.Load() != int64(asks) {
		t.Errorf("%d answered by b, %d by a and %d failed of %d asks", fromB.Load(), fromA.Load(), peerGone.Load(), asks)
	}
}

// closing reports whether a connection of the transport is closed, or
// every link is gone.
func (t gatedTransport) closing() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.links) == 0 {
		return true
	}
	for l := range t.links {
		for _, c := range l.conns {
			c.mu.Lock()
			closed := c.closed
			c.mu.Unlock()
			if closed {
				return true
			}
		}
	}
	return false
}
