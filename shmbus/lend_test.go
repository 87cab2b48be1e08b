//go:build linux

package shmbus_test

import (
	"bytes"
	"fmt"
	"strconv"
	"sync"
	"testing"

	"github.com/xbus-dev/xbus/bus"
	"github.com/xbus-dev/xbus/shmbus"
)

// TestBorrowedBytesAcrossProcesses tells an actor in another process that
// borrows its []byte bodies (bus.WithBorrowedBytes), over shared memory,
// from 4 senders, bodies of 10 bytes to 1.5 KiB (lent up to 1 KiB, given
// beyond): each sender's bodies arrive whole and in order, although the
// actor clears each one and the bus reuses their memory.
func TestBorrowedBytesAcrossProcesses(t *testing.T) {
	_, path := startChild(t)
	b, err := bus.New(bus.WithName("parent"), bus.WithTransport(shmbus.New(shmbus.Config{Dial: []string{path}})))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close(t.Context()) })
	if r := askUntilRouted(t, b, "order-borrowed", "report"); r != "count=0 bad=0" {
		t.Fatalf("order-borrowed reports %v before any tell", r)
	}
	const senders, each = 4, 50_000
	var wg sync.WaitGroup
	for s := range senders {
		wg.Go(func() {
			for i := range each {
				head := strconv.Itoa(s) + ":" + strconv.Itoa(i) + "|"
				body := append([]byte(head), bytes.Repeat([]byte{byte(i % 251)}, 1+(i*37)%1500)...)
				if err := b.Tell("order-borrowed", body); err != nil {
					t.Errorf("tell: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
	want := fmt.Sprintf("count=%d bad=0", senders*each)
	if r := reportUntil(t, b, "order-borrowed", want); r != want {
		t.Fatalf("order-borrowed: %v (count: taken + dead letters)", r)
	}
}
