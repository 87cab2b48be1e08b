package bus_test

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/xbus-dev/xbus/bus"
	"github.com/xbus-dev/xbus/bus/bustest"
	"github.com/xbus-dev/xbus/netbus"
)

// eventLog keeps every LinkInfo a bus reports.
type eventLog struct {
	mu  sync.Mutex
	got []bus.LinkInfo
}

func (e *eventLog) add(i bus.LinkInfo) {
	e.mu.Lock()
	e.got = append(e.got, i)
	e.mu.Unlock()
}

func (e *eventLog) find(f func(bus.LinkInfo) bool) (bus.LinkInfo, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, i := range e.got {
		if f(i) {
			return i, true
		}
	}
	return bus.LinkInfo{}, false
}

func (e *eventLog) all() []bus.LinkInfo {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.got)
}

func (e *eventLog) count(f func(bus.LinkInfo) bool) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := 0
	for _, i := range e.got {
		if f(i) {
			n++
		}
	}
	return n
}

func linkedBus(t *testing.T, opts ...bus.Option) *bus.Bus {
	t.Helper()
	b, err := bus.New(append([]bus.Option{bus.WithLogger(quiet)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		b.Close(ctx)
	})
	return b
}

func replier(s string) bus.Actor {
	return bus.ActorFunc(func(c *bus.Context, msg any) error { return c.Reply(s) })
}

// A third node that holds the shared secret and presents the victim's node
// id over a Unix socket (which ranks nearer than the victim's TCP link) is
// refused: asks meant for the victim keep reaching the victim, the
// victim's names stay, the impostor's never appear, and the refusal is
// reported as an event wrapping ErrRefused.
func TestImpostorNodeIDRefused(t *testing.T) {
	secret := []byte("shared")
	unixAddr := "unix://" + filepath.Join(t.TempDir(), "x.sock")
	xT := netbus.New(netbus.Config{Listen: []string{"tcp://127.0.0.1:0", unixAddr}, Secret: secret})
	var events eventLog
	x := linkedBus(t, bus.WithName("x"), bus.WithTransport(xT), bus.WithLinkEvents(events.add),
		bus.WithProofTimeout(300*time.Millisecond))
	victim := linkedBus(t, bus.WithName("victim"), bus.WithTransport(netbus.New(netbus.Config{Secret: secret})),
		bus.WithPeers(xT.Addrs()[0]))
	victim.Register("svc", replier("victim"))
	waitFor(t, x, "svc")

	impostor := linkedBus(t, bus.WithName("impostor"), bus.WithNodeID(victim.NodeID()),
		bus.WithTransport(netbus.New(netbus.Config{Secret: secret})), bus.WithPeers(unixAddr),
		bus.WithBackoff(50*time.Millisecond, 100*time.Millisecond))
	impostor.Register("svc", replier("impostor"))
	impostor.Register("impostor-only", replier("impostor"))

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for {
		got, err := x.Ask(ctx, "svc", "who?")
		if err != nil || got != "victim" {
			t.Fatalf("ask meant for the victim: %v, %v", got, err)
		}
		if _, err := x.Ask(ctx, "impostor-only", "?"); !errors.Is(err, bus.ErrNoRoute) {
			t.Fatalf("a name of the impostor reached x: %v", err)
		}
		if e, ok := events.find(func(i bus.LinkInfo) bool { return i.State == bus.LinkRefused }); ok {
			if e.Peer != victim.NodeID() || e.Scheme != "unix" || !errors.Is(e.Err, bus.ErrRefused) {
				t.Fatalf("refusal event %+v", e)
			}
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	// After the refusal the victim is still linked and served.
	if got, err := x.Ask(ctx, "svc", "who?"); err != nil || got != "victim" {
		t.Fatalf("after the refusal: %v, %v", got, err)
	}
	for _, l := range x.Links() {
		if l.Scheme != "tcp" || l.Peer != victim.NodeID() {
			t.Fatalf("x's links %+v: only the victim's TCP link should be up", x.Links())
		}
	}
}

// The same node linking again over a nearer transport proves it is the
// same node, and the bus admits the link: both ends show two ready links.
func TestSecondLinkProvesItself(t *testing.T) {
	unixAddr := "unix://" + filepath.Join(t.TempDir(), "s.sock")
	sT := netbus.New(netbus.Config{Listen: []string{"tcp://127.0.0.1:0", unixAddr}})
	var events eventLog
	s := linkedBus(t, bus.WithTransport(sT), bus.WithLinkEvents(events.add), bus.WithProofTimeout(time.Minute))
	c := linkedBus(t, bus.WithTransport(netbus.New(netbus.Config{})), bus.WithPeers(sT.Addrs()[0], unixAddr))
	c.Register("svc", replier("c"))
	waitFor(t, s, "svc")
	for _, b := range []*bus.Bus{s, c} {
		bustest.WaitLinks(t, b, "both links ready", func(ls []bus.LinkInfo) bool {
			n := 0
			for _, l := range ls {
				if l.State == bus.LinkReady {
					n++
				}
			}
			return n == 2
		})
	}
	if e, ok := events.find(func(i bus.LinkInfo) bool { return i.State == bus.LinkRefused }); ok {
		t.Fatalf("a link of the same node was refused: %+v", e)
	}
}
