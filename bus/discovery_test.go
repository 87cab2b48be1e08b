package bus_test

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/xbus-dev/xbus/bus"
	"github.com/xbus-dev/xbus/bus/bustest"
	"github.com/xbus-dev/xbus/netbus"
)

// handle is a discovery source the test drives by hand: it keeps the
// bus's Discovered and reports what the test tells it to.
type handle struct {
	d      bus.Discovered
	closed bool
}

func (h *handle) Start(_ context.Context, d bus.Discovered) error { h.d = d; return nil }
func (h *handle) Close() error                                    { h.closed = true; return nil }

// discoveredBus is a bus on TCP and Unix sockets driven by a handle.
func discoveredBus(t *testing.T, listen ...string) (*bus.Bus, *handle) {
	t.Helper()
	h := &handle{}
	b := linkedBus(t, bus.WithTransport(netbus.New(netbus.Config{Listen: listen})), bus.WithDiscovery(h))
	return b, h
}

// A node a source finds is linked through its nearest address, its names
// are reachable, and Lost stops keeping it linked.
func TestDiscoveryFoundLinksNearest(t *testing.T) {
	sock := "unix://" + filepath.Join(t.TempDir(), "srv.sock")
	srv, _ := discoveredBus(t, "127.0.0.1:0", sock)
	if _, err := srv.Register("svc", replier("hi")); err != nil {
		t.Fatal(err)
	}
	self := srv.Self()
	if self.ID != srv.NodeID() || !slices.Contains(self.Names, "svc") || !slices.Contains(self.Addrs, sock) || len(self.Addrs) != 2 {
		t.Fatalf("Self = %+v", self)
	}
	cli, h := discoveredBus(t)
	h.d.Found(self)
	bustest.WaitLinks(t, cli, "linked through the unix address", func(ls []bus.LinkInfo) bool { return bustest.Kept(ls, sock) })
	for _, l := range cli.Links() {
		if l.Addr != "" && l.Addr != sock {
			t.Fatalf("linked %s besides the nearest address", l.Addr)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if r, err := cli.Ask(ctx, "svc", "x"); err != nil || r != "hi" {
		t.Fatalf("ask = %v, %v", r, err)
	}
	h.d.Lost(bus.NodeInfo{ID: srv.NodeID()})
	bustest.WaitLinks(t, cli, "forgotten", func(ls []bus.LinkInfo) bool { return !bustest.Kept(ls, sock) })
}

// A same-host address of a node on another host is not dialed: only its
// TCP address is.
func TestDiscoveryOtherHostSkipsLocalSchemes(t *testing.T) {
	sock := "unix://" + filepath.Join(t.TempDir(), "srv.sock")
	srv, _ := discoveredBus(t, "127.0.0.1:0", sock)
	self := srv.Self()
	self.Host = "another-" + self.Host
	var tcp string
	for _, a := range self.Addrs {
		if a != sock {
			tcp = a
		}
	}
	cli, h := discoveredBus(t)
	h.d.Found(self)
	bustest.WaitLinks(t, cli, "linked through tcp", func(ls []bus.LinkInfo) bool { return bustest.Kept(ls, tcp) })
	if bustest.Kept(cli.Links(), sock) {
		t.Fatalf("dialed a unix address of another host: %+v", cli.Links())
	}
}

// A name learned through discovery before its node is up is known, not
// linked: an Ask to it waits for the link, bounded by its ctx, and is
// answered once the node comes up.
func TestDiscoveryKnownNameLinksOnDemand(t *testing.T) {
	sock := "unix://" + filepath.Join(t.TempDir(), "late.sock")
	cli, h := discoveredBus(t)
	h.d.Found(bus.NodeInfo{Addrs: []string{sock}, Names: []string{"late"}})

	// Nobody listens yet: the ask fails when its ctx ends, with ErrNoRoute.
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	_, err := cli.Ask(ctx, "late", "x")
	cancel()
	if !errors.Is(err, bus.ErrNoRoute) || !errors.Is(err, bus.ErrDeadline) {
		t.Fatalf("ask before the node is up = %v, want ErrNoRoute and ErrDeadline", err)
	}
	// A name nobody reported fails at once, as before.
	if _, err := cli.Ask(context.Background(), "unknown", "x"); !errors.Is(err, bus.ErrNoRoute) || errors.Is(err, bus.ErrDeadline) {
		t.Fatalf("ask to an unknown name = %v", err)
	}

	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		r, err := cli.Ask(ctx, "late", "x")
		if err == nil && r != "late" {
			err = errors.New("wrong reply")
		}
		done <- err
	}()
	srv, _ := discoveredBus(t, sock)
	if _, err := srv.Register("late", replier("late")); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("ask waiting for the link: %v", err)
	}
}

