package shmbus

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/xbus-dev/xbus/bus"
	"github.com/xbus-dev/xbus/codec"
	"github.com/xbus-dev/xbus/internal/shmsys"
	"github.com/xbus-dev/xbus/internal/unixsock"
)

// Config configures a Transport. The zero value is valid but neither
// listens nor dials.
type Config struct {
	// Listen is the path of a Unix socket to accept peers on; "" for none.
	Listen string
	// Dial lists the Unix socket paths (or "shm://" addresses) of peers the
	// bus keeps linked from Start on: the transport hands each to
	// bus.Host.Connect, and the bus dials it and redials it with backoff and
	// jitter whenever the link drops or the peer is not up yet.
	Dial []string
	// Codec is the body codec this process prefers; nil means
	// codec.Binary(). The hello agrees on one per link as netbus does
	// (codec.Agree): the same name, else the acceptor's when it is built
	// in, else the dialer's when it is; two codecs of their own that
	// differ are refused. The bus is given it and the built-in ones.
	Codec bus.Codec
	// MaxMessage bounds one encoded envelope; larger ones are fragmented
	// into ring records and reassembled up to this size. 0 means 16 MiB.
	MaxMessage int
	// RingSize is the bytes of each ring, a power of two in
	// [MinRingSize, MaxRingSize]; 0 means 64 KiB.
	RingSize int
	// HandshakeTimeout bounds the set-up of one link; 0 means 5 s.
	HandshakeTimeout time.Duration
	// PeerTimeout is how long a peer's heartbeat may stay still before the
	// peer is declared gone: its link closes with an error wrapping
	// bus.ErrPeerGone, which fails its asks and every Send waiting for room
	// in its ring. A live peer beats while idle too, so only a stopped or
	// wedged process (SIGSTOP, a debugger breakpoint, a reader blocked for
	// that long) is declared gone. 0 means DefaultPeerTimeout (5 s); a
	// negative value means never, with the socket's EOF as the only death
	// notice. At least MinPeerTimeout. The two sides may differ; each beats
	// often enough for the other's.
	PeerTimeout time.Duration
}

const (
	DefaultMaxMessage = 16 << 20
	DefaultRingSize   = 64 << 10
)

// Transport is a bus.Transport over shared memory between processes of one
// host; it also implements bus.Dialer.
type Transport struct {
	cfg   Config
	codec bus.Codec

	mu     sync.Mutex // guards the fields below
	host   bus.Host
	ln     *net.UnixListener
	links  map[*link]struct{}
	closed bool

	wg sync.WaitGroup // accept loop and every link's goroutines

	// fragHook, when set (by tests, before Start), is called after each
	// fragment a link's sender puts in the ring, with how many it has put.
	fragHook func(l *link, sent int)
	// noAbortRoom, when set (by tests, before Start), leaves no room for
	// the abort record while a message in fragments is sent, so that its
	// fragments can fill the ring to its last byte.
	noAbortRoom bool
}

var (
	_ bus.Transport = (*Transport)(nil)
	_ bus.Dialer    = (*Transport)(nil)
)

// New returns a transport configured by cfg. It does nothing until Start.
func New(cfg Config) *Transport {
	t := &Transport{cfg: cfg, codec: cfg.Codec, links: map[*link]struct{}{}}
	if t.codec == nil {
		t.codec = codec.Binary()
	}
	if t.cfg.MaxMessage == 0 {
		t.cfg.MaxMessage = DefaultMaxMessage
	}
	if t.cfg.RingSize == 0 {
		t.cfg.RingSize = DefaultRingSize
	}
	if t.cfg.HandshakeTimeout == 0 {
		t.cfg.HandshakeTimeout = 5 * time.Second
	}
	if t.cfg.PeerTimeout == 0 {
		t.cfg.PeerTimeout = DefaultPeerTimeout
	}
	return t
}

// peerTimeout is the configured PeerTimeout, 0 for never.
func (t *Transport) peerTimeout() time.Duration { return max(t.cfg.PeerTimeout, 0) }

