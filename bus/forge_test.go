package bus_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/xbus-dev/xbus/bus"
	"github.com/xbus-dev/xbus/netbus"
)

// spyTransport wraps a netbus transport so that a test sees what the bus
// does not show: the links it brings up and the envelopes they deliver.
type spyTransport struct {
	*netbus.Transport
	links   chan bus.Link
	mu      sync.Mutex
	askCorr []uint64        // correlation ids of the asks delivered, as received
	timeout []time.Duration // their Timeout
	down    []bus.Link      // links reported down
}

func newSpy(cfg netbus.Config) *spyTransport {
	return &spyTransport{Transport: netbus.New(cfg), links: make(chan bus.Link, 8)}
}

func (s *spyTransport) Start(h bus.Host) error { return s.Transport.Start(&spyHost{h, s}) }

func (s *spyTransport) corrs() []uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]uint64(nil), s.askCorr...)
}

type spyHost struct {
	bus.Host
	s *spyTransport
}

func (h *spyHost) LinkUp(l bus.Link) {
	h.Host.LinkUp(l)
	h.s.links <- l
}

func (h *spyHost) LinkDown(l bus.Link, err error) {
	h.s.mu.Lock()
	h.s.down = append(h.s.down, l)
	h.s.mu.Unlock()
	h.Host.LinkDown(l, err)
}

// wentDown reports whether the transport reported l down.
func (s *spyTransport) wentDown(l bus.Link) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Contains(s.down, l)
}

func (h *spyHost) Deliver(l bus.Link, env *bus.Envelope) {
	if env.Kind == bus.KindAsk {
		h.s.mu.Lock()
		h.s.askCorr = append(h.s.askCorr, env.Corr)
		h.s.timeout = append(h.s.timeout, env.Timeout)
		h.s.mu.Unlock()
	}
	h.Host.Deliver(l, env)
}

// forge sends env on l, its Msg encoded with b's types in l's codec, as a
// lying peer would.
func forge(t *testing.T, b *bus.Bus, l bus.Link, env *bus.Envelope) error {
	body, err := b.Types().EncodeBody(l.Codec(), env, nil)
	if err != nil {
		t.Fatal(err)
	}
	env.Body = body
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return l.Send(ctx, env)
}

// linkClosed waits until l, a liar's link, takes no more envelopes.
func linkClosed(t *testing.T, b *bus.Bus, l bus.Link) {
	t.Helper()
	eventually(t, "the liar's link closed", func() error {
		if forge(t, b, l, &bus.Envelope{Kind: bus.KindTell, To: bus.Ref{Name: "nobody"}, Msg: 1}) == nil {
			return errors.New("still open")
		}
		return nil
	})
}

// TestForgedRepliesAreIgnored: node A asks node B; a third node C, linked
// to A too, sends A replies and errors with the very correlation ids of
// those asks (learned here by spying on B) and with guessed ones. None
// completes an ask: A accepts a reply only from the link its ask went on.
func TestForgedRepliesAreIgnored(t *testing.T) {
	newBus := func(name string, tr bus.Transport) *bus.Bus {
		return linkedBus(t, bus.WithName(name), bus.WithTransport(tr))
	}
	at := netbus.New(netbus.Config{Listen: []string{"tcp://127.0.0.1:0"}})
	a := newBus("a", at)
	bt := newSpy(netbus.Config{Peers: at.Addrs()})
	b := newBus("b", bt)
	ct := newSpy(netbus.Config{Peers: at.Addrs()})
	c := newBus("c", ct)
	forger := <-ct.links // C's link to A

	var mu sync.Mutex
	var held []*bus.Promise
	if _, err := b.Register("hold", bus.ActorFunc(func(ctx *bus.Context, msg any) error {
		if ctx.IsAsk() {
			mu.Lock()
			held = append(held, ctx.Promise())
			mu.Unlock()
		}
		return nil
	})); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Register("echo", bus.ActorFunc(echo)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, a, "hold")
	waitFor(t, c, "echo")

	const asks = 64
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	replies := make(chan any, asks)
	for range asks {
		go func() {
			r, err := a.Ask(ctx, "hold", "q")
			if err != nil {
				r = err
			}
			replies <- r
		}()
	}
	eventually(t, "B holds every ask", func() error {
		if n := len(bt.corrs()); n < asks {
			return fmt.Errorf("%d of %d asks arrived", n, asks)
		}
		return nil
	})

	types := bus.NewTypes()
	forge := func(kind bus.Kind, corr uint64, msg any) {
		env := &bus.Envelope{Kind: kind, Corr: corr, Msg: msg}
		body, err := types.EncodeBody(forger.Codec(), env, nil)
		if err != nil {
			t.Fatal(err)
		}
		env.Body = body
		if err := forger.Send(ctx, env); err != nil {
			t.Fatal(err)
		}
	}
	for _, corr := range bt.corrs() {
		forge(bus.KindReply, corr, "forged")
		forge(bus.KindError, corr, bus.ErrNoRoute)
	}
	for corr := range uint64(4096) { // sequential guesses
		forge(bus.KindReply, corr, "forged")
	}
	// Envelopes of one link arrive in order: once C's ask through it is
	// answered, A has seen every forgery.
	if _, err := c.Ask(ctx, "echo", "sync"); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-replies:
		t.Fatalf("an ask completed before B answered: %v", r)
	default:
	}
	mu.Lock()
	for _, p := range held {
		p.Reply("genuine")
	}
	mu.Unlock()
	for range asks {
		if r := <-replies; r != "genuine" {
			t.Fatalf("ask answered with %v, want B's genuine reply", r)
		}
	}
}