// A report with a TTL that is not renewed expires: the node is no longer
// kept linked and its names are no longer known.
func TestDiscoveryTTLExpires(t *testing.T) {
	sock := "unix://" + filepath.Join(t.TempDir(), "srv.sock")
	srv, _ := discoveredBus(t, sock)
	cli, h := discoveredBus(t)
	info := srv.Self()
	info.Names = []string{"ghost"}
	info.TTL = 50 * time.Millisecond
	h.d.Found(info)
	bustest.WaitLinks(t, cli, "linked", func(ls []bus.LinkInfo) bool { return bustest.Kept(ls, sock) })
	bustest.WaitLinks(t, cli, "expired", func(ls []bus.LinkInfo) bool { return !bustest.Kept(ls, sock) })
	if _, err := cli.Ask(context.Background(), "ghost", "x"); !errors.Is(err, bus.ErrNoRoute) || errors.Is(err, bus.ErrDeadline) {
		t.Fatalf("ask to an expired node's name = %v, want ErrNoRoute at once", err)
	}
}

// Changed fires when a name is registered or stops; Self follows.
func TestDiscoverySelfChanged(t *testing.T) {
	b, h := discoveredBus(t)
	ch := h.d.Changed()
	ref, err := b.Register("n1", replier("x"))
	if err != nil {
		t.Fatal(err)
	}
	<-ch
	if got := h.d.Self().Names; !slices.Equal(got, []string{"n1"}) {
		t.Fatalf("names = %v", got)
	}
	ch = h.d.Changed()
	if err := b.Stop(ref); err != nil {
		t.Fatal(err)
	}
	<-ch
	for len(h.d.Self().Names) != 0 {
		time.Sleep(time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := b.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if !h.closed {
		t.Fatal("Close did not close the discovery source")
	}
}

// Reports a source makes of this node itself, of garbage addresses or of
// nothing at all are ignored; none panics.
func TestDiscoveryIgnoresSelfAndGarbage(t *testing.T) {
	sock := "unix://" + filepath.Join(t.TempDir(), "me.sock")
	b, h := discoveredBus(t, sock)
	h.d.Found(b.Self())
	h.d.Found(bus.NodeInfo{Addrs: []string{sock}})
	h.d.Found(bus.NodeInfo{})
	h.d.Found(bus.NodeInfo{Addrs: []string{"gopher://x", "", "::::", "no-port"}, Names: []string{""}})
	h.d.Lost(bus.NodeInfo{})
	h.d.Lost(bus.NodeInfo{Addrs: []string{"nowhere"}})
	for _, l := range b.Links() {
		t.Errorf("linked from garbage or itself: %+v", l)
	}
}

// On fake time: a report's TTL runs from its last refresh; once it runs
// out the node is no longer kept linked and its names are no longer known.
// Meanwhile an ask to a known name waits for the link until its ctx ends.
func TestDiscoveryTTLSchedule(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		d := &scriptDialer{peer: bus.NewNodeID(), script: []error{nil, nil}}
		h := &handle{}
		b, err := bus.New(bus.WithTransport(d), bus.WithDiscovery(h), bus.WithLogger(quiet))
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close(context.Background())
		info := bus.NodeInfo{ID: d.peer, Addrs: []string{"fake://a"}, Names: []string{"n"}, TTL: 10 * time.Second}
		h.d.Found(info)
		synctest.Wait()
		if !bustest.Kept(b.Links(), "fake://a") {
			t.Fatalf("found node not kept: %+v", b.Links())
		}

		// The fake link carries no names: the ask waits its full second.
		start := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err = b.Ask(ctx, "n", "x")
		cancel()
		if !errors.Is(err, bus.ErrNoRoute) || !errors.Is(err, bus.ErrDeadline) || time.Since(start) != time.Second {
			t.Fatalf("ask to a known name = %v after %v, want ErrNoRoute and ErrDeadline after 1s", err, time.Since(start))
		}

		time.Sleep(8 * time.Second)
		h.d.Found(info) // refreshed at 9 s: now good until 19 s
		time.Sleep(8 * time.Second)
		synctest.Wait()
		if !bustest.Kept(b.Links(), "fake://a") {
			t.Fatal("a refreshed node expired on its first report's TTL")
		}
		time.Sleep(3 * time.Second)
		synctest.Wait()
		if bustest.Kept(b.Links(), "fake://a") {
			t.Fatalf("node still kept %v after its last report with a TTL of 10s: %+v", 11*time.Second, b.Links())
		}
		if _, err := b.Ask(context.Background(), "n", "x"); !errors.Is(err, bus.ErrNoRoute) || errors.Is(err, bus.ErrDeadline) {
			t.Fatalf("ask to an expired node's name = %v, want ErrNoRoute at once", err)
		}
	})
}

