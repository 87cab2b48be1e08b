//go:build linux

package shmbus_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/xbus-dev/xbus/bus"
	"github.com/xbus-dev/xbus/bus/bustest"
	"github.com/xbus-dev/xbus/bus/placement"
	"github.com/xbus-dev/xbus/shmbus"
)

// TestUnreadAsksPlacedAgain: asks by name go to an instance in a child
// process. A few are taken by its reader (they wait in the instance's
// mailbox: they may have run); then the child stops (SIGSTOP) while more
// asks fill its ring and wait for room, and is killed (SIGKILL). Every ask
// its reader never took (the ring's read count is in shared memory, so
// which is exact) is handed back before LinkDown and answered by the
// name's other instance, in this process; exactly those it took fail with
// ErrPeerGone, unless marked idempotent: then they too are answered here.
func TestUnreadAsksPlacedAgain(t *testing.T) {
	for _, idem := range []bool{false, true} {
		t.Run(fmt.Sprint("idempotent=", idem), func(t *testing.T) { unreadAsksPlacedAgain(t, idem) })
	}
}

func unreadAsksPlacedAgain(t *testing.T, idem bool) {
	cmd, path := startChild(t) // its "slow" takes asks and never answers
	// The link is cut by the kill, not by the heartbeat's timeout.
	st := shmbus.New(shmbus.Config{Dial: []string{path}, PeerTimeout: time.Hour})
	tr := bustest.WatchHandBacks(st)
	var first atomic.Uint64 // the first attempt goes to the child's instance, a retry here
	b, err := bus.New(bus.WithName("parent"), bus.WithTransport(tr),
		bus.WithPlacementFor("slow", prefer(&first)), bus.WithRetryBudget(1e6, 1<<20))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close(context.Background())
	b.Register("slow", bus.ActorFunc(func(c *bus.Context, msg any) error {
		if !c.IsAsk() {
			return nil
		}
		return c.Reply("parent")
	}))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for {
		if refs := b.Instances("slow"); len(refs) == 2 {
			for _, r := range refs {
				if r.Node != b.NodeID() {
					first.Store(placement.HashID(r.Node, r.ID))
				}
			}
			break
		}
		if ctx.Err() != nil {
			t.Fatal("the parent never learned both instances of slow")
		}
		time.Sleep(time.Millisecond)
	}

	askCtx := ctx
	if idem {
		askCtx = bus.WithIdempotent(ctx)
	}
	var (
		wg                        sync.WaitGroup
		fromParent, other, fromCh atomic.Int64
		peerGone                  atomic.Int64
		firstOther                atomic.Value
	)
	body := strings.Repeat("a", 2000)
	ask := func() {
		r, err := b.Ask(askCtx, "slow", body)
		switch {
		case err == nil && r == "parent":
			fromParent.Add(1)
		case err == nil:
			fromCh.Add(1)
		case errors.Is(err, bus.ErrPeerGone) && !idem:
			peerGone.Add(1)
		default:
			other.Add(1)
			firstOther.CompareAndSwap(nil, err.Error())
		}
	}
	// taken asks reach the child's reader, one after the other: each is
	// written (the ring's write count passes its size) and then read.
	const taken = 5
	for range taken {
		_, from, _ := shmbus.Backlog(st)
		wg.Go(ask)
		for {
			used, written, _ := shmbus.Backlog(st)
			if written-from >= uint64(len(body)) && used == 0 {
				break
			}
			if ctx.Err() != nil {
				t.Fatal("an ask never reached the child's reader")
			}
			time.Sleep(time.Millisecond)
		}
	}
	if err := cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	waitStopped(t, cmd.Process.Pid)
	if used, _, _ := shmbus.Backlog(st); used >= uint64(len(body)) {
		t.Fatalf("%d bytes in the ring before the child stopped: an ask among them", used)
	}

	// Asks go to the child until its ring is nearly full, then a few more
	// wait for room.
	asks, more := taken, -1
	for ; asks < 5000 && more != 0; asks++ {
		wg.Go(ask)
		if more > 0 {
			more--
		} else if asks%8 == 7 {
			for range 100 {
				if used, _, capacity := shmbus.Backlog(st); used >= capacity/2 {
					more = 16
					break
				}
				time.Sleep(time.Millisecond)
			}
		}
	}
	if more != 0 {
		t.Fatalf("%d asks did not fill half the ring", asks)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	before, after := tr.Total()
	t.Logf("%d asks, %d taken by the child's reader: %d handed back unread; %d answered here, %d failed with ErrPeerGone",
		asks, taken, before+after, fromParent.Load(), peerGone.Load())
	if after > 0 {
		t.Errorf("%d asks handed back after LinkDown: they failed instead of being placed again", after)
	}
	if before == 0 {
		t.Errorf("no ask was handed back: the test did not test re-placement")
	}
	if n := other.Load(); n > 0 {
		t.Errorf("%d asks ended otherwise, the first with %v", n, firstOther.Load())
	}
	if n := fromCh.Load(); n > 0 {
		t.Errorf("%d asks answered by the child, which never answers", n)
	}
	want := int64(taken)
	if idem {
		want = 0
	}
	if n := peerGone.Load(); n != want {
		t.Errorf("%d asks failed with ErrPeerGone; the child's reader took %d of them", n, taken)
	}
	if fromParent.Load() != int64(asks)-want {
		t.Errorf("%d of %d asks answered here, want %d", fromParent.Load(), asks, int64(asks)-want)
	}
}

// prefer places a call's first attempt on the instance whose ID is in
// first, and a later attempt on another.
func prefer(first *atomic.Uint64) placement.Strategy {
	return placement.Func(func(in []placement.Instance, c placement.Call) int {
		for i := range in {
			if (in[i].ID == first.Load()) == (c.Attempt == 0) {
				return i
			}
		}
		return 0
	})
}
