package bus_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/xbus-dev/xbus/bus"
	"github.com/xbus-dev/xbus/netbus"
)

// stallTransport is a netbus transport whose links, as the bus sees them,
// hold each ask sent on them until the test lets it go, and then refuse
// it, as a link that failed in the middle of the send would.
type stallTransport struct {
	*hookTransport
	links   chan *hookLink
	entered chan struct{} // an ask is held
	release chan struct{} // let it go, refused
}

func newStall(cfg netbus.Config) *stallTransport {
	s := &stallTransport{hookTransport: newHookTransport(cfg),
		links: make(chan *hookLink, 8), entered: make(chan struct{}, 1), release: make(chan struct{})}
	s.up = func(_ bus.Host, l *hookLink) {
		select {
		case s.links <- l:
		default:
		}
	}
	s.send = func(l *hookLink, ctx context.Context, env *bus.Envelope) error {
		if env.Kind != bus.KindAsk {
			return l.Link.Send(ctx, env)
		}
		s.entered <- struct{}{}
		<-s.release
		return errRefusedMidSend
	}
	return s
}

var errRefusedMidSend = errors.New("refused in the middle of the send")

// TestAskRefusedAfterItsLinkWentFreesItsSlotOnce: an actor's ask is in the
// middle of its send when its link goes down, which completes the ask (its
// callback runs) and frees its slot; then the link refuses the send. The
// refusal must not free the slot again: a slot listed twice in the free
// stack would be handed to two asks at once.
func TestAskRefusedAfterItsLinkWentFreesItsSlotOnce(t *testing.T) {
	bt := netbus.New(netbus.Config{Listen: []string{"tcp://127.0.0.1:0"}})
	b := linkedBus(t, bus.WithName("b"), bus.WithTransport(bt))
	at := newStall(netbus.Config{Peers: bt.Addrs()})
	a := linkedBus(t, bus.WithName("a"), bus.WithTransport(at))
	if _, err := b.Register("hold", bus.ActorFunc(func(c *bus.Context, msg any) error {
		if c.IsAsk() {
			c.Promise()
		}
		return nil
	})); err != nil {
		t.Fatal(err)
	}
	waitFor(t, a, "hold")
	l := <-at.links

	outcome := make(chan error, 2)
	if _, err := a.Register("asker", bus.ActorFunc(func(c *bus.Context, msg any) error {
		if _, ok := msg.(string); ok {
			c.Ask(context.Background(), "hold", "q", func(_ any, err error) { outcome <- err })
		}
		return nil
	})); err != nil {
		t.Fatal(err)
	}
	if err := a.Tell("asker", "go"); err != nil {
		t.Fatal(err)
	}
	<-at.entered
	l.Link.Close(errors.New("cut"))
	// The callback runs on the asker once its Receive, still in the send,
	// returns; the slot is free before.
	eventually(t, "the slot freed by the link's end", func() error {
		if total, free, _ := bus.AskSlots(a); free != total {
			return fmt.Errorf("%d free of %d", free, total)
		}
		return nil
	})
	close(at.release)
	if err := <-outcome; err == nil {
		t.Fatal("the ask whose link went down succeeded")
	}
	time.Sleep(50 * time.Millisecond) // a second outcome, which must not come
	if total, free, twice := bus.AskSlots(a); free != total || twice != 0 {
		t.Fatalf("ask slots: %d free of %d, %d listed twice; want all free once", free, total, twice)
	}
	select {
	case err := <-outcome:
		t.Fatalf("the ask had a second outcome: %v", err)
	default:
	}
}
