package netbus_test

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/xbus-dev/xbus/bus"
	"github.com/xbus-dev/xbus/bus/bustest"
	"github.com/xbus-dev/xbus/mailbox"
	"github.com/xbus-dev/xbus/netbus"
)

// ledger is one stream of tells from A to B's "sink": what B processed and
// what A's senders were refused. With the dead letters of both buses they
// must add up to the tells sent, exactly.
type ledger struct {
	processed, tried, refused atomic.Int64
	hello                     chan struct{}
}

// sink counts the ints it processes.
func (lg *ledger) sink() bus.Actor {
	lg.hello = make(chan struct{}, 1)
	return bus.ActorFunc(func(c *bus.Context, msg any) error {
		switch msg.(type) {
		case int:
			lg.processed.Add(1)
		case string:
			lg.hello <- struct{}{}
		}
		return nil
	})
}

// greet tells B's sink hello from A until A knows the name, and waits for
// B to process it, so that the stream starts on a link in use.
func (lg *ledger) greet(t *testing.T, A *bus.Bus) {
	for A.Tell("sink", "hello") != nil {
		time.Sleep(time.Millisecond)
	}
	select {
	case <-lg.hello:
	case <-time.After(20 * time.Second):
		t.Fatal("B's sink did not get hello")
	}
}

// stream tells B's sink each senders × each ints from A and waits for the
// senders.
func (lg *ledger) stream(A *bus.Bus, senders, each int) {
	var wg sync.WaitGroup
	for range senders {
		wg.Go(func() {
			for i := range each {
				lg.tried.Add(1)
				if A.Tell("sink", i) != nil {
					lg.refused.Add(1)
				}
			}
		})
	}
	wg.Wait()
}

// settle waits until processed + refused + the dead letters of A and B
// reach sent (or ten seconds pass), then a little more for an excess to
// show, and returns the sum.
func (lg *ledger) settle(t *testing.T, sent int64, A, B *bus.Bus) int64 {
	sum := func() int64 {
		return lg.processed.Load() + lg.refused.Load() + int64(A.DeadLetters()+B.DeadLetters())
	}
	for range 1000 {
		if sum() >= sent {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond)
	got := sum()
	t.Logf("sent %d: processed %d, refused %d, dead letters A %d (peer gone %d), B %d",
		sent, lg.processed.Load(), lg.refused.Load(), A.DeadLetters(), A.DeadLetterCount(bus.ErrPeerGone), B.DeadLetters())
	return got
}

// quiet keeps the links' comings and goings out of a test's output.
var quiet = bus.WithLogger(slog.New(slog.DiscardHandler))

// TestLedgerReceiverCloses: tells stream from four senders on A to an
// actor on B, over TCP, over a Unix socket and over a pool of four TCP
// connections, and B's bus closes
// gracefully mid-stream. Every tell is processed by B, refused to its
// sender, or a dead letter on A or B, exactly: B's close frame says how
// many data frames it read, and A hands back each one after that count,
// written or still queued.
func TestLedgerReceiverCloses(t *testing.T) {
	for _, nw := range []string{"tcp", "unix", "tcp-pool"} {
		for _, cut := range []int64{500, 3000} { // tells B processed when it closes
			t.Run(fmt.Sprintf("%s/%d", nw, cut), func(t *testing.T) {
				cfg := netbus.Config{Listen: []string{"tcp://127.0.0.1:0"}}
				switch nw {
				case "unix":
					cfg.Listen = []string{"unix://" + filepath.Join(t.TempDir(), "b.sock")}
				case "tcp-pool": // each sender's tells take one of four connections
					cfg.PoolSize = 4
				}
				trB := netbus.New(cfg)
				B := bustest.NewBus(t, trB, quiet)
				A := bustest.NewBus(t, netbus.New(netbus.Config{Peers: trB.Addrs(), PoolSize: cfg.PoolSize}), quiet)
				var lg ledger
				B.Register("sink", lg.sink(), bus.WithMailbox(mailbox.Options{Capacity: 1 << 10}))
				lg.greet(t, A)
				const senders, each = 4, 7500
				closed := make(chan error, 1)
				go func() {
					for lg.processed.Load() < cut && lg.tried.Load() < senders*each {
						time.Sleep(100 * time.Microsecond)
					}
					ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
					defer cancel()
					closed <- B.Close(ctx)
				}()
				lg.stream(A, senders, each)
				if err := <-closed; err != nil {
					t.Fatal(err)
				}
				const sent = senders * each
				if got := lg.settle(t, sent, A, B); got != sent {
					t.Errorf("closed after %d processed: processed + refused + dead letters = %d, want %d", cut, got, sent)
				}
			})
		}
	}
}

// TestLedgerSenderClosesOnBusyReceiver: A tells B's actor three ints and
// closes its bus at once, while B's reader runs that actor inline, over a
// second on each: B reads nothing for seconds, its node busy, not gone. A
// reads on to B's close frame, as B's heartbeats show it alive, and so
// learns that B handed over all three: none is a dead letter on A (in
// doubt, or otherwise), and B processed each.
func TestLedgerSenderClosesOnBusyReceiver(t *testing.T) {
	const tells, work = 3, 1200 * time.Millisecond
	trB := netbus.New(netbus.Config{Listen: []string{"tcp://127.0.0.1:0"}})
	B := bustest.NewBus(t, trB, quiet)
	A := bustest.NewBus(t, netbus.New(netbus.Config{Peers: trB.Addrs()}), quiet)
	var lg ledger
	sink := lg.sink()
	slow := bus.ActorFunc(func(c *bus.Context, msg any) error {
		if _, ok := msg.(int); ok {
			time.Sleep(work) // on B's reader: the actor runs inline
		}
		return sink.Receive(c, msg)
	})
	if _, err := B.Register("sink", slow, bus.WithInline()); err != nil {
		t.Fatal(err)
	}
	lg.greet(t, A)
	dead, err := A.Subscribe(context.Background(), bus.DeadLetterSubject)
	if err != nil {
		t.Fatal(err)
	}
	lg.stream(A, 1, tells)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := A.Close(ctx); err != nil {
		t.Fatal(err)
	}
	for i := 0; lg.processed.Load() < tells && i < 2000; i++ {
		time.Sleep(10 * time.Millisecond)
	}
	if n := lg.refused.Load(); n != 0 {
		t.Fatalf("%d tells refused to their sender", n)
	}
	if got := lg.processed.Load(); got != tells {
		t.Errorf("B processed %d of %d tells", got, tells)
	}
	if n := A.DeadLetters(); n != 0 {
		t.Errorf("A counts %d dead letters for tells B processed", n)
		wait, stop := context.WithTimeout(context.Background(), time.Second)
		defer stop()
		for m, err := dead.Next(wait); err == nil; m, err = dead.Next(wait) {
			t.Log(m)
		}
	}
	if n := B.DeadLetters(); n != 0 {
		t.Errorf("B counts %d dead letters", n)
	}
}