// A found node whose nearest address keeps failing, or refuses, gets its
// next-nearest linked too; a refresh of the same report keeps that; the
// node's names are reached.
func TestDiscoveryFallsBackToTheNextScheme(t *testing.T) {
	dir := t.TempDir()
	srv := linkedBus(t, bus.WithTransport(netbus.New(netbus.Config{Listen: []string{"127.0.0.1:0"}, Secret: []byte("right secret")})))
	if _, err := srv.Register("svc", replier("hi")); err != nil {
		t.Fatal(err)
	}
	var tcp string
	for _, a := range srv.Self().Addrs {
		tcp = a
	}
	// A Unix socket nobody listens on, and one whose node refuses this
	// bus's secret.
	dead := "unix://" + filepath.Join(dir, "nobody.sock")
	refusing := "unix://" + filepath.Join(dir, "refusing.sock")
	linkedBus(t, bus.WithTransport(netbus.New(netbus.Config{Listen: []string{refusing}, Secret: []byte("wrong secret")})))

	for _, near := range []string{dead, refusing} {
		h := &handle{}
		cli := linkedBus(t, bus.WithTransport(netbus.New(netbus.Config{Secret: []byte("right secret")})),
			bus.WithDiscovery(h), bus.WithBackoff(time.Millisecond, 5*time.Millisecond))
		info := bus.NodeInfo{ID: srv.NodeID(), Addrs: []string{tcp, near}, Names: []string{"svc"}}
		h.d.Found(info)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		r, err := cli.Ask(ctx, "svc", "x")
		cancel()
		if err != nil || r != "hi" {
			t.Fatalf("near %s: ask = %v, %v", near, r, err)
		}
		h.d.Found(info)
		if ls := cli.Links(); !bustest.Kept(ls, tcp) || !bustest.Kept(ls, near) && near == dead {
			t.Fatalf("near %s: after a refresh links are %+v, want the tcp address kept beside it", near, ls)
		}
	}
}

// Two nodes that find each other end with one link: the second to find the
// other, already linked to it as near as it would dial, does not dial.
func TestDiscoveryMutualFindOneLink(t *testing.T) {
	dir := t.TempDir()
	a, ha := discoveredBus(t, "unix://"+filepath.Join(dir, "a.sock"))
	b, hb := discoveredBus(t, "unix://"+filepath.Join(dir, "b.sock"))
	ha.d.Found(b.Self())
	bustest.WaitLinks(t, b, "a's link up at b", func(ls []bus.LinkInfo) bool {
		return len(ls) == 1 && ls[0].State == bus.LinkReady && ls[0].Peer == a.NodeID()
	})
	hb.d.Found(a.Self())
	if ls := b.Links(); len(ls) != 1 || ls[0].Addr != "" {
		t.Fatalf("b dialed a though a's link was up: %+v", ls)
	}
	// When that link goes, the next report after it links it from this
	// side (a source reports again on its schedule; here on each poll).
	// (Forget acts on what a holds once its dial has returned.)
	bustest.WaitLinks(t, a, "a's link up at a", func(ls []bus.LinkInfo) bool {
		return len(ls) == 1 && ls[0].State == bus.LinkReady && ls[0].Peer == b.NodeID()
	})
	a.Forget(b.NodeID())
	for range 2000 {
		hb.d.Found(a.Self())
		if bustest.Kept(b.Links(), a.Self().Addrs[0]) {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("b never dialed a: links at b %+v, at a %+v", b.Links(), a.Links())
}
