//go:build linux

package shmbus_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/xbus-dev/xbus/bus"
	"github.com/xbus-dev/xbus/shmbus"
)

// TestAskersPollTheirReplies asks a child process from several goroutines
// at once, each ask with a body of its own, while tells stream to the
// child and an ask that is never answered waits for its deadline: askers
// waiting on a shared-memory link take replies from the ring themselves
// (bus.PollingLink) beside the link's reader, and every asker gets its own
// reply, every tell arrives, and the unanswered ask ends with ErrDeadline.
func TestAskersPollTheirReplies(t *testing.T) {
	_, path := startChild(t)
	b, err := bus.New(bus.WithName("askers"), bus.WithTransport(shmbus.New(shmbus.Config{Dial: []string{path}})))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close(context.Background()) })
	askUntilRouted(t, b, "echo", "")
	askUntilRouted(t, b, "count", "")
	before := countTaken(t, b)

	slow := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		_, err := b.Ask(ctx, "slow", "x")
		slow <- err
	}()
	const askers, per, tells = 6, 300, 500 // tells: fewer than a mailbox holds, none dropped
	errs := make(chan error, askers+1)
	var wg sync.WaitGroup
	for a := range askers {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			for i := range per {
				to := "echo"
				if i%2 == 1 {
					to = "echo-inline"
				}
				want := fmt.Sprintf("%d/%d", a, i)
				r, err := b.Ask(ctx, to, want)
				if err != nil || r != want {
					errs <- fmt.Errorf("asker %d, ask %d to %s: got %v, %v; want %q", a, i, to, r, err, want)
					return
				}
			}
		})
	}
	wg.Go(func() {
		for range tells {
			if err := b.Tell("count", "t"); err != nil {
				errs <- err
				return
			}
		}
	})
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if got := countTaken(t, b) - before; got != tells {
		t.Fatalf("count took %d tells, want %d", got, tells)
	}
	if err := <-slow; !errors.Is(err, bus.ErrDeadline) {
		t.Fatalf("the unanswered ask ended with %v, want ErrDeadline", err)
	}
}

// countTaken asks the child's count how many tells it took; asks and tells
// to it go through one link in order, so the answer counts every tell
// sent before.
func countTaken(t *testing.T, b *bus.Bus) int {
	t.Helper()
	r, err := b.Ask(context.Background(), "count", "")
	if err != nil {
		t.Fatal(err)
	}
	var taken, dropped int
	if _, err := fmt.Sscan(r.(string), &taken, &dropped); err != nil || dropped != 0 {
		t.Fatalf("count answered %q (%v): tells dropped", r, err)
	}
	return taken
}
