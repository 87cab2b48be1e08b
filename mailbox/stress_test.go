package mailbox

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/xbus-dev/xbus/internal/race"
)

var stressFor = flag.Duration("mailbox.stress", 0, "run TestStressCloseRacing for this long instead of a fixed number of rounds")

// TestStressCloseRacing: many senders under every policy, singly and in
// batches, the mailbox's consumer (stalling now and then), and Close
// racing both, in small rings over many rounds. Every message a Send
// accepted is invoked or reported to Dropped exactly once, never both,
// never neither; each sender's invoked messages run in the order sent;
// after Close nothing is queued.
//
//	go test -race -run TestStressCloseRacing -mailbox.stress 10m ./mailbox
func TestStressCloseRacing(t *testing.T) {
	rounds := 300
	if race.Enabled {
		rounds = 60
	}
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 0))
	deadline := time.Now().Add(*stressFor)
	for round := 0; round < rounds || time.Now().Before(deadline); round++ {
		stressRound(t, round, rng)
		if t.Failed() {
			return
		}
	}
}

func stressRound(t *testing.T, round int, rng *rand.Rand) {
	producers, per := 2+rng.IntN(5), 200+rng.IntN(400)
	o := Options{Capacity: []int{2, 4, 8, 64}[rng.IntN(4)], Throughput: 1 + rng.IntN(40), Inline: rng.IntN(4) == 0}
	stall := rng.IntN(8) // every stall-th message the consumer yields or sleeps (0: never)
	// Each round its own mix of policies: some all DropOldest, whose
	// senders take the oldest cell as the consumer does.
	policies := [][]Policy{{Block, FailFast, DropOldest}, {DropOldest}, {DropOldest, DropOldest, Block}, {Block}}[rng.IntN(4)]
	c := newSeqChecker(producers, per)
	var dropped, closedDrops atomic.Int64
	inv := &funcInvoker{
		invoke: func(v int) {
			c.Invoke(v)
			if stall > 0 && v%stall == 0 {
				if v%(3*stall) == 0 {
					time.Sleep(time.Microsecond)
				} else {
					runtime.Gosched()
				}
			}
		},
		dropped: func(v int, reason error) {
			switch {
			case errors.Is(reason, ErrClosed):
				closedDrops.Add(1)
			case errors.Is(reason, ErrDropped):
				dropped.Add(1)
			default:
				panic(reason)
			}
			c.Dropped(v, reason)
		},
	}
	mb, err := New[int](inv, o)
	if err != nil {
		t.Fatal(err)
	}
	var accepted atomic.Int64
	var wg sync.WaitGroup
	start := make(chan struct{})
	for p := range producers {
		seed := rng.Uint64()
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(seed, uint64(p)))
			<-start
			var run [4]int
			for s := 1; s <= per; {
				pol := policies[rng.IntN(len(policies))]
				ctx, cancel := context.Background(), context.CancelFunc(func() {})
				if pol == Block && rng.IntN(4) == 0 {
					ctx, cancel = context.WithTimeout(ctx, time.Duration(rng.IntN(50))*time.Microsecond)
				}
				k := 1
				var err error
				if rng.IntN(4) == 0 {
					k = min(1+rng.IntN(len(run)), per-s+1)
					for i := range k {
						run[i] = p<<24 | (s + i)
					}
					var n int
					n, err = mb.SendBatch(ctx, run[:k], pol)
					accepted.Add(int64(n))
					if err != nil {
						k = n + 1 // the refused one is not sent again
					}
				} else if err = mb.Send(ctx, p<<24|s, pol); err == nil {
					accepted.Add(1)
				}
				cancel()
				s += k
				switch {
				case err == nil, errors.Is(err, ErrFull), errors.Is(err, context.DeadlineExceeded):
				case errors.Is(err, ErrClosed):
					return
				default:
					panic(err)
				}
			}
		})
	}
	close(start)
	// Close after a random share of the traffic, or at once, or never
	// (then after it all).
	switch rng.IntN(4) {
	case 0:
		mb.Close()
	case 1, 2:
		share := int64(rng.IntN(producers*per/2 + 1))
		waitFor(t, "some traffic", func() bool { return accepted.Load() >= share })
		mb.Close()
	}
	wg.Wait()
	mb.Close()
	// Every Send and Close has returned; only the message of a turn in
	// progress may still be being invoked.
	waitForf(t, func() string {
		return fmt.Sprintf("accounting: accepted %d, invoked %d, reported %d", accepted.Load(), c.processed.Load(), c.dropped.Load())
	}, func() bool {
		return c.processed.Load()+c.dropped.Load() == accepted.Load()
	})
	if err := c.err(); err != nil {
		t.Fatalf("round %d (%+v): %v", round, o, err)
	}
	if n := mb.Len(); n != 0 {
		t.Fatalf("round %d (%+v): Len() = %d after Close", round, o, n)
	}
	if d := dropped.Load() + closedDrops.Load(); d != c.dropped.Load() {
		t.Fatalf("round %d: %d reported, %d counted", round, d, c.dropped.Load())
	}
}

// TestCloseReportsWhatATurnHolds: Close while the consumer is stuck in
// Invoke, with messages queued behind the one it runs: before Close
// returns, every message not invoked is reported, and none runs after.
func TestCloseReportsWhatATurnHolds(t *testing.T) {
	for _, capacity := range []int{16, 64, 1024} {
		gate, entered := make(chan struct{}), make(chan int, 1)
		var invoked, reported atomic.Int64
		const stuckAt = 10
		inv := &funcInvoker{
			invoke: func(v int) {
				invoked.Add(1)
				if v == stuckAt {
					entered <- v
					<-gate
				}
			},
			dropped: func(v int, reason error) {
				if !errors.Is(reason, ErrClosed) {
					panic(reason)
				}
				reported.Add(1)
			},
		}
		mb, err := New[int](inv, Options{Capacity: capacity})
		if err != nil {
			t.Fatal(err)
		}
		mb.Suspend()
		sent := 0
		for v := 1; v <= capacity; v++ {
			if mb.Send(context.Background(), v, FailFast) == nil {
				sent++
			}
		}
		mb.Resume()
		<-entered
		// Fill the room the turn made.
		for v := capacity + 1; v <= 2*capacity; v++ {
			if mb.Send(context.Background(), v, FailFast) == nil {
				sent++
			}
		}
		mb.Close()
		if got := invoked.Load() + reported.Load(); got != int64(sent) {
			t.Fatalf("capacity %d: Close returned with %d sent, %d invoked and %d reported", capacity, sent, invoked.Load(), reported.Load())
		}
		close(gate)
		waitFor(t, "the turn to end", func() bool { return mb.Len() == 0 })
		if got := invoked.Load() + reported.Load(); got != int64(sent) {
			t.Fatalf("capacity %d: after the turn, %d sent, %d invoked and %d reported", capacity, sent, invoked.Load(), reported.Load())
		}
	}
}
