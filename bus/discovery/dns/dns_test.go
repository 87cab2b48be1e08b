package dns_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/dns/dnsmessage"

	"github.com/xbus-dev/xbus/bus"
	"github.com/xbus-dev/xbus/bus/bustest"
	"github.com/xbus-dev/xbus/bus/discovery/dns"
	"github.com/xbus-dev/xbus/netbus"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// How the test's DNS server answers.
const (
	answer   = iota // from its zone
	garbage         // bytes that are not a DNS message
	silent          // nothing at all
	servfail        // SERVFAIL
	flood           // more A records than fit a UDP answer
	wrongID         // a good answer under another message id
)

type srv struct {
	target string
	port   uint16
}

// server is a DNS server on UDP 127.0.0.1:0 answering from a zone the test
// changes as it goes.
type server struct {
	pc net.PacketConn

	mu   sync.Mutex
	mode int
	srv  map[string][]srv
	a    map[string][]netip.Addr
	n    int // queries served
}

func startServer(t *testing.T) *server {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &server{pc: pc, srv: map[string][]srv{}, a: map[string][]netip.Addr{}}
	done := make(chan struct{})
	t.Cleanup(func() { pc.Close(); <-done })
	go func() {
		defer close(done)
		buf := make([]byte, 65536)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			if out := s.reply(buf[:n]); out != nil {
				pc.WriteTo(out, from)
			}
		}
	}()
	return s
}

func (s *server) queries() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.n
}

func (s *server) set(f func(s *server)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(s)
}

// resolver points a net.Resolver at the server.
func (s *server) resolver() *net.Resolver {
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "udp", s.pc.LocalAddr().String())
	}}
}

func (s *server) reply(req []byte) []byte {
	var p dnsmessage.Parser
	h, err := p.Start(req)
	if err != nil {
		return nil
	}
	q, err := p.Question()
	if err != nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.n++
	switch s.mode {
	case garbage:
		return []byte("\x12\x34 this is not a DNS message at all")
	case silent:
		return nil
	case wrongID:
		h.ID++
	}
	rh := dnsmessage.Header{ID: h.ID, Response: true, Authoritative: true, RecursionDesired: h.RecursionDesired, RecursionAvailable: true}
	if s.mode == servfail {
		rh.RCode = dnsmessage.RCodeServerFailure
	}
	b := dnsmessage.NewBuilder(nil, rh)
	b.EnableCompression()
	b.StartQuestions()
	b.Question(q)
	b.StartAnswers()
	name := q.Name.String()
	rr := dnsmessage.ResourceHeader{Name: q.Name, Class: dnsmessage.ClassINET, TTL: 1}
	if s.mode == flood && q.Type == dnsmessage.TypeA {
		for i := range 3000 {
			b.AResource(rr, dnsmessage.AResource{A: [4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}})
		}
	} else if s.mode != servfail {
		switch q.Type {
		case dnsmessage.TypeSRV:
			for _, r := range s.srv[name] {
				b.SRVResource(rr, dnsmessage.SRVResource{Target: dnsmessage.MustNewName(r.target), Port: r.port, Weight: 1})
			}
		case dnsmessage.TypeA:
			for _, ip := range s.a[name] {
				if ip.Is4() {
					b.AResource(rr, dnsmessage.AResource{A: ip.As4()})
				}
			}
		case dnsmessage.TypeAAAA:
			for _, ip := range s.a[name] {
				if ip.Is6() {
					b.AAAAResource(rr, dnsmessage.AAAAResource{AAAA: ip.As16()})
				}
			}
		}
	}
	out, err := b.Finish()
	if err != nil {
		return nil
	}
	return out
}

func serve(t *testing.T, name string) (string, uint16) {
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
	addr := tr.Addrs()[0]
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(addr, "tcp://"))
	p, _ := strconv.Atoi(port)
	return addr, uint16(p)
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

const srvName = "_xbus._tcp.test."

