package netbus

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/xbus-dev/xbus/bus"
	"github.com/xbus-dev/xbus/codec"
)

// Transport carries the bus between processes over TCP or Unix sockets. It
// implements bus.Transport and bus.Dialer; every link it establishes is a
// bus.Link.
//
// Goroutines: one accept loop per listener, one handshake goroutine per
// accepted connection, and a reader and a writer per connection. All are
// tracked by wg, as is every Dial in progress; Close waits for them. The bus
// dials and redials (bus.Connect); the transport never redials on its own.
type Transport struct {
	cfg  Config
	err  error // from validating the Config; returned by Start
	comp *compressor
	host bus.Host
	// batchHost is host when it takes envelopes in batches, else nil.
	batchHost bus.BatchHost
	log       *slog.Logger
	// version is the highest protocol version this node speaks (0:
	// maxVersion); tests set it lower to play an older node.
	version uint8

	ctx    context.Context // ends when Close begins
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu        sync.Mutex // guards the fields below
	started   bool
	closed    bool
	listeners []net.Listener
	links     map[*link]struct{}
	forming   map[formKey]*forming // accepted connections of links not yet complete

	settleMu     sync.Mutex // guards the fields below; never held with mu
	settle       map[bus.NodeID]*peerSettle
	settleClosed bool
	settleWG     sync.WaitGroup // hand-backs of records whose time is up
}

// formKey identifies a pooled link being assembled on the accepting side.
type formKey struct {
	peer bus.NodeID
	id   uint64
}

type forming struct {
	conns []*conn
	have  int
	timer *time.Timer
}

var (
	_ bus.Transport = (*Transport)(nil)
	_ bus.Dialer    = (*Transport)(nil)
)

// New returns a transport configured by cfg. A Config that does not validate
// makes Start return the error.
func New(cfg Config) *Transport {
	c, err := cfg.withDefaults()
	t := &Transport{cfg: c, err: err, links: map[*link]struct{}{}, forming: map[formKey]*forming{}, settle: map[bus.NodeID]*peerSettle{}}
	t.ctx, t.cancel = context.WithCancel(context.Background())
	return t
}

// Start begins listening and asks the bus to keep the configured peers
// linked. The bus calls it once.
func (t *Transport) Start(h bus.Host) error {
	if t.err != nil {
		return t.err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.started || t.closed {
		return fmt.Errorf("netbus: Start called twice or after Close")
	}
	comp, err := newCompressor(t.cfg.MaxDecompressed)
	if err != nil {
		return err
	}
	t.comp, t.host, t.log = comp, h, h.Logger()
	t.batchHost, _ = h.(bus.BatchHost)
	codec.RegisterBuiltins(h, t.cfg.Codec)
	if t.log == nil {
		t.log = slog.New(slog.DiscardHandler)
	}
	for _, a := range t.cfg.Listen {
		network, addr, _ := parseAddr(a)
		ln, err := listen(network, addr)
		if err != nil {
			for _, ln := range t.listeners {
				ln.Close()
			}
			t.listeners = nil
			comp.close()
			return fmt.Errorf("netbus: listen on %s: %w", a, err)
		}
		t.listeners = append(t.listeners, ln)
	}
	t.started = true
	for _, ln := range t.listeners {
		t.wg.Go(func() { t.acceptLoop(ln) })
	}
	for _, a := range t.cfg.Peers {
		if err := h.Connect(a); err != nil {
			return err
		}
	}
	return nil
}

// Addrs returns the addresses the transport listens on, in the form Dial
// and Config.Peers accept ("tcp://127.0.0.1:40123", "unix:///run/x.sock").
func (t *Transport) Addrs() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []string
	for _, ln := range t.listeners {
		out = append(out, formatAddr(ln.Addr()))
	}
	return out
}

// Close stops accepting, ends dials in progress, closes every link (each
// reported with LinkDown; peers are told the node shut down) and waits for
// the transport's goroutines, or for ctx. It may be called more than once.
func (t *Transport) Close(ctx context.Context) error {
	t.mu.Lock()
	first := !t.closed
	t.closed = true
	t.cancel()
	for _, ln := range t.listeners {
		ln.Close()
	}
	for k, f := range t.forming {
		f.timer.Stop()
		for _, c := range f.conns {
			if c != nil {
				c.nc.Close()
			}
		}
		delete(t.forming, k)
	}
	links := make([]*link, 0, len(t.links))
	for l := range t.links {
		links = append(links, l)
	}
	t.mu.Unlock()
	for _, l := range links {
		l.close(ErrClosed)
	}
	done := make(chan struct{})
	go func() { t.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		return fmt.Errorf("netbus: close: %w", ctx.Err())
	}
	t.closeSettle() // no peer links again to settle what is in doubt
	if first && t.comp != nil {
		t.comp.close()
	}
	return nil
}

