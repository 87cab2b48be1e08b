package bus_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"sync"
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
	var armed atomic.Int32 // the kind of send armed, plus one
	var current bus.Link
	relinked := make(chan error, 1)
	relink := func(k bus.Kind) {
		if !armed.CompareAndSwap(int32(k)+1, 0) {
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

	armed.Store(int32(bus.KindTell) + 1)
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

	armed.Store(int32(bus.KindAsk) + 1)
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

// gatedTransport is a netbus transport whose links, as the bus sees them,
// note each send that must go inside the send gate of the peer record that
// took its link (must says which) and does not: a switch of that record to
// a nearer link would not wait for it.
type gatedTransport struct {
	*hookTransport
	links   chan bus.Link
	must    func(*bus.Envelope) bool
	outside chan string
	gates   sync.Map // *hookLink: the sends in the gate of the record that took it, a func() int64
}

func newGated(cfg netbus.Config, must func(*bus.Envelope) bool) *gatedTransport {
	g := &gatedTransport{hookTransport: newHookTransport(cfg), links: make(chan bus.Link, 8), must: must,
		outside: make(chan string, 16)}
	g.up = func(h bus.Host, l *hookLink) {
		g.gates.Store(l, bus.GateOf(h.(*bus.Bus), l.Peer()))
		g.links <- l
	}
	g.send = func(l *hookLink, ctx context.Context, env *bus.Envelope) error {
		if gate, ok := g.gates.Load(l); ok && g.must(env) && gate.(func() int64)() == 0 {
			select {
			case g.outside <- fmt.Sprintf("a %v envelope of type %q", env.Kind, env.Type):
			default:
			}
		}
		return l.Link.Send(ctx, env)
	}
	return g
}

// relinkRig is a client linked to a server over a Unix socket. Armed with
// a kind, the client's next send of that kind to the server, in its window
// (WithBeforeGate), closes
// the link in use, waits until the node is linked again under a new peer
// record, then runs then, before it goes on; relinked says how that went.
type relinkRig struct {
	server, client *bus.Bus
	gated          *gatedTransport
	armed          atomic.Int32 // the kind of send armed, plus one
	relinked       chan error
	current        bus.Link
	then           func() error
}

func newRelinkRig(t *testing.T, must func(*bus.Envelope) bool) *relinkRig {
	t.Helper()
	sock := "unix:" + filepath.Join(t.TempDir(), "s.sock")
	server, err := bus.New(bus.WithName("server"), bus.WithTransport(netbus.New(netbus.Config{Listen: []string{sock}})))
	if err != nil {
		t.Fatal(err)
	}
	r := &relinkRig{server: server, gated: newGated(netbus.Config{Peers: []string{sock}}, must), relinked: make(chan error, 1)}
	r.client, err = bus.New(bus.WithName("client"), bus.WithTransport(r.gated), bus.WithBackoff(time.Millisecond, 10*time.Millisecond), bus.WithBeforeGate(r.relink))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		r.client.Close(ctx)
		r.server.Close(ctx)
	})
	r.current = <-r.gated.links
	return r
}

// arm arms the next send of kind k.
func (r *relinkRig) arm(k bus.Kind) { r.armed.Store(int32(k) + 1) }

func (r *relinkRig) relink(k bus.Kind) {
	if !r.armed.CompareAndSwap(int32(k)+1, 0) {
		return
	}
	r.current.Close(errors.New("relink"))
	select {
	case r.current = <-r.gated.links:
	case <-time.After(10 * time.Second):
		r.relinked <- errors.New("the node never linked again")
		return
	}
	if r.then != nil {
		if err := r.then(); err != nil {
			r.relinked <- err
			return
		}
	}
	r.relinked <- nil
}

// waitRelinked waits until an armed send relinked the node in its window.
func (r *relinkRig) waitRelinked(t *testing.T) {
	t.Helper()
	select {
	case err := <-r.relinked:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("no send entered its window")
	}
}

// noneOutside fails t if a send that must go inside its record's gate did
// not.
func (r *relinkRig) noneOutside(t *testing.T) {
	t.Helper()
	select {
	case s := <-r.gated.outside:
		t.Fatalf("%s went out on a link outside the send gate of the peer record that took it", s)
	default:
	}
}

