package bus_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/xbus-dev/xbus/bus"
	"github.com/xbus-dev/xbus/bus/bustest"
	"github.com/xbus-dev/xbus/netbus"
)

// A node that dropped its link and linked again before this node saw the
// old one go sends on the new link at once: this node holds what arrives
// until the old link goes down, then takes the new one for the node's
// first (its heir). What it held and what arrives after reach an actor,
// every one of them, in the order sent, as every sender's messages do.
func TestHeirLinkKeepsOrder(t *testing.T) {
	for round := range 3 {
		t.Run(fmt.Sprint(round), func(t *testing.T) { heirLinkKeepsOrder(t) })
	}
}

func heirLinkKeepsOrder(t *testing.T) {
	sT := &tellCounter{Transport: netbus.New(netbus.Config{Listen: []string{"tcp://127.0.0.1:0"}})}
	var sEvents, aEvents eventLog
	s := linkedBus(t, bus.WithName("s"), bus.WithTransport(sT), bus.WithProofTimeout(time.Minute), bus.WithLinkEvents(sEvents.add))
	const held, n = 600, 1600
	order := newOrderSink(n)
	sink, err := s.Register("sink", bus.ActorFunc(func(c *bus.Context, msg any) error {
		if v, ok := msg.(int); ok {
			order.take(v)
		}
		return nil
	}))
	if err != nil {
		t.Fatal(err)
	}
	old, err := bus.New(bus.WithName("c"), bus.WithLogger(quiet), bus.WithTransport(netbus.New(netbus.Config{})), bus.WithPeers(sT.Addrs()[0]))
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, old, "sink")
	// The same node linking again: to itself its new link is its first,
	// and its one message there the key of a first link.
	eventually(t, "s taking the key of the old link", func() error {
		if sT.links.Load() == 0 {
			return errors.New("not yet")
		}
		return nil
	})
	keys := sT.links.Load()
	again := linkedBus(t, bus.WithName("c"), bus.WithNodeID(old.NodeID()),
		bus.WithTransport(netbus.New(netbus.Config{})), bus.WithPeers(sT.Addrs()[0]), bus.WithLinkEvents(aEvents.add))
	bustest.WaitLinks(t, again, "the new link up", func(ls []bus.LinkInfo) bool {
		return len(ls) == 1 && ls[0].State == bus.LinkReady
	})
	eventually(t, "s taking the key of the new link", func() error {
		if sT.links.Load() == keys {
			return errors.New("not yet")
		}
		return nil
	})
	for i := range held { // held by s: the old link is up
		if err := again.Tell(sink, i); err != nil {
			t.Fatalf("tell %d: %v", i, err)
		}
	}
	eventually(t, "s holding the tells of the new link", func() error {
		if n := sT.tells.Load(); n < held {
			return fmt.Errorf("%d of %d arrived", n, held)
		}
		return nil
	})
	sent := make(chan error, 1)
	go func() {
		for i := held; i < n; i++ {
			if err := again.Tell(sink, i); err != nil {
				sent <- fmt.Errorf("tell %d: %w", i, err)
				return
			}
			time.Sleep(200 * time.Microsecond) // arriving while s takes the new link
		}
		sent <- nil
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := old.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-sent; err != nil {
		sEvents.mu.Lock()
		se := fmt.Sprintf("%+v", sEvents.got)
		sEvents.mu.Unlock()
		aEvents.mu.Lock()
		ae := fmt.Sprintf("%+v", aEvents.got)
		aEvents.mu.Unlock()
		t.Fatalf("%v\nlinks of s: %s\nof the node linked again: %s", err, se, ae)
	}
	order.check(t, s, again)
}

// tellCounter counts the tells and the bus's link messages its
// transport's links delivered.
type tellCounter struct {
	*netbus.Transport
	tells, links atomic.Int64
}

func (c *tellCounter) Start(h bus.Host) error { return c.Transport.Start(&tellCountingHost{h, c}) }

type tellCountingHost struct {
	bus.Host
	c *tellCounter
}

// Deliver counts env once the bus has taken it.
func (h *tellCountingHost) Deliver(l bus.Link, env *bus.Envelope) {
	tell, link := env.Kind == bus.KindTell, env.Kind == bus.KindSystem && env.Type == "xbus.link"
	h.Host.Deliver(l, env)
	switch {
	case tell:
		h.c.tells.Add(1)
	case link:
		h.c.links.Add(1)
	}
}