func (t *Transport) validate() error {
	if !shmsys.Supported {
		return ErrUnsupported
	}
	rs := t.cfg.RingSize
	if rs < MinRingSize || rs > MaxRingSize || rs&(rs-1) != 0 {
		return fmt.Errorf("shmbus: ring size must be a power of two in [%d, %d], got %d", MinRingSize, MaxRingSize, rs)
	}
	if pt := t.cfg.PeerTimeout; pt > 0 && pt < MinPeerTimeout {
		return fmt.Errorf("shmbus: peer timeout must be at least %v (or negative for none), got %v", MinPeerTimeout, pt)
	}
	if t.cfg.MaxMessage < 0 {
		return fmt.Errorf("shmbus: max message must not be negative, got %d", t.cfg.MaxMessage)
	}
	if len(t.codec.Name()) > 32 {
		return fmt.Errorf("shmbus: codec name %q longer than 32 bytes", t.codec.Name())
	}
	return nil
}

// Start listens and asks the bus to keep the configured peers linked; the
// bus calls it once.
func (t *Transport) Start(h bus.Host) error {
	if err := t.validate(); err != nil {
		return err
	}
	t.mu.Lock()
	t.host = h
	t.mu.Unlock()
	codec.RegisterBuiltins(h, t.codec)
	if t.cfg.Listen != "" {
		ln, err := listenUnix(t.cfg.Listen)
		if err != nil {
			return err
		}
		t.mu.Lock()
		t.ln = ln
		t.mu.Unlock()
		t.wg.Go(func() { t.acceptLoop(ln) })
	}
	for _, p := range t.cfg.Dial {
		if !strings.HasPrefix(p, "shm:") {
			p = "shm://" + p
		}
		if err := h.Connect(p); err != nil {
			return err
		}
	}
	return nil
}

// Addrs returns the address the transport listens on, in the form
// bus.Connect takes ("shm:///run/x.sock"); none when it does not listen.
// It implements bus.Listener, so discovery announces it.
func (t *Transport) Addrs() []string {
	if t.cfg.Listen == "" {
		return nil
	}
	if !strings.HasPrefix(t.cfg.Listen, "/") {
		return []string{"shm:" + t.cfg.Listen}
	}
	return []string{"shm://" + t.cfg.Listen}
}

// Schemes implements bus.Transport: shmbus serves "shm".
func (t *Transport) Schemes() []string { return []string{"shm"} }

// listenUnix listens on path, replacing a socket file left by a dead process
// (one nobody accepts on); a live listener's socket, or any other file, is
// left alone.
func listenUnix(path string) (*net.UnixListener, error) {
	addr := &net.UnixAddr{Name: path, Net: "unix"}
	ln, err := net.ListenUnix("unix", addr)
	if err != nil && unixsock.Retry(path, err) {
		ln, err = net.ListenUnix("unix", addr)
	}
	if err != nil {
		return nil, fmt.Errorf("shmbus: listen %s: %w", path, err)
	}
	ln.SetUnlinkOnClose(true)
	return ln, nil
}

func (t *Transport) acceptLoop(ln *net.UnixListener) {
	for {
		c, err := ln.AcceptUnix()
		if err != nil {
			return
		}
		t.wg.Go(func() {
			// setup logs refusals itself, before it hangs up.
			if _, err := t.setup(c, true); err != nil && !errors.Is(err, bus.ErrRefused) {
				t.logger().Warn("shmbus: handshake with a peer failed", "err", err)
			}
		})
	}
}

func (t *Transport) logger() *slog.Logger {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.host.Logger()
}

// Dial implements bus.Dialer: one attempt to link to the transport
// listening on the Unix socket of addr ("shm:///run/x.sock", "shm:rel.sock"
// or a bare path), bounded by ctx and Config.HandshakeTimeout. It returns
// the link once it is set up and the bus heard LinkUp. A refusal retrying
// cannot heal (another uid, a version, ring size or codec mismatch) wraps
// bus.ErrRefused. The bus redials (bus.Connect); the transport never does.
func (t *Transport) Dial(ctx context.Context, addr string) (bus.Link, error) {
	if !shmsys.Supported {
		return nil, ErrUnsupported
	}
	path := strings.TrimPrefix(addr, "shm:")
	if len(path) < len(addr) && strings.HasPrefix(path, "//") {
		path = path[2:]
	}
	if path == "" {
		return nil, fmt.Errorf("%w: shmbus: no path in address %q", bus.ErrRefused, addr)
	}
	t.mu.Lock()
	if t.closed || t.host == nil {
		t.mu.Unlock()
		return nil, fmt.Errorf("shmbus: dial %s: %w", addr, bus.ErrClosed)
	}
	t.wg.Add(1) // under mu, so Close's Wait sees it
	t.mu.Unlock()
	defer t.wg.Done()
	ctx, cancel := context.WithTimeout(ctx, t.cfg.HandshakeTimeout)
	defer cancel()
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return nil, fmt.Errorf("shmbus: dial %s: %w", addr, err)
	}
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	}
	l, err := t.setup(c.(*net.UnixConn), false)
	if err != nil {
		return nil, err
	}
	return l, nil
}

