package bus_test

import (
	"context"
	"sync"
	"testing"

	"github.com/xbus-dev/xbus/bus"
)

// extraLink is a second link to a linked peer that carries nothing: adding
// and removing it changes the peer's list of links.
type extraLink struct{ peer bus.NodeID }

func (l extraLink) Peer() bus.NodeID                          { return l.peer }
func (l extraLink) Locality() bus.Locality                    { return bus.SameHost }
func (l extraLink) Scheme() string                            { return "unix" }
func (l extraLink) Send(context.Context, *bus.Envelope) error { return nil }
func (l extraLink) Close(error)                               {}
func (l extraLink) Codec() bus.Codec                          { return bus.JSON }

// TestPlaceWhileLinksChange places messages for a name served here and on
// a peer while the peer's links come and go: placement reads the peer's
// links, which the race detector sees unless it reads them safely.
func TestPlaceWhileLinksChange(t *testing.T) {
	server, client := linkedPair(t)
	echo := bus.ActorFunc(func(c *bus.Context, msg any) error {
		if c.IsAsk() {
			return c.Reply(msg)
		}
		return nil
	})
	if _, err := server.Register("svc", echo); err != nil {
		t.Fatal(err)
	}
	waitFor(t, client, "svc")
	if _, err := client.Register("svc", echo); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			l := extraLink{peer: server.NodeID()}
			client.LinkUp(l)
			client.LinkDown(l, nil)
		}
	})
	for range 2000 {
		if _, err := client.Ask(context.Background(), "svc", "x"); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	wg.Wait()
}