// Nodes named by SRV records are linked; a record that goes away is
// unlinked at the next refresh; plain host names work beside SRV.
func TestSRVFoundAndRefreshed(t *testing.T) {
	aAddr, aPort := serve(t, "a")
	bAddr, bPort := serve(t, "b")
	cAddr, cPort := serve(t, "c")
	s := startServer(t)
	lo := netip.MustParseAddr("127.0.0.1")
	s.set(func(s *server) {
		s.srv[srvName] = []srv{{"n1.test.", aPort}, {"n2.test.", bPort}, {"n0.test.", 0}}
		s.a["n1.test."] = []netip.Addr{lo}
		s.a["n2.test."] = []netip.Addr{lo}
		s.a["c.test."] = []netip.Addr{lo}
	})
	src := dns.New(dns.Config{SRV: []string{srvName}, Hosts: []string{"c.test.:" + strconv.Itoa(int(cPort))},
		Refresh: 20 * time.Millisecond, Resolver: s.resolver()})
	cli := bustest.NewBus(t, netbus.New(netbus.Config{}), bus.WithLogger(quiet), bus.WithDiscovery(src))
	ask(t, cli, "a")
	ask(t, cli, "b")
	ask(t, cli, "c")
	if got, want := src.Addrs(), slices.Sorted(slices.Values([]string{aAddr, bAddr, cAddr})); !slices.Equal(got, want) {
		t.Fatalf("Addrs = %v, want %v (the SRV record with port 0 left out)", got, want)
	}

	s.set(func(s *server) { s.srv[srvName] = []srv{{"n1.test.", aPort}} })
	bustest.WaitLinks(t, cli, "b unlinked", func(ls []bus.LinkInfo) bool {
		return !bustest.Kept(ls, bAddr) && bustest.Kept(ls, aAddr) && bustest.Kept(ls, cAddr)
	})
}

// A and AAAA answers both count; unspecified and multicast addresses do not.
func TestLookupAddresses(t *testing.T) {
	s := startServer(t)
	s.set(func(s *server) {
		s.a["h.test."] = []netip.Addr{netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("fd00::1"),
			netip.MustParseAddr("0.0.0.0"), netip.MustParseAddr("224.0.0.1")}
	})
	src := dns.New(dns.Config{Hosts: []string{"h.test.:7400"}, Resolver: s.resolver()})
	got, err := src.Lookup(context.Background())
	if want := []string{"tcp://10.0.0.1:7400", "tcp://[fd00::1]:7400"}; err != nil || !slices.Equal(got, want) {
		t.Fatalf("Lookup = %v, %v; want %v", got, err, want)
	}
}

// Hostile or failing answers: an error, never a crash or a hang, and the
// addresses of the last good answer stay linked.
func TestHostileAnswers(t *testing.T) {
	aAddr, aPort := serve(t, "a")
	s := startServer(t)
	s.set(func(s *server) {
		s.srv[srvName] = []srv{{"n1.test.", aPort}}
		s.a["n1.test."] = []netip.Addr{netip.MustParseAddr("127.0.0.1")}
	})
	src := dns.New(dns.Config{SRV: []string{srvName}, Refresh: 10 * time.Millisecond, Timeout: 300 * time.Millisecond, Resolver: s.resolver()})
	cli := bustest.NewBus(t, netbus.New(netbus.Config{}), bus.WithLogger(quiet), bus.WithDiscovery(src))
	ask(t, cli, "a")
	for mode, what := range map[int]string{garbage: "garbage", silent: "silence", servfail: "SERVFAIL", wrongID: "a wrong id"} {
		s.set(func(s *server) { s.mode, s.n = mode, 0 })
		start := time.Now()
		_, err := src.Lookup(context.Background())
		if err == nil {
			t.Errorf("%s: Lookup succeeded", what)
		}
		if d := time.Since(start); d > 30*time.Second {
			t.Errorf("%s: Lookup took %v", what, d)
		}
		// Several refreshes meet the same answer; the link stays.
		for s.queries() <= 6 {
			time.Sleep(5 * time.Millisecond)
		}
		if got := src.Addrs(); !slices.Equal(got, []string{aAddr}) {
			t.Errorf("%s: Addrs = %v, want the last good answer", what, got)
		}
		if !bustest.Kept(cli.Links(), aAddr) {
			t.Errorf("%s: the last good answer's node was unlinked", what)
		}
	}
	// More records than a UDP answer holds: an error or at most the bound,
	// never a crash.
	s.set(func(s *server) { s.mode, s.srv[srvName] = flood, []srv{{"n1.test.", aPort}} })
	got, err := src.Lookup(context.Background())
	if err == nil && len(got) > 1024 {
		t.Fatalf("flood: %d addresses", len(got))
	}
	t.Logf("flood: %d addresses, %v", len(got), err)
}

func TestConfigRefused(t *testing.T) {
	for _, cfg := range []dns.Config{{}, {Hosts: []string{"nohost"}}, {Hosts: []string{"h:0"}}, {Hosts: []string{"h:99999"}}} {
		_, err := bus.New(bus.WithLogger(quiet), bus.WithDiscovery(dns.New(cfg)))
		if err == nil {
			t.Errorf("%+v: accepted", cfg)
		} else if !strings.Contains(err.Error(), "dns:") {
			t.Errorf("%+v: %v", cfg, err)
		}
	}
}
