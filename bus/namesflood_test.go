package bus_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/xbus-dev/xbus/bus"
	"github.com/xbus-dev/xbus/netbus"
)

// TestPeerAnnouncingManyInstances: a peer announces tens of thousands of
// instances of one name, in a few messages, and then its link goes down.
// The node takes them all and forgets them all without holding its routing
// table for long: each change to a name's instances is made once per
// message, not once per instance (which cost time in the square of their
// number, with the routing lock held, so that one peer stalled every other
// link's announcements and every Register). Bounded only to report a hang.
func TestPeerAnnouncingManyInstances(t *testing.T) {
	a, c, forger := nameForger(t)

	const per, msgs = 25_000, 4
	for i := range msgs {
		env := &bus.Envelope{Kind: bus.KindSystem, Msg: bus.ForgedNames("svc", 1<<40+uint64(i*per), per)}
		if err := forge(t, c, forger, env); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for n := 0; n < per*msgs+1; n = len(a.Instances("svc")) {
		if ctx.Err() != nil {
			t.Fatalf("a took %d of %d instances within a minute", n, per*msgs+1)
		}
		time.Sleep(10 * time.Millisecond)
	}
	forger.Close(errors.New("closed by the test")) // c links again, with its one genuine instance
	for n := forgedIn(a.Instances("svc")); n > 0; n = forgedIn(a.Instances("svc")) {
		if ctx.Err() != nil {
			t.Fatalf("a still knows %d forged instances after their link went down", n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// forgedIn counts the refs of forged instances (ids from 1<<40 on).
func forgedIn(refs []bus.Ref) int {
	n := 0
	for _, r := range refs {
		if r.ID >= 1<<40 {
			n++
		}
	}
	return n
}

// TestPeerAnnouncingTooManyInstances: a peer that announces more instances
// than a node keeps for one peer loses its link, and the node forgets what
// it had taken from it, instead of growing without bound.
func TestPeerAnnouncingTooManyInstances(t *testing.T) {
	a, c, forger := nameForger(t)

	const per = 1 << 16 // five messages: one past the limit of 1<<18
	for i := range 5 {
		env := &bus.Envelope{Kind: bus.KindSystem, Msg: bus.ForgedNames("svc", 1<<40+uint64(i*per), per)}
		if err := forge(t, c, forger, env); err != nil {
			break // the link closed under the last message
		}
	}
	linkClosed(t, c, forger)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for n := forgedIn(a.Instances("svc")); n > 0; n = forgedIn(a.Instances("svc")) {
		if ctx.Err() != nil {
			t.Fatalf("a still knows %d forged instances after the liar's link closed", n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	waitFor(t, a, "svc") // c links again, with its one genuine instance
}

// nameForger links a to c over TCP, registers c's one genuine instance of
// "svc" and waits until a knows it; forger is c's link to a, on which the
// test speaks for c.
func nameForger(t *testing.T) (a, c *bus.Bus, forger bus.Link) {
	t.Helper()
	at := netbus.New(netbus.Config{Listen: []string{"tcp://127.0.0.1:0"}})
	a = linkedBus(t, bus.WithName("a"), bus.WithTransport(at))
	ct := newSpy(netbus.Config{Peers: at.Addrs()})
	c = linkedBus(t, bus.WithName("c"), bus.WithTransport(ct))
	forger = <-ct.links
	if _, err := c.Register("svc", bus.ActorFunc(echo)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, a, "svc")
	return a, c, forger
}