// Schemes implements bus.Transport: netbus serves Unix sockets and TCP.
func (t *Transport) Schemes() []string { return []string{"unix", "tcp"} }

// Dial implements bus.Dialer: one attempt to link to the node at addr
// ("tcp://host:port" or a bare "host:port", "unix:///path" or "unix:path"),
// bounded by ctx and Config.HandshakeTimeout. It returns the link once its
// handshake completed and the bus heard LinkUp. A refusal retrying cannot
// heal (wrong secret, version, codec, a bad handshake) wraps bus.ErrRefused.
// The bus redials (bus.Connect); the transport never does, but for one
// case within a dial: a node of protocol version 3 refuses the offer of
// version 4, and its connection is dialed again offering 3 (docs/wire.md,
// section 2.1).
func (t *Transport) Dial(ctx context.Context, addr string) (bus.Link, error) {
	if _, _, err := parseAddr(addr); err != nil {
		return nil, fmt.Errorf("%w: %w", bus.ErrRefused, err)
	}
	t.mu.Lock()
	if !t.started || t.closed {
		t.mu.Unlock()
		return nil, fmt.Errorf("netbus: dial %s: %w", addr, ErrClosed)
	}
	t.wg.Add(1) // under mu, so Close's Wait sees it
	t.mu.Unlock()
	defer t.wg.Done()
	l, err := t.dialLink(ctx, addr)
	if err != nil {
		return nil, err
	}
	return l, nil
}

// dialLink opens a pool of connections to addr, handshakes each and
// reports the link up.
func (t *Transport) dialLink(ctx context.Context, addr string) (*link, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(t.ctx, cancel) // Close ends the dial
	defer stop()
	network, a, _ := parseAddr(addr)
	var linkID uint64
	var idb [8]byte
	rand.Read(idb[:])
	linkID = binary.BigEndian.Uint64(idb[:])
	n := t.cfg.PoolSize
	conns := make([]*conn, 0, n)
	fail := func(err error) (*link, error) {
		for _, c := range conns {
			c.nc.Close()
		}
		return nil, err
	}
	// Each connection offers the highest version this node speaks, until
	// one finds an acceptor of an older version (which refuses a higher
	// offer): that one is dialed again offering the acceptor's, and so are
	// the connections after it.
	offer := t.version
	if offer == 0 {
		offer = maxVersion
	}
	for i := range n {
		hc := hsConfig{Dialer: true, LinkID: linkID, Conn: uint8(i), Pool: uint8(n), Version: offer}
		c, peerVersion, err := t.dialConn(ctx, addr, network, a, hc)
		if err != nil && fallBack(err, offer, peerVersion) {
			offer, hc.Version = peerVersion, peerVersion
			c, _, err = t.dialConn(ctx, addr, network, a, hc)
		}
		if err != nil {
			return fail(err)
		}
		c.id = connID{linkID, uint8(i)}
		conns = append(conns, c)
	}
	l, err := t.startLink(conns, network)
	if err != nil {
		return fail(err)
	}
	return l, nil
}

// dialConn opens one connection to a (addr as given) and handshakes it,
// bounded by Config.HandshakeTimeout. It returns the version of the
// acceptor's hello, if one arrived, also on failure.
func (t *Transport) dialConn(ctx context.Context, addr, network, a string, hc hsConfig) (*conn, uint8, error) {
	ctx, cancel := context.WithTimeout(ctx, t.cfg.HandshakeTimeout)
	defer cancel()
	nc, err := (&net.Dialer{}).DialContext(ctx, network, a)
	if err != nil {
		return nil, 0, fmt.Errorf("netbus: dial %s: %w", addr, err)
	}
	if t.cfg.TLS != nil {
		cfg := t.cfg.TLS
		if cfg.ServerName == "" && network == "tcp" {
			cfg = cfg.Clone()
			cfg.ServerName, _, _ = net.SplitHostPort(a)
		}
		tc := tls.Client(nc, cfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			nc.Close()
			if tlsRefusal(err) {
				err = refused(err)
			}
			return nil, 0, fmt.Errorf("netbus: TLS with %s: %w", addr, err)
		}
		nc = tc
	}
	c, peerVersion, err := t.handshake(ctx, nc, hc)
	if err != nil {
		nc.Close()
		return nil, peerVersion, fmt.Errorf("netbus: handshake with %s: %w", addr, err)
	}
	return c, peerVersion, nil
}

