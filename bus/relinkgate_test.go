package bus_test

import (
	"context"
	"errors"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/xbus-dev/xbus/bus"
	"github.com/xbus-dev/xbus/netbus"
)

// TestSendAcrossRelinkInItsWindow relinks the server's node at the exact
// moment a tell, then an ask, to it has read the server's link but not yet
// read it again inside the peer's send gate: the old link closes and a new
// one comes up (a new peer record) before the send goes on. Each send takes
// the new link, the tell arriving and the ask answered, instead of failing
// with no link while one is up.
func TestSendAcrossRelinkInItsWindow(t *testing.T) {
	sock := "unix:" + filepath.Join(t.TempDir(), "s.sock")
	server, err := bus.New(bus.WithName("server"), bus.WithTransport(netbus.New(netbus.Config{Listen: []string{sock}})))
	if err != nil {
		t.Fatal(err)
	}
	spy := newSpy(netbus.Config{Peers: []string{sock}})
	var armed atomic.Bool
	var current bus.Link
	relinked := make(chan error, 1)
	relink := func() {
		if !armed.Swap(false) {
			return
		}
		// The send waits here, holding the peer it chose, while that
		// peer's only link goes and the node links again.
		old := current
		old.Close(errors.New("relink"))
		select {
		case current = <-spy.links:
			relinked <- nil
		case <-time.After(10 * time.Second):
			relinked <- errors.New("the node never linked again")
		}
	}
	client, err := bus.New(bus.WithName("client"), bus.WithTransport(spy), bus.WithBackoff(time.Millisecond, 10*time.Millisecond), bus.WithBeforeGate(relink))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		client.Close(ctx)
		server.Close(ctx)
	})
	current = <-spy.links
	told := make(chan any, 1)
	ref, err := server.Register("svc", bus.ActorFunc(func(c *bus.Context, msg any) error {
		if c.IsAsk() {
			return c.Reply(msg)
		}
		if s, ok := msg.(string); ok {
			told <- s
		}
		return nil
	}))
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, client, "svc")

	armed.Store(true)
	if err := client.Tell(ref, "tell"); err != nil {
		t.Fatalf("a tell across a relink in its window failed: %v", err)
	}
	if err := <-relinked; err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-told:
		if m != "tell" {
			t.Fatalf("the actor got %v, want tell", m)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the tell never arrived")
	}

	armed.Store(true)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	reply, err := client.Ask(ctx, ref, "ask")
	if err != nil {
		t.Fatalf("an ask across a relink in its window failed: %v", err)
	}
	if err := <-relinked; err != nil {
		t.Fatal(err)
	}
	if reply != "ask" {
		t.Fatalf("reply %v, want ask", reply)
	}
}