// TestDeadlineTravelsAsBudget: an ask's deadline crosses the link as the
// time it had left (never more than its ctx gave it), which the receiver
// turns into a deadline on its own clock; an ask whose time is up fails
// with ErrDeadline without being sent.
func TestDeadlineTravelsAsBudget(t *testing.T) {
	st := newSpy(netbus.Config{Listen: []string{"tcp://127.0.0.1:0"}})
	server, err := bus.New(bus.WithName("server"), bus.WithLogger(quiet), bus.WithTransport(st))
	if err != nil {
		t.Fatal(err)
	}
	client, err := bus.New(bus.WithName("client"), bus.WithLogger(quiet), bus.WithTransport(netbus.New(netbus.Config{Peers: st.Addrs()})))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		client.Close(ctx)
		server.Close(ctx)
	})
	if _, err := server.Register("when", bus.ActorFunc(func(c *bus.Context, msg any) error {
		if !c.IsAsk() {
			return nil
		}
		dl, ok := c.Deadline()
		if !ok {
			return c.Reply("none")
		}
		return c.Reply(time.Until(dl).String())
	})); err != nil {
		t.Fatal(err)
	}
	waitFor(t, client, "when")
	const budget = time.Hour
	ctx, cancel := context.WithTimeout(context.Background(), budget)
	defer cancel()
	r, err := client.Ask(ctx, "when", "?")
	if err != nil {
		t.Fatal(err)
	}
	left, err := time.ParseDuration(fmt.Sprint(r))
	if err != nil || left <= 0 || left > budget {
		t.Fatalf("the actor's deadline was %v away (%v), want within the asker's %v", r, err, budget)
	}
	st.mu.Lock()
	sent := st.timeout[len(st.timeout)-1]
	st.mu.Unlock()
	if sent <= 0 || sent > budget {
		t.Fatalf("the ask carried a timeout of %v, want the time left of %v", sent, budget)
	}
	if r, err := client.Ask(context.Background(), "when", "?"); err != nil || r != "none" {
		t.Fatalf("an ask without a deadline: %v, %v; want none", r, err)
	}

	expired, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel()
	asks := len(st.corrs())
	if _, err := client.Ask(expired, "when", "?"); !errors.Is(err, bus.ErrDeadline) {
		t.Fatalf("an ask whose time is up: %v, want ErrDeadline", err)
	}
	if _, err := client.Ask(context.Background(), "when", "?"); err != nil { // after it on the link, had it been sent
		t.Fatal(err)
	}
	if n := len(st.corrs()); n != asks+1 {
		t.Fatalf("%d asks reached the server, want %d: the expired one was sent", n, asks+1)
	}
}

// TestForgedSenderRefused: a peer speaks only for its own actors. Node C
// tells and asks A's actor in the name of an actor of node B (or of a name,
// with no node), as if B had sent them; A takes none of them, so its actor
// never answers or replies to B on C's word: each is a dead letter, the ask
// is refused, and C's link, whose peer lies, is closed. B's own messages
// go on.
func TestForgedSenderRefused(t *testing.T) {
	for _, kind := range []bus.Kind{bus.KindTell, bus.KindAsk} {
		for _, from := range []string{"another node's actor", "a name"} {
			t.Run(fmt.Sprintf("%v from %s", kind, from), func(t *testing.T) {
				at := netbus.New(netbus.Config{Listen: []string{"tcp://127.0.0.1:0"}})
				a := linkedBus(t, bus.WithName("a"), bus.WithTransport(at))
				b := linkedBus(t, bus.WithName("b"), bus.WithTransport(netbus.New(netbus.Config{Peers: at.Addrs()})))
				ct := newSpy(netbus.Config{Peers: at.Addrs()})
				c := linkedBus(t, bus.WithName("c"), bus.WithTransport(ct))
				forger := <-ct.links
				got := make(chan string, 4)
				if _, err := a.Register("svc", bus.ActorFunc(func(ctx *bus.Context, msg any) error {
					if m, ok := msg.(string); ok {
						got <- fmt.Sprintf("%s from %v", m, ctx.Sender())
					}
					return nil
				})); err != nil {
					t.Fatal(err)
				}
				bActor, err := b.Register("victim", bus.ActorFunc(func(*bus.Context, any) error { return nil }))
				if err != nil {
					t.Fatal(err)
				}
				waitFor(t, c, "svc")
				waitFor(t, b, "svc")
				forged := bActor
				if from == "a name" {
					forged = bus.Ref{Name: "victim"}
				}
				before := a.DeadLetterCount(bus.ErrBadEnvelope)
				env := &bus.Envelope{Kind: kind, From: forged, To: bus.Ref{Name: "svc"}, Corr: 7, Msg: "in B's name"}
				body, err := c.Types().EncodeBody(forger.Codec(), env, nil)
				if err != nil {
					t.Fatal(err)
				}
				env.Body = body
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				if err := forger.Send(ctx, env); err != nil {
					t.Fatal(err)
				}
				eventually(t, "the forgery dead-lettered", func() error {
					if a.DeadLetterCount(bus.ErrBadEnvelope) == before {
						return errors.New("not yet")
					}
					return nil
				})
				// The forger's own link, not a's link to c: c keeps a's
				// address and may have linked again by the time one looks.
				eventually(t, "the forger's link closed", func() error {
					if !ct.wentDown(forger) {
						return errors.New("still up")
					}
					return nil
				})
				if err := b.Tell(bus.Ref{Name: "svc"}, "genuine"); err != nil {
					t.Fatal(err)
				}
				select {
				case m := <-got:
					if !strings.HasPrefix(m, "genuine") {
						t.Fatalf("the actor took %q, want only B's genuine tell", m)
					}
				case <-ctx.Done():
					t.Fatal("B's genuine tell never arrived")
				}
				select {
				case m := <-got:
					t.Fatalf("a second message arrived: %q", m)
				default:
				}
			})
		}
	}
}
