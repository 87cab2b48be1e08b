//go:build unix

package bus_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/xbus-dev/xbus/bus"
)

// TestManyIdleSubscriptionsCostAPublishFewGoroutines: a peer process
// subscribes a thousand times to one subject through windows of 1 and
// never reads, so that all its subscriptions are soon out of credit. A
// Publish waits for each within its ctx, and misses each (named in the
// *PublishError), on a goroutine per peer, not one per subscription: a
// peer that announces many subscriptions and never grants costs a publish
// one goroutine.
func TestManyIdleSubscriptionsCostAPublishFewGoroutines(t *testing.T) {
	const subs = 1000
	_, tr := startFrozenPeer(t, "tcp", fmt.Sprintf("%s=%d", peerSubsEnv, subs))
	pub := linkedBus(t, bus.WithName("publisher"), bus.WithTransport(tr))
	eventually(t, "the subscriptions announced", func() error {
		if n, _ := bus.RemoteSubs(pub); n < subs {
			return fmt.Errorf("%d of %d announced", n, subs)
		}
		return nil
	})
	for i := range 2 { // each subscription's credit, then its buffer, is used up
		if err := pub.Publish("ticks.a", i); err != nil {
			t.Fatalf("publish %d: %v", i, err)
		}
	}
	before := runtime.NumGoroutine()
	res := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		defer cancel()
		res <- pub.PublishContext(ctx, "ticks.a", 2)
	}()
	most := 0
	var err error
	for waiting := true; waiting; {
		select {
		case err = <-res:
			waiting = false
		default:
			most = max(most, runtime.NumGoroutine()-before)
			time.Sleep(time.Millisecond)
		}
	}
	var pe *bus.PublishError
	if !errors.As(err, &pe) || len(pe.Missed) != subs || !errors.Is(err, bus.ErrDeadline) {
		t.Fatalf("the publish: %v, want it to miss all %d subscriptions with ErrDeadline", err, subs)
	}
	if most > subs/10 {
		t.Fatalf("while the publish waited, %d goroutines more than before, for %d subscriptions of one peer", most, subs)
	}
	t.Logf("at most %d goroutines more while the publish waited", most)
}