// within polls f for up to 10 s, for the hook, which cannot fail a test.
func within(what string, f func() bool) error {
	for range 1000 {
		if f() {
			return nil
		}
		time.Sleep(10 * time.Millisecond)
	}
	return errors.New(what)
}

// TestOpenStreamAcrossRelinkInItsWindow relinks the server's node at the
// exact moment a stream's open has read the server's link but not yet
// entered the peer's send gate. The open goes on the new peer's link inside
// that peer's gate (so a switch to a nearer link would wait for it), the
// stream opens once and carries items both ways.
func TestOpenStreamAcrossRelinkInItsWindow(t *testing.T) {
	r := newRelinkRig(t, func(env *bus.Envelope) bool {
		return env.Kind == bus.KindStreamItem && !env.To.Node.IsZero() // an open
	})
	var opens atomic.Int32
	accept(t, r.server, r.client, "echo", func(s *bus.Stream) {
		opens.Add(1)
		echoStream(s)
	})
	ctx := testCtx(t)
	r.arm(bus.KindStreamItem)
	s, err := r.client.OpenStream(ctx, "echo", "open")
	if err != nil {
		t.Fatalf("a stream opened across a relink in its window failed: %v", err)
	}
	r.waitRelinked(t)
	r.noneOutside(t)
	if err := s.Send(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if m, err := s.Recv(ctx); err != nil || m != 1 {
		t.Fatalf("recv: %v, %v; want 1", m, err)
	}
	s.CloseSend(nil)
	if _, err := s.Recv(ctx); !errors.Is(err, io.EOF) {
		t.Fatalf("after the last item: %v, want io.EOF", err)
	}
	if n := opens.Load(); n != 1 {
		t.Fatalf("the actor got %d streams, want 1", n)
	}
}

// TestPublishAcrossRelinkInItsWindow relinks the subscribing node at the
// exact moment a publish to its subscription is about to enter the peer's
// send gate. The old peer's credit and epoch ended with its links; the
// publish goes to the same subscription of the new peer record, on its
// link, inside its gate, and arrives once.
func TestPublishAcrossRelinkInItsWindow(t *testing.T) {
	r := newRelinkRig(t, func(env *bus.Envelope) bool { return env.Kind == bus.KindPublish })
	known := func() bool { subs, _ := bus.RemoteSubs(r.client); return subs == 1 }
	r.then = func() error { return within("the new peer record never learned the subscription", known) }
	ctx := testCtx(t)
	sub, err := r.server.Subscribe(ctx, "prices.>")
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "the client knows the subscription", func() error {
		if !known() {
			return errors.New("not yet")
		}
		return nil
	})
	r.arm(bus.KindPublish)
	if err := r.client.Publish("prices.eur", "moved"); err != nil {
		t.Fatalf("a publish across a relink in its window failed: %v", err)
	}
	r.waitRelinked(t)
	r.noneOutside(t)
	if err := r.client.Publish("prices.eur", "after"); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"moved", "after"} {
		m, err := sub.Next(ctx)
		if err != nil {
			t.Fatalf("waiting for %q: %v", want, err)
		}
		if m.Msg != want {
			t.Fatalf("got %v, want %q", m.Msg, want)
		}
	}
}

// TestNamesAcrossRelinkInItsWindow relinks the server's node at the exact
// moment the client's drainer is about to tell it of a new name. That
// drainer's peer record is gone: it sends nothing on the new record's link
// (whose own drainer sends the whole state, the name with it, inside its
// gate), rather than its old batch outside that gate.
func TestNamesAcrossRelinkInItsWindow(t *testing.T) {
	r := newRelinkRig(t, func(env *bus.Envelope) bool {
		return env.Kind == bus.KindSystem && env.Type == "xbus.names"
	})
	r.then = func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		return r.server.WaitFor(ctx, "late") // from the new record's reset
	}
	r.arm(bus.KindSystem)
	if _, err := r.client.Register("late", bus.ActorFunc(func(*bus.Context, any) error { return nil })); err != nil {
		t.Fatal(err)
	}
	r.waitRelinked(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := r.client.Close(ctx); err != nil { // waits for the old drainer
		t.Fatal(err)
	}
	r.noneOutside(t)
}
