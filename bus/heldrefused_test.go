package bus_test

import (
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/xbus-dev/xbus/bus"
	"github.com/xbus-dev/xbus/bus/bustest"
	"github.com/xbus-dev/xbus/netbus"
)

// Tells a node sends on a link this node holds (it claims a linked node's
// id) and then refuses, for want of a proof, are none delivered, and none
// lost without a count: each is a dead letter here, where it was held, or
// there, handed back by the link's end.
func TestHeldLinkRefusedCountsWhatItHeld(t *testing.T) {
	unixAddr := "unix://" + filepath.Join(t.TempDir(), "x.sock")
	xT := netbus.New(netbus.Config{Listen: []string{"tcp://127.0.0.1:0", unixAddr}})
	x := linkedBus(t, bus.WithName("x"), bus.WithTransport(xT), bus.WithProofTimeout(300*time.Millisecond))
	var got atomic.Int64
	svc, err := x.Register("svc", bus.ActorFunc(func(c *bus.Context, msg any) error {
		if _, ok := msg.(int); ok {
			got.Add(1)
		}
		return nil
	}))
	if err != nil {
		t.Fatal(err)
	}
	victim := linkedBus(t, bus.WithName("victim"), bus.WithTransport(netbus.New(netbus.Config{})), bus.WithPeers(xT.Addrs()[0]))
	waitFor(t, victim, "svc")
	impostor := linkedBus(t, bus.WithName("impostor"), bus.WithNodeID(victim.NodeID()),
		bus.WithTransport(netbus.New(netbus.Config{})), bus.WithPeers(unixAddr),
		bus.WithBackoff(time.Minute, time.Minute)) // one link only
	bustest.WaitLinks(t, impostor, "its link up", func(ls []bus.LinkInfo) bool {
		return len(ls) == 1 && ls[0].State == bus.LinkReady
	})
	const n = 100
	sent := 0
	for i := range n {
		if err := impostor.Tell(svc, i); err != nil {
			break // refused already
		}
		sent++
	}
	eventually(t, "every tell counted", func() error {
		if c := x.DeadLetters() + impostor.DeadLetters(); c < uint64(sent) {
			return fmt.Errorf("%d of %d tells dead letters (%d here, %d at the sender)", c, sent, x.DeadLetters(), impostor.DeadLetters())
		}
		return nil
	})
	if g := got.Load(); g != 0 {
		t.Fatalf("%d tells of a refused link delivered", g)
	}
}
