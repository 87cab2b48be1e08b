package bus_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/xbus-dev/xbus/bus"
	"github.com/xbus-dev/xbus/bus/bustest"
	"github.com/xbus-dev/xbus/bus/placement"
)

// The retry budget stops a storm of re-placements: of the asks a dying
// node's link hands back unsent, only the budget's burst go to the other
// instance; the rest fail with their own error (ErrPeerGone), at once.
func TestRetryBudgetBoundsReplacement(t *testing.T) {
	n := bustest.NewNetwork()
	const burst = 3
	c, _ := mesh(t, n, nodeName, []bus.Option{bus.WithPlacement(placement.RoundRobin{}), bus.WithRetryBudget(1e-6, burst)}, "s1", "s2")
	n.Pause("s1") // reads nothing: its asks wait on its link
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const asks = 20
	var (
		mu      sync.Mutex
		replies = map[any]int{}
		failed  []error
		wg      sync.WaitGroup
	)
	for range asks {
		wg.Go(func() {
			r, err := c.Ask(ctx, "svc", "x")
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				failed = append(failed, err)
				return
			}
			replies[r]++
		})
	}
	// Round robin sends half to each: s2 answers its ten, s1's wait.
	eventually(t, "s2 answering its half", func() error {
		mu.Lock()
		defer mu.Unlock()
		if replies["s2"] != asks/2 {
			return errors.New("not yet")
		}
		return nil
	})
	n.Kill("s1")
	wg.Wait()
	if replies["s2"] != asks/2+burst || len(failed) != asks/2-burst {
		t.Fatalf("%v answered, %d failed; want s2 %d (its half and the burst), %d failed", replies, len(failed), asks/2+burst, asks/2-burst)
	}
	for _, err := range failed {
		if !errors.Is(err, bus.ErrPeerGone) {
			t.Errorf("an ask beyond the budget failed with %v, want ErrPeerGone", err)
		}
	}
	if h := n.HandedBack(bus.KindAsk); h != asks/2 {
		t.Errorf("%d asks handed back, want %d: the test did not test what it says", h, asks/2)
	}
}
