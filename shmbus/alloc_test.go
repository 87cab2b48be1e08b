//go:build linux

package shmbus_test

import (
	"context"
	"runtime"
	"testing"

	"github.com/xbus-dev/xbus/bus"
	"github.com/xbus-dev/xbus/internal/race"
	"github.com/xbus-dev/xbus/shmbus"
)

// TestTellAllocatesNothing: tells to an actor in another process over
// shared memory allocate nothing in the sending process (routing, encoding,
// the ring); the body is decoded, and allocated, in the receiving one. Each
// round waits until the child took every tell before it, so the ring has
// room and no send waits (a wait starts a timer).
func TestTellAllocatesNothing(t *testing.T) {
	if race.Enabled {
		t.Skip("the race detector allocates")
	}
	_, path := startChild(t)
	b, err := bus.New(bus.WithName("alloc"), bus.WithTransport(shmbus.New(shmbus.Config{Dial: []string{path}})))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close(context.Background()) })
	askUntilRouted(t, b, "count", "")
	var body any = make([]byte, 64) // boxed once: the caller's allocation is not the bus's
	const rounds, per = 50, 100
	tell := func() {
		for range per {
			if err := b.Tell("count", body); err != nil {
				t.Fatal(err)
			}
		}
	}
	tell() // warm: pools filled
	var ms runtime.MemStats
	total := uint64(0)
	for range rounds {
		if _, err := b.Ask(context.Background(), "count", ""); err != nil { // behind every tell so far
			t.Fatal(err)
		}
		runtime.ReadMemStats(&ms)
		before := ms.Mallocs
		tell()
		runtime.ReadMemStats(&ms)
		total += ms.Mallocs - before
	}
	// As testing.AllocsPerRun counts: whole allocations per tell, so that
	// a stray allocation of another goroutine does not count as the tells'.
	t.Logf("%d allocations in %d tells", total, rounds*per)
	if n := total / (rounds * per); n != 0 {
		t.Fatalf("%d allocations per tell over shared memory (%d in %d tells), want 0", n, total, rounds*per)
	}
}
