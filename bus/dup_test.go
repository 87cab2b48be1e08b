package bus_test

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/xbus-dev/xbus/bus"
	"github.com/xbus-dev/xbus/bus/bustest"
	"github.com/xbus-dev/xbus/netbus"
)

// Two nodes that dial each other at the same moment end with one link, the
// same one on both ends, whoever saw which link first; the other is
// retired (not refused), and one link is what stays.
func TestCrossDialEndsWithOneLink(t *testing.T) {
	for _, scheme := range []string{"unix", "tcp"} {
		t.Run(scheme, func(t *testing.T) {
			for i := range 10 {
				crossDial(t, scheme, i)
			}
		})
	}
}

func crossDial(t *testing.T, scheme string, i int) {
	listen := func(name string) string {
		if scheme == "unix" {
			return "unix://" + filepath.Join(t.TempDir(), name)
		}
		return "tcp://127.0.0.1:0"
	}
	aT := netbus.New(netbus.Config{Listen: []string{listen("a.sock")}})
	bT := netbus.New(netbus.Config{Listen: []string{listen("b.sock")}})
	var aEv, bEv eventLog
	a := linkedBus(t, bus.WithTransport(aT), bus.WithLinkEvents(aEv.add), bus.WithBackoff(time.Millisecond, 20*time.Millisecond))
	b := linkedBus(t, bus.WithTransport(bT), bus.WithLinkEvents(bEv.add), bus.WithBackoff(time.Millisecond, 20*time.Millisecond))
	a.Register("a", replier("a"))
	b.Register("b", replier("b"))
	var wg sync.WaitGroup
	wg.Go(func() { a.Connect(bT.Addrs()[0]) })
	wg.Go(func() { b.Connect(aT.Addrs()[0]) })
	wg.Wait()
	one := func(ls []bus.LinkInfo) bool { return len(ls) == 1 && ls[0].State == bus.LinkReady }
	bustest.WaitLinks(t, a, "a ends with one link", one)
	bustest.WaitLinks(t, b, "b ends with one link", one)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	waitFor(t, a, "b")
	waitFor(t, b, "a")
	if got, err := a.Ask(ctx, "b", "?"); err != nil || got != "b" {
		t.Fatalf("round %d: a asks b: %v %v", i, got, err)
	}
	if got, err := b.Ask(ctx, "a", "?"); err != nil || got != "a" {
		t.Fatalf("round %d: b asks a: %v %v", i, got, err)
	}
	time.Sleep(50 * time.Millisecond) // many backoff periods: a keeper that redials would have
	for name, x := range map[string]*bus.Bus{"a": a, "b": b} {
		if ls := x.Links(); !one(ls) {
			t.Fatalf("round %d: %s's links after a while: %+v", i, name, ls)
		}
	}
	for name, ev := range map[string]*eventLog{"a": &aEv, "b": &bEv} {
		if e, ok := ev.find(func(i bus.LinkInfo) bool { return i.State == bus.LinkRefused || errors.Is(i.Err, bus.ErrRefused) }); ok {
			t.Fatalf("round %d: %s refused a link of its peer: %+v", i, name, e)
		}
	}
}