// fallBack reports whether a dial that offered version offer and failed
// with err should be made again offering peerVersion, the version of the
// acceptor's hello: an acceptor of an older version sends its hello, then
// refuses a higher offer (ErrVersion), or closes the socket before its
// refusal arrives; this build speaks its version too.
func fallBack(err error, offer, peerVersion uint8) bool {
	if peerVersion < minVersion || peerVersion >= offer {
		return false
	}
	return errors.Is(err, ErrVersion) || !errors.Is(err, bus.ErrRefused) && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded)
}

// handshake runs the xbus handshake on nc, bounded by ctx. It returns the
// version of the peer's hello, if one arrived, also on failure.
func (t *Transport) handshake(ctx context.Context, nc net.Conn, hc hsConfig) (*conn, uint8, error) {
	hc.Node = t.host.NodeID()
	hc.Codec = t.cfg.Codec.Name()
	hc.Secret = t.cfg.Secret
	hc.Decode = compS2 | compZstd
	hc.Compress = t.cfg.Compression
	hc.MaxFrame = uint32(t.cfg.MaxFrameSize)
	rand.Read(hc.Nonce[:])
	if dl, ok := ctx.Deadline(); ok {
		nc.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { nc.SetDeadline(time.Now()) })
	defer stop()
	if hc.Version == 0 {
		hc.Version = t.version
	}
	h := newHandshake(hc)
	if hello := h.start(); len(hello) > 0 {
		if _, err := nc.Write(hello); err != nil {
			return nil, 0, err
		}
	}
	buf := make([]byte, 4096)
	for !h.done() {
		n, rerr := nc.Read(buf)
		if n > 0 {
			out, err := h.feed(buf[:n])
			if len(out) > 0 {
				if _, werr := nc.Write(out); werr != nil && err == nil {
					err = werr
				}
			}
			if err != nil {
				return nil, h.peerVersion, err
			}
		}
		if rerr != nil && !h.done() {
			if tlsRefusal(rerr) { // TLS 1.3: the peer refuses our certificate after its handshake
				rerr = refused(rerr)
			}
			return nil, h.peerVersion, fmt.Errorf("%w: connection ended: %w", ErrHandshake, rerr)
		}
	}
	nc.SetDeadline(time.Time{})
	return newConn(nc, h.result(), h.rest()), h.peerVersion, nil
}

func (t *Transport) acceptLoop(ln net.Listener) {
	var tempDelay time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if t.ctx.Err() != nil {
				return
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			// Out of file descriptors and the like: back off a little, as
			// net/http does.
			tempDelay = min(max(2*tempDelay, 5*time.Millisecond), time.Second)
			t.log.Warn("netbus: accept", "err", err)
			select {
			case <-time.After(tempDelay):
			case <-t.ctx.Done():
				return
			}
			continue
		}
		tempDelay = 0
		t.wg.Go(func() { t.accept(nc, ln.Addr().Network()) })
	}
}