// setup runs the handshake on c and brings the link up. On an accepted
// connection it logs a refusal (an error wrapping ErrPeerRefused) at Warn;
// a dialer returns it, and the bus logs it as it stops dialing.
func (t *Transport) setup(c *net.UnixConn, accepted bool) (_ *link, err error) {
	fail := func(e error) (*link, error) {
		if accepted && errors.Is(e, ErrPeerRefused) {
			t.logger().Warn("shmbus: link refused", "err", e)
		}
		c.Close()
		return nil, e
	}
	if uid, err := shmsys.PeerUID(c); err != nil {
		return fail(err)
	} else if uid != os.Getuid() {
		return fail(fmt.Errorf("%w: the peer runs as uid %d, this process as %d", ErrPeerRefused, uid, os.Getuid()))
	}
	if _, ok := c.LocalAddr().(*net.UnixAddr); ok {
		c.SetDeadline(time.Now().Add(t.cfg.HandshakeTimeout))
	}
	t.mu.Lock()
	h, closed := t.host, t.closed
	t.mu.Unlock()
	if closed {
		return fail(bus.ErrClosed)
	}
	rs := t.cfg.RingSize
	var keyb [8]byte
	rand.Read(keyb[:])
	key := binary.LittleEndian.Uint64(keyb[:])
	fd, own, err := shmsys.CreateSegment(segmentSize(rs))
	if err != nil {
		return fail(err)
	}
	initSegment(own, rs, key)
	release := func() { shmsys.Unmap(own); shmsys.CloseFd(fd) }

	ours := hello{version: segVersion, ringSize: uint32(rs), node: h.NodeID(), timeout: t.peerTimeout(), codec: t.codec.Name()}
	msg := ours.marshal()
	if err := shmsys.SendFd(c, msg[:], fd); err != nil {
		release()
		return fail(fmt.Errorf("%w: sending hello: %v", ErrHandshake, err))
	}
	shmsys.CloseFd(fd) // the mapping stays; the peer holds its own reference
	release = func() { shmsys.Unmap(own) }

	var in [helloLen]byte
	pfd, n, err := shmsys.RecvFd(c, in[:])
	if err != nil {
		release()
		return fail(fmt.Errorf("%w: reading hello: %v", ErrHandshake, err))
	}
	defer shmsys.CloseFd(pfd)
	theirs, err := parseHello(in[:n])
	var codecName string
	if err == nil {
		codecName, err = ours.accept(&theirs, !accepted)
	}
	if err != nil {
		release()
		return fail(err)
	}
	peer, err := shmsys.MapPeerSegment(pfd, segmentSize(rs))
	if err != nil {
		release()
		return fail(err)
	}
	peerKey, err := readSegmentHeader(peer, rs)
	if err != nil {
		shmsys.Unmap(peer)
		release()
		return fail(err)
	}
	c.SetDeadline(time.Time{})
	l := newLink(t, h, c, theirs.node, own, peer, peerKey, key, theirs.timeout)
	if codecName != t.codec.Name() {
		l.codec, _ = codec.ByName(codecName) // they agreed on another: a built-in one
	}
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		l.release()
		return fail(bus.ErrClosed)
	}
	t.links[l] = struct{}{}
	t.mu.Unlock()
	h.LinkUp(l)
	l.start()
	return l, nil
}

func (t *Transport) removeLink(l *link) {
	t.mu.Lock()
	delete(t.links, l)
	t.mu.Unlock()
}

// Close stops accepting, closes every link (each reported with LinkDown)
// and waits for the transport's goroutines or ctx.
func (t *Transport) Close(ctx context.Context) error {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return nil
	}
	t.closed = true
	ln := t.ln
	links := make([]*link, 0, len(t.links))
	for l := range t.links {
		links = append(links, l)
	}
	t.mu.Unlock()
	if ln != nil {
		ln.Close()
	}
	for _, l := range links {
		l.Close(bus.ErrClosed)
	}
	done := make(chan struct{})
	go func() { t.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

var errLinkClosed = errors.New("shmbus: link closed")
