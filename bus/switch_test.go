package bus_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/xbus-dev/xbus/bus"
	"github.com/xbus-dev/xbus/mailbox"
	"github.com/xbus-dev/xbus/netbus"
)

// A sender streams numbered tells to a remote actor over TCP while a Unix
// socket link to the same node comes up and takes over: the actor sees
// every number, strictly in order.
func TestSwitchToNearerLinkKeepsOrder(t *testing.T) {
	for round := range 3 {
		t.Run(fmt.Sprint(round), func(t *testing.T) {
			unixAddr := "unix://" + filepath.Join(t.TempDir(), "s.sock")
			sT := netbus.New(netbus.Config{Listen: []string{"tcp://127.0.0.1:0", unixAddr}})
			s := linkedBus(t, bus.WithTransport(sT))
			const n = 30000
			sink := newOrderSink(n)
			s.Register("sink", bus.ActorFunc(func(c *bus.Context, msg any) error {
				v, err := strconv.Atoi(fmt.Sprint(msg))
				if err != nil {
					return err
				}
				sink.take(v)
				return nil
			}), bus.WithMailbox(mailbox.Options{Capacity: 1 << 16}))
			c := linkedBus(t, bus.WithTransport(netbus.New(netbus.Config{})), bus.WithPeers(sT.Addrs()[0]))
			waitFor(t, c, "sink")
			for i := range n {
				if i == n/10 {
					if err := c.Connect(unixAddr); err != nil {
						t.Fatal(err)
					}
				}
				if err := c.Tell("sink", strconv.Itoa(i)); err != nil {
					t.Fatalf("tell %d: %v", i, err)
				}
			}
			sink.check(t, s)
			var unix bool
			for _, l := range c.Links() {
				unix = unix || (l.Scheme == "unix" && l.State == bus.LinkReady)
			}
			if !unix {
				t.Fatalf("the unix link never came up: %+v", c.Links())
			}
		})
	}
}

// A publisher streams numbered messages to a remote subscriber over TCP
// while a Unix socket link to the same node comes up and takes over: the
// subscriber sees them strictly in order (a slow subscriber may lose some,
// counted in Dropped; none is reordered).
func TestSwitchToNearerLinkKeepsPublishOrder(t *testing.T) {
	unixAddr := "unix://" + filepath.Join(t.TempDir(), "s.sock")
	sT := netbus.New(netbus.Config{Listen: []string{"tcp://127.0.0.1:0", unixAddr}})
	s := linkedBus(t, bus.WithTransport(sT))
	sub, err := s.Subscribe(context.Background(), "n.>", bus.WithWindow(1<<16))
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	c := linkedBus(t, bus.WithTransport(netbus.New(netbus.Config{})), bus.WithPeers(sT.Addrs()[0]))
	// The subscription reaches c after the link: publish until one arrives.
	for warm := false; !warm; {
		if err := c.Publish("n.warm", -1); err != nil {
			t.Fatal(err)
		}
		select {
		case <-sub.Messages():
			warm = true
		case <-time.After(10 * time.Millisecond):
		}
	}
	const n = 30000
	for i := range n {
		if i == n/10 {
			if err := c.Connect(unixAddr); err != nil {
				t.Fatal(err)
			}
		}
		if err := c.Publish("n.x", i); err != nil {
			t.Fatalf("publish %d: %v", i, err)
		}
	}
	last, got := -1, 0
	for got+int(sub.Dropped()) < n {
		select {
		case m := <-sub.Messages():
			v, ok := m.Msg.(int)
			if !ok || v < 0 {
				continue // a late warm-up
			}
			if v <= last {
				t.Fatalf("message %d arrived after %d: order broke", v, last)
			}
			last, got = v, got+1
		case <-time.After(30 * time.Second):
			t.Fatalf("got %d of %d (dropped %d)", got, n, sub.Dropped())
		}
	}
	var unix bool
	for _, l := range c.Links() {
		unix = unix || (l.Scheme == "unix" && l.State == bus.LinkReady)
	}
	if !unix {
		t.Fatalf("the unix link never came up: %+v", c.Links())
	}
}

// orderSink collects the numbers a sink actor takes, to check that tells
// 0 to n-1 all arrived, in order.
type orderSink struct {
	n    int
	mu   sync.Mutex
	got  []int
	done chan struct{}
}

func newOrderSink(n int) *orderSink { return &orderSink{n: n, done: make(chan struct{})} }

// take records v; the sink's actor calls it.
func (o *orderSink) take(v int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.got = append(o.got, v)
	if len(o.got) == o.n {
		close(o.done)
	}
}

// check waits up to 30 s for all n, then fails unless each arrived once,
// in order; s is the sink's bus, whose dead letters a failure shows.
func (o *orderSink) check(t *testing.T, s *bus.Bus) {
	t.Helper()
	select {
	case <-o.done:
	case <-time.After(30 * time.Second):
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.got) != o.n {
		t.Fatalf("the sink got %d of %d tells (dead letters: %v)", len(o.got), o.n, s.DeadLetters())
	}
	for i, v := range o.got {
		if v != i {
			t.Fatalf("tell %d arrived at position %d: order broke", v, i)
		}
	}
}
