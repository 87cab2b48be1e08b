package bus_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/xbus-dev/xbus/bus"
	"github.com/xbus-dev/xbus/bus/bustest"
	"github.com/xbus-dev/xbus/bus/internal/backoff"
	"github.com/xbus-dev/xbus/codec"
	"github.com/xbus-dev/xbus/netbus"
)

// scriptDialer is a transport whose dials follow a script: each entry is the
// error of one attempt, nil for a link that comes up. It records when each
// dial happened. Its links go down when the test (or the bus) closes them.
type scriptDialer struct {
	mu     sync.Mutex
	host   bus.Host
	script []error
	dials  []time.Time
	peer   bus.NodeID
	links  []*scriptLink
}

type scriptLink struct {
	d    *scriptDialer
	once sync.Once
}

func (l *scriptLink) Peer() bus.NodeID                          { return l.d.peer }
func (l *scriptLink) Locality() bus.Locality                    { return bus.Remote }
func (l *scriptLink) Scheme() string                            { return "fake" }
func (l *scriptLink) Codec() bus.Codec                          { return codec.Binary() }
func (l *scriptLink) Send(context.Context, *bus.Envelope) error { return nil }
func (l *scriptLink) Close(err error)                           { l.once.Do(func() { l.d.host.LinkDown(l, err) }) }
func (d *scriptDialer) Schemes() []string                       { return []string{"fake"} }
func (d *scriptDialer) Start(h bus.Host) error                  { d.host = h; return nil }
func (d *scriptDialer) Close(context.Context) error             { return nil }
func (d *scriptDialer) attempts() int                           { d.mu.Lock(); defer d.mu.Unlock(); return len(d.dials) }
func (d *scriptDialer) last() *scriptLink {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.links[len(d.links)-1]
}
func (d *scriptDialer) times() []time.Time {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]time.Time(nil), d.dials...)
}
func (d *scriptDialer) Dial(_ context.Context, addr string) (bus.Link, error) {
	d.mu.Lock()
	d.dials = append(d.dials, time.Now())
	var err error
	if len(d.script) > 0 {
		err, d.script = d.script[0], d.script[1:]
	} else {
		err = errors.New("script ran out")
	}
	if err != nil {
		d.mu.Unlock()
		return nil, err
	}
	l := &scriptLink{d: d}
	d.links = append(d.links, l)
	d.mu.Unlock()
	d.host.LinkUp(l)
	return l, nil
}

// logRecords is a slog handler that keeps every record's level and message.
type logRecords struct {
	mu  sync.Mutex
	got []string
}

func (h *logRecords) Enabled(context.Context, slog.Level) bool { return true }
func (h *logRecords) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *logRecords) WithGroup(string) slog.Handler            { return h }
func (h *logRecords) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	h.got = append(h.got, r.Level.String()+" "+r.Message)
	h.mu.Unlock()
	return nil
}

func (h *logRecords) has(want string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, g := range h.got {
		if g == want {
			return true
		}
	}
	return false
}

// The keeper redials a failing address on the backoff schedule (each delay
// within the bounds of equal jitter, growing to the cap), relinks after a
// link drops, and stops for good at a refusal, which Links, the events and
// the log all show.
func TestKeeperSchedule(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lo, hi := 100*time.Millisecond, 2*time.Second
		transient := errors.New("connection refused")
		refusal := fmt.Errorf("%w: wrong secret", bus.ErrRefused)
		d := &scriptDialer{peer: bus.NewNodeID()}
		for range 8 {
			d.script = append(d.script, transient)
		}
		d.script = append(d.script, nil, transient, refusal)
		var mu sync.Mutex
		var events []bus.LinkInfo
		logs := &logRecords{}
		b, err := bus.New(bus.WithTransport(d), bus.WithBackoff(lo, hi), bus.WithLogger(slog.New(logs)),
			bus.WithPeers("fake://a"), bus.WithLinkEvents(func(i bus.LinkInfo) {
				mu.Lock()
				events = append(events, i)
				mu.Unlock()
			}))
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close(context.Background())

		time.Sleep(time.Minute)
		synctest.Wait()
		if n := d.attempts(); n != 9 {
			t.Fatalf("%d dials before the link came up, want 9", n)
		}
		at := d.times()
		for i := 1; i < len(at); i++ {
			least, most := backoff.Bounds(i-1, lo, hi)
			if gap := at[i].Sub(at[i-1]); gap < least || gap > most {
				t.Errorf("dial %d came %v after the one before, want %v..%v", i, gap, least, most)
			}
		}
		ls := b.Links()
		if len(ls) != 1 || ls[0].State != bus.LinkReady || ls[0].Addr != "fake://a" || ls[0].Peer != d.peer {
			t.Fatalf("links %+v, want one ready link on fake://a", ls)
		}

		// The peer drops the link: one quick redial, then the refusal stops it.
		start := time.Now()
		d.last().Close(errors.New("peer went away"))
		time.Sleep(time.Hour)
		synctest.Wait()
		at = d.times()
		if len(at) != 11 {
			t.Fatalf("%d dials after the drop and the refusal, want 11 (no dial after a refusal)", len(at))
		}
		if least, most := backoff.Bounds(0, lo, hi); at[9].Sub(start) < least || at[9].Sub(start) > most {
			t.Errorf("first redial after a drop came after %v, want %v..%v", at[9].Sub(start), least, most)
		}
		ls = b.Links()
		if len(ls) != 1 || ls[0].State != bus.LinkRefused || !errors.Is(ls[0].Err, bus.ErrRefused) || ls[0].Attempts != 2 {
			t.Fatalf("after the refusal: %+v", ls)
		}

		mu.Lock()
		var states []string
		for _, e := range events {
			if e.Addr != "" {
				states = append(states, e.State.String())
			}
		}
		mu.Unlock()
		want := strings.Repeat("dialing ", 8) + "ready closed dialing dialing refused" // the link's end, then the address's
		if got := strings.Join(states, " "); got != want {
			t.Errorf("address events:\n got %s\nwant %s", got, want)
		}
		for _, w := range []string{"INFO link up", "WARN link down", "INFO dial failed; retrying", "WARN link refused; not dialing again"} {
			if !logs.has(w) {
				t.Errorf("no %q in the log: %q", w, logs.got)
			}
		}
	})
}

