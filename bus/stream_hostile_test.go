package bus_test

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/xbus-dev/xbus/bus"
	"github.com/xbus-dev/xbus/bus/internal/flow"
	"github.com/xbus-dev/xbus/netbus"
)

// An item whose body does not decode ends its stream at both ends with the
// coded reason, and leaves the link up; an open whose body does not decode
// is refused with it. The same on every transport.
func TestStreamUndecodableBodies(t *testing.T) {
	eachLink(t, func(t *testing.T, rl realLink) {
		ct := bus.NewTypes()
		if err := bus.RegisterType[secret](ct, "test.secret"); err != nil {
			t.Fatal(err)
		}
		server, client := rl.pair(t, nil, []bus.Option{bus.WithTypes(ct)})
		ended := make(chan error, 1)
		accept(t, server, client, "read", func(s *bus.Stream) {
			for {
				if _, err := s.Recv(s.Context()); err != nil {
					ended <- err
					return
				}
			}
		})
		ctx := testCtx(t)
		s, err := client.OpenStream(ctx, "read", nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Send(ctx, "fine"); err != nil {
			t.Fatal(err)
		}
		if err := s.Send(ctx, secret{"x"}); err != nil {
			t.Fatal(err)
		}
		if err := <-ended; !errors.Is(err, bus.ErrUnknownType) || !strings.Contains(err.Error(), "test.secret") {
			t.Fatalf("the reading end: %v, want ErrUnknownType naming test.secret", err)
		}
		if _, err := s.Recv(ctx); !errors.Is(err, bus.ErrUnknownType) {
			t.Fatalf("the sending end: %v, want ErrUnknownType", err)
		}

		s, err = client.OpenStream(ctx, "read", secret{"y"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Recv(ctx); !errors.Is(err, bus.ErrUnknownType) {
			t.Fatalf("an open that does not decode: %v, want ErrUnknownType", err)
		}
		// The link stayed: a new stream works.
		s, err = client.OpenStream(ctx, "read", nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Send(ctx, "again"); err != nil {
			t.Fatal(err)
		}
		s.Close(nil)
		if n := server.DeadLetterCount(bus.ErrUnknownType); n < 2 {
			t.Fatalf("%d dead letters of unknown types on the server, want 2", n)
		}
	})
}

// A peer that lies about a stream: items beyond the window granted close
// its link (dead-lettered with the overflow); a grant beyond the largest
// window closes it too; items for a stream the link does not carry (one
// that never was, or one that runs on another link) are dead letters and
// change nothing else.
func TestStreamLyingPeer(t *testing.T) {
	pair := func(t *testing.T) (server, client *bus.Bus, st, ct *spyTransport) {
		st = newSpy(netbus.Config{Listen: []string{"tcp://127.0.0.1:0"}})
		server = linkedBus(t, bus.WithName("server"), bus.WithTransport(st), bus.WithStreamWindow(8))
		ct = newSpy(netbus.Config{Peers: st.Addrs()})
		client = linkedBus(t, bus.WithName("client"), bus.WithTransport(ct))
		return server, client, st, ct
	}
	sink := func(t *testing.T, server, client *bus.Bus) <-chan *bus.Stream {
		streams := make(chan *bus.Stream, 1)
		accept(t, server, client, "sink", func(s *bus.Stream) { streams <- s; <-s.Context().Done() })
		return streams
	}

	t.Run("items beyond the window", func(t *testing.T) {
		server, client, _, ct := pair(t)
		streams := sink(t, server, client)
		liar := <-ct.links
		ctx := testCtx(t)
		s, err := client.OpenStream(ctx, "sink", nil)
		if err != nil {
			t.Fatal(err)
		}
		srv := <-streams
		const window = 8
		for i := range window + 1 {
			if err := forge(t, client, liar, &bus.Envelope{Kind: bus.KindStreamItem, Corr: bus.StreamID(s), Msg: i}); err != nil {
				t.Fatalf("item %d: %v", i, err)
			}
		}
		linkClosed(t, client, liar)
		if n := srv.Buffered(); n != window {
			t.Fatalf("the reading end holds %d items, want the window, %d", n, window)
		}
		if _, err := s.Recv(ctx); !errors.Is(err, bus.ErrPeerGone) {
			t.Fatalf("the liar's end: %v, want ErrPeerGone", err)
		}
		eventually(t, "the overflow dead-lettered", func() error {
			if server.DeadLetterCount(bus.ErrBadEnvelope) == 0 {
				return errors.New("none")
			}
			return nil
		})
		for range window {
			if _, err := srv.Recv(ctx); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := srv.Recv(ctx); !errors.Is(err, bus.ErrPeerGone) || !errors.Is(err, flow.ErrOverflow) {
			t.Fatalf("the honest end: %v, want ErrPeerGone with the overflow", err)
		}
	})

	t.Run("grant beyond a window", func(t *testing.T) {
		server, client, st, _ := pair(t)
		streams := sink(t, server, client)
		liar := <-st.links
		ctx := testCtx(t)
		s, err := client.OpenStream(ctx, "sink", nil)
		if err != nil {
			t.Fatal(err)
		}
		<-streams
		env := &bus.Envelope{Kind: bus.KindSystem, Msg: bus.ForgedStreamGrant(bus.StreamID(s), math.MaxUint64)}
		if err := forge(t, server, liar, env); err != nil {
			t.Fatal(err)
		}
		linkClosed(t, server, liar)
		if _, err := s.Recv(ctx); !errors.Is(err, bus.ErrPeerGone) {
			t.Fatalf("recv: %v, want ErrPeerGone", err)
		}
	})

	t.Run("items of no stream on the link", func(t *testing.T) {
		server, client, st, ct := pair(t)
		streams := sink(t, server, client)
		liar := <-ct.links
		// A third node, linked to the server, knows the client's stream id.
		third := linkedBus(t, bus.WithName("third"), bus.WithTransport(newSpy(netbus.Config{Peers: st.Addrs()})))
		waitFor(t, third, "sink")
		ctx := testCtx(t)
		s, err := client.OpenStream(ctx, "sink", nil)
		if err != nil {
			t.Fatal(err)
		}
		srv := <-streams
		before := server.DeadLetterCount(bus.ErrNoRoute)
		if err := forge(t, client, liar, &bus.Envelope{Kind: bus.KindStreamItem, Corr: bus.StreamID(s) + 1, Msg: "nobody's"}); err != nil {
			t.Fatal(err)
		}
		// The third node's own link to the server carries the item.
		thirdLink := linkTo(t, third, server.NodeID())
		if err := forge(t, third, thirdLink, &bus.Envelope{Kind: bus.KindStreamItem, Corr: bus.StreamID(s), Msg: "not yours"}); err != nil {
			t.Fatal(err)
		}
		eventuallyCount(t, "both dead-lettered", before+2, func() uint64 { return server.DeadLetterCount(bus.ErrNoRoute) })
		if err := s.Send(ctx, "mine"); err != nil {
			t.Fatal(err)
		}
		if m, err := srv.Recv(ctx); err != nil || m != "mine" {
			t.Fatalf("the stream after the stray items: %v, %v", m, err)
		}
	})
}

// linkTo returns b's link to node, waiting for it.
func linkTo(t *testing.T, b *bus.Bus, node bus.NodeID) bus.Link {
	t.Helper()
	var l bus.Link
	eventually(t, "a link", func() error {
		if l = bus.LinkTo(b, node); l == nil {
			return fmt.Errorf("no link to %s", node.Short())
		}
		return nil
	})
	return l
}
