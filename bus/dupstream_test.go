package bus_test

import (
	"context"
	"fmt"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/xbus-dev/xbus/bus"
	"github.com/xbus-dev/xbus/netbus"
)

// TestStreamOutlivesItsRetiredLink: two nodes dial each other at once while
// each opens streams to the other without pause; the streams that opened on
// the duplicate link later retired keep running past the time a retired
// link waits for its asks, since both nodes live: a stream never moves off
// its link, so the link stays until its streams end. Before, such a stream
// ended with ErrPeerGone once that time was up.
func TestStreamOutlivesItsRetiredLink(t *testing.T) {
	const perSide = 8
	var streams []*bus.Stream
	for round := 0; len(streams) == 0 && round < 20; round++ {
		streams = crossDialStreaming(t, perSide)
	}
	if len(streams) == 0 {
		t.Fatal("no stream opened while a node held two links")
	}
	// Past the time a retired link waits for the asks through it (10 s).
	time.Sleep(12 * time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for i, s := range streams {
		if err := s.Send(ctx, i); err != nil {
			t.Fatalf("stream %d of %d opened while two links were up: send: %v", i, len(streams), err)
		}
		if m, err := s.Recv(ctx); err != nil || fmt.Sprint(m) != fmt.Sprint(i) {
			t.Fatalf("stream %d of %d opened while two links were up: %v, %v", i, len(streams), m, err)
		}
		s.Close(nil)
	}
}

// crossDialStreaming cross-dials two nodes over Unix sockets while each
// opens streams to the other, and returns the streams opened while either
// held two links, once both hold one.
func crossDialStreaming(t *testing.T, perSide int) []*bus.Stream {
	dir := t.TempDir()
	aT := netbus.New(netbus.Config{Listen: []string{"unix://" + filepath.Join(dir, "a.sock")}})
	bT := netbus.New(netbus.Config{Listen: []string{"unix://" + filepath.Join(dir, "b.sock")}})
	a := linkedBus(t, bus.WithTransport(aT), bus.WithBackoff(time.Millisecond, 20*time.Millisecond))
	b := linkedBus(t, bus.WithTransport(bT), bus.WithBackoff(time.Millisecond, 20*time.Millisecond))
	for _, x := range []*bus.Bus{a, b} {
		if _, err := x.Register("echo", bus.ActorFunc(func(c *bus.Context, msg any) error {
			if s, ok := msg.(*bus.Stream); ok {
				go echoStream(s)
			}
			return nil
		})); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var mu sync.Mutex
	var out []*bus.Stream
	settled := make(chan struct{}) // both hold one link: no window left
	open := func(from *bus.Bus) {
		for len(from.Links()) < 2 { // wait for the window, from before the dials
			select {
			case <-settled:
				return
			default:
				runtime.Gosched()
			}
		}
		if err := from.WaitFor(ctx, "echo"); err != nil {
			return
		}
		for range perSide {
			if len(from.Links()) < 2 {
				return
			}
			s, err := from.OpenStream(context.Background(), "echo", nil)
			if err != nil {
				continue
			}
			mu.Lock()
			out = append(out, s)
			mu.Unlock()
		}
	}
	var openers sync.WaitGroup
	openers.Go(func() { open(a) })
	openers.Go(func() { open(b) })
	var wg sync.WaitGroup
	wg.Go(func() { a.Connect(bT.Addrs()[0]) })
	wg.Go(func() { b.Connect(aT.Addrs()[0]) })
	wg.Wait()
	one := func(x *bus.Bus) bool {
		n := 0
		for _, l := range x.Links() {
			if l.State == bus.LinkReady {
				n++
			}
		}
		return n == 1
	}
	for !(one(a) && one(b)) && ctx.Err() == nil {
		time.Sleep(time.Millisecond)
	}
	close(settled)
	openers.Wait()
	return out
}
