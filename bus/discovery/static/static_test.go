package static_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/xbus-dev/xbus/bus"
	"github.com/xbus-dev/xbus/bus/bustest"
	"github.com/xbus-dev/xbus/bus/discovery/static"
	"github.com/xbus-dev/xbus/netbus"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// server is a bus listening on TCP that answers name with name.
func server(t *testing.T, name string) (*bus.Bus, string) {
	t.Helper()
	tr := netbus.New(netbus.Config{Listen: []string{"127.0.0.1:0"}})
	b := bustest.NewBus(t, tr, bus.WithLogger(quiet))
	if _, err := b.Register(name, bus.ActorFunc(func(c *bus.Context, msg any) error {
		if c.IsAsk() {
			return c.Reply(name)
		}
		return nil
	})); err != nil {
		t.Fatal(err)
	}
	return b, tr.Addrs()[0]
}

func client(t *testing.T, src *static.Source) *bus.Bus {
	t.Helper()
	return bustest.NewBus(t, netbus.New(netbus.Config{}), bus.WithLogger(quiet), bus.WithDiscovery(src))
}

func ask(t *testing.T, b *bus.Bus, name string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := b.WaitFor(ctx, name); err != nil {
		t.Fatalf("wait for %s: %v", name, err)
	}
	if r, err := b.Ask(ctx, name, "x"); err != nil || r != name {
		t.Fatalf("ask %s = %v, %v", name, r, err)
	}
}

// The listed nodes are linked; Set replaces the list, and a node that left
// it is no longer kept linked.
func TestStaticListAndSet(t *testing.T) {
	_, a := server(t, "a")
	_, b := server(t, "b")
	src := static.New(static.Config{Addrs: []string{a, a}})
	cli := client(t, src)
	ask(t, cli, "a")
	src.Set(b)
	bustest.WaitLinks(t, cli, "a forgotten, b kept", func(ls []bus.LinkInfo) bool {
		return bustest.Kept(ls, b) && !bustest.Kept(ls, a)
	})
	ask(t, cli, "b")
	if got := src.Addrs(); !slices.Equal(got, []string{b}) {
		t.Fatalf("Addrs = %v", got)
	}
}

// Resolve is called again every Refresh: a list that changes is followed,
// and a failing resolve keeps the list it had.
func TestStaticResolve(t *testing.T) {
	_, a := server(t, "a")
	_, b := server(t, "b")
	var mu sync.Mutex
	list, fail := []string{a}, false
	src := static.New(static.Config{Refresh: 10 * time.Millisecond, Resolve: func(context.Context) ([]string, error) {
		mu.Lock()
		defer mu.Unlock()
		if fail {
			return nil, errors.New("registry down")
		}
		return list, nil
	}})
	cli := client(t, src)
	ask(t, cli, "a")
	mu.Lock()
	fail = true
	mu.Unlock()
	time.Sleep(50 * time.Millisecond) // several refreshes fail
	if got := src.Addrs(); !slices.Equal(got, []string{a}) {
		t.Fatalf("after failed resolves Addrs = %v, want [%s]", got, a)
	}
	mu.Lock()
	list, fail = []string{b}, false
	mu.Unlock()
	bustest.WaitLinks(t, cli, "b kept, a forgotten", func(ls []bus.LinkInfo) bool {
		return bustest.Kept(ls, b) && !bustest.Kept(ls, a)
	})
	ask(t, cli, "b")
}