// Disconnect closes the address's link (logged at Info: this node closed
// it) and stops dialing; Close stops every keeper.
func TestDisconnectStopsDialing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		d := &scriptDialer{peer: bus.NewNodeID(), script: []error{nil, nil, nil}}
		logs := &logRecords{}
		b, err := bus.New(bus.WithTransport(d), bus.WithLogger(slog.New(logs)))
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close(context.Background())
		if err := b.Connect("fake://a"); err != nil {
			t.Fatal(err)
		}
		if err := b.Connect("fake://a"); err != nil { // already kept: nothing happens
			t.Fatal(err)
		}
		synctest.Wait()
		b.Disconnect("fake://a")
		time.Sleep(time.Minute)
		synctest.Wait()
		if n := d.attempts(); n != 1 {
			t.Fatalf("%d dials, want 1", n)
		}
		if ls := b.Links(); len(ls) != 0 {
			t.Fatalf("links after Disconnect: %+v", ls)
		}
		if !logs.has("INFO link down") || logs.has("WARN link down") {
			t.Fatalf("a link this node closed is logged at Info: %q", logs.got)
		}

		// Forget closes every link to the node and stops its addresses.
		b.Connect("fake://b")
		synctest.Wait()
		b.Forget(d.peer)
		time.Sleep(time.Minute)
		synctest.Wait()
		if n := d.attempts(); n != 2 || len(b.Links()) != 0 {
			t.Fatalf("after Forget: %d dials, links %+v", n, b.Links())
		}
	})
}

func TestConnectUnknownScheme(t *testing.T) {
	d := &scriptDialer{}
	b, err := bus.New(bus.WithTransport(d))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close(context.Background())
	for _, a := range []string{"shm:///tmp/x.sock", "nowhere", "unix:/x"} {
		if err := b.Connect(a); err == nil || !strings.Contains(err.Error(), "fake") {
			t.Errorf("Connect(%q): %v, want an error naming the schemes this bus dials", a, err)
		}
	}
	if _, err := bus.New(bus.WithTransport(&scriptDialer{}), bus.WithPeers("tcp://127.0.0.1:1")); err == nil {
		t.Error("New with a peer no transport dials: no error")
	}
	b.Close(context.Background())
	if err := b.Connect("fake://a"); !errors.Is(err, bus.ErrClosed) {
		t.Errorf("Connect after Close: %v", err)
	}
}

// Forget wins over a dial under way: an address connected just before its
// node is forgotten ends with no link and no keeper, whether Forget came
// before the dial started, during its handshake or after its link was up
// but before the dial returned; and the address is not dialed again.
func TestForgetDuringDial(t *testing.T) {
	sT := netbus.New(netbus.Config{Listen: []string{"unix://" + filepath.Join(t.TempDir(), "s.sock")}})
	s := linkedBus(t, bus.WithTransport(sT))
	addr := sT.Addrs()[0]
	c := linkedBus(t, bus.WithTransport(netbus.New(netbus.Config{})),
		bus.WithBackoff(time.Millisecond, 5*time.Millisecond))
	none := func(ls []bus.LinkInfo) bool { return len(ls) == 0 }
	deadline := time.Now().Add(2 * time.Second)
	rounds := 0
	for ; rounds < 200 && time.Now().Before(deadline); rounds++ {
		if err := c.Connect(addr); err != nil {
			t.Fatal(err)
		}
		for range rounds % 7 * 100 { // Forget lands at a different point of the dial each round
			runtime.Gosched()
		}
		c.Forget(s.NodeID())
		bustest.WaitLinks(t, c, fmt.Sprintf("round %d: no link and no kept address after Forget", rounds), none)
		bustest.WaitLinks(t, s, fmt.Sprintf("round %d: the server's end closed", rounds), none)
	}
	time.Sleep(20 * time.Millisecond) // many backoff periods: a keeper left would have dialed
	if ls := c.Links(); len(ls) != 0 {
		t.Fatalf("after %d rounds, links: %+v", rounds, ls)
	}
	if ls := s.Links(); len(ls) != 0 {
		t.Fatalf("after %d rounds, the server's links: %+v", rounds, ls)
	}
	t.Logf("%d rounds", rounds)
}