// accept handshakes one incoming connection and adds it to the link it
// belongs to.
func (t *Transport) accept(nc net.Conn, network string) {
	ctx, cancel := context.WithTimeout(t.ctx, t.cfg.HandshakeTimeout)
	defer cancel()
	if t.cfg.TLS != nil {
		tc := tls.Server(nc, t.cfg.TLS)
		if err := tc.HandshakeContext(ctx); err != nil {
			if tlsRefusal(err) {
				err = refused(err)
			}
			t.log.Warn("netbus: refused a connection: TLS", "remote", nc.RemoteAddr(), "err", err)
			nc.Close()
			return
		}
		nc = tc
	}
	c, _, err := t.handshake(ctx, nc, hsConfig{})
	if err != nil {
		t.log.Warn("netbus: refused a connection", "remote", nc.RemoteAddr(), "err", err)
		nc.Close()
		return
	}
	c.id = connID{c.res.LinkID, c.res.Conn}
	if c.res.Pool == 1 {
		if _, err := t.startLink([]*conn{c}, network); err != nil {
			nc.Close()
		}
		return
	}
	key := formKey{c.res.Peer, c.res.LinkID}
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		nc.Close()
		return
	}
	f := t.forming[key]
	if f == nil {
		f = &forming{conns: make([]*conn, c.res.Pool)}
		f.timer = time.AfterFunc(t.cfg.HandshakeTimeout, func() { t.abandon(key, f) })
		t.forming[key] = f
	}
	if int(c.res.Pool) != len(f.conns) || f.conns[c.res.Conn] != nil {
		t.mu.Unlock()
		t.log.Warn("netbus: refused a connection: inconsistent pool", "remote", nc.RemoteAddr(), "peer", c.res.Peer.Short())
		nc.Close()
		return
	}
	f.conns[c.res.Conn] = c
	f.have++
	complete := f.have == len(f.conns)
	if complete {
		f.timer.Stop()
		delete(t.forming, key)
	}
	t.mu.Unlock()
	if complete {
		if _, err := t.startLink(f.conns, network); err != nil {
			if !errors.Is(err, ErrClosed) {
				t.log.Warn("netbus: refused a pooled link", "remote", nc.RemoteAddr(), "peer", c.res.Peer.Short(), "err", err)
			}
			for _, c := range f.conns {
				c.nc.Close()
			}
		}
	}
}

// poolAgrees checks that a pooled link's connections were handshaken with
// one node and agreed on one codec, as the link has one of each: a peer
// that says otherwise on one of them (or an address that spreads them over
// nodes) would have its bodies decoded in another codec, or its messages
// taken for another node's.
func poolAgrees(conns []*conn) error {
	first := conns[0].res
	for i, c := range conns[1:] {
		switch {
		case c.res.Peer != first.Peer:
			return fmt.Errorf("%w: connection %d of a pooled link reached node %s, connection 0 node %s", ErrHandshake, i+1, c.res.Peer.Short(), first.Peer.Short())
		case c.res.Codec != first.Codec:
			return fmt.Errorf("%w: connection %d of a pooled link agreed on codec %q, connection 0 on %q", ErrHandshake, i+1, c.res.Codec, first.Codec)
		}
	}
	return nil
}

// abandon drops a pooled link whose connections did not all arrive in time.
func (t *Transport) abandon(key formKey, f *forming) {
	t.mu.Lock()
	if t.forming[key] != f {
		t.mu.Unlock()
		return
	}
	delete(t.forming, key)
	t.mu.Unlock()
	t.log.Warn("netbus: a pooled link did not complete in time", "peer", key.peer.Short(), "have", f.have, "want", len(f.conns))
	for _, c := range f.conns {
		if c != nil {
			c.nc.Close()
		}
	}
}

// startLink registers a link over handshaken connections, reports it up and
// starts its goroutines.
func (t *Transport) startLink(conns []*conn, network string) (*link, error) {
	if err := poolAgrees(conns); err != nil {
		return nil, err
	}
	loc := bus.Remote
	if network == "unix" {
		loc = bus.SameHost
	}
	lc := t.cfg.Codec
	if name := conns[0].res.Codec; name != lc.Name() {
		lc, _ = codec.ByName(name) // the handshake agreed on a built-in one
	}
	l := &link{t: t, peer: conns[0].res.Peer, loc: loc, codec: lc, conns: conns, done: make(chan struct{})}
	for _, c := range conns {
		c.l = l
	}
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return nil, ErrClosed
	}
	t.links[l] = struct{}{}
	l.readers.Store(int32(len(conns)))
	t.mu.Unlock()
	// Before anything else, the peer learns what this end read on the
	// connections to it that broke (settle.go).
	if f := t.settleFrame(l.peer); f != nil {
		conns[0].queueControl(f)
	}
	// The calling goroutine is itself tracked by wg, so these wg.Go calls
	// never race with Close's wg.Wait. A Close that came in between has
	// already shut the conns; the loops then exit at once and the last
	// reader reports LinkDown.
	t.host.LinkUp(l)
	for _, c := range conns {
		t.wg.Go(c.writeLoop)
		t.wg.Go(func() {
			defer l.readerDone()
			c.readLoop()
		})
	}
	t.log.Debug("netbus: link up", "peer", l.peer.Short(), "conns", len(conns), "locality", loc)
	return l, nil
}

func (t *Transport) linkDown(l *link) {
	t.mu.Lock()
	delete(t.links, l)
	t.mu.Unlock()
	t.log.Debug("netbus: link down", "peer", l.peer.Short(), "err", l.err)
	t.host.LinkDown(l, l.err)
}
