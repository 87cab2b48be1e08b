package bustest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/xbus-dev/xbus/bus"
)

// Scheme is the address scheme of the in-memory transport: "mem://name".
const Scheme = "mem"

// Config configures one node's Transport on a Network.
type Config struct {
	// Addr is the node's address on the network ("a" or "mem://a"). It must
	// be unique among the network's live nodes.
	Addr string
	// Peers lists addresses the bus keeps linked from Start on: the
	// transport hands each to bus.Host.Connect, and the bus dials it and
	// dials again whenever the link drops (see bus.WithBackoff).
	Peers []string
	// Codec encodes message bodies. Nil: bus.JSON.
	Codec bus.Codec
	// QueueLen is how many envelopes a link holds for its reader before
	// Send blocks (until its ctx ends or the link goes down). Zero: 1024.
	QueueLen int
}

// Transport is one node's end of a Network: a bus.Transport and a
// bus.Dialer whose links are pairs of queues in memory. Each link end has a
// reader goroutine that hands the bus envelopes one at a time, in order, and
// reports the link's end with LinkDown after the last of them.
//
// Envelopes cross in their binary form (Envelope.AppendBinary), as on a
// real transport: what the bus puts in them must survive encoding.
type Transport struct {
	net   *Network
	cfg   Config
	addr  string
	codec bus.Codec

	mu     sync.Mutex // guards the fields below; taken after Network.mu
	host   bus.Host
	links  map[*link]struct{}
	closed bool // Close began or the node was killed: no new links

	wg sync.WaitGroup // readers
}

var (
	_ bus.Transport = (*Transport)(nil)
	_ bus.Dialer    = (*Transport)(nil)
)

// Transport returns a transport for a new node of n; it joins the network
// when the bus starts it.
func (n *Network) Transport(cfg Config) *Transport {
	if cfg.Codec == nil {
		cfg.Codec = bus.JSON
	}
	if cfg.QueueLen <= 0 {
		cfg.QueueLen = 1024
	}
	return &Transport{net: n, cfg: cfg, addr: trimScheme(cfg.Addr), codec: cfg.Codec,
		links: map[*link]struct{}{}}
}

func trimScheme(addr string) string { return strings.TrimPrefix(addr, Scheme+"://") }

// Addr is the node's address, with its scheme.
func (t *Transport) Addr() string { return Scheme + "://" + t.addr }

// Start joins the network under Config.Addr and asks the bus to keep
// Config.Peers linked.
func (t *Transport) Start(h bus.Host) error {
	if err := t.join(h); err != nil {
		return err
	}
	for _, p := range t.cfg.Peers {
		if err := h.Connect(Scheme + "://" + trimScheme(p)); err != nil {
			return err
		}
	}
	return nil
}

func (t *Transport) join(h bus.Host) error {
	if t.addr == "" {
		return errors.New("bustest: Config.Addr is empty")
	}
	n := t.net
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.nodes[t.addr] != nil {
		return fmt.Errorf("bustest: address %q is taken", t.addr)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.host != nil || t.closed {
		return errors.New("bustest: transport started twice")
	}
	t.host = h
	n.nodes[t.addr] = t
	return nil
}

// Close leaves the network and closes every link gracefully (its peer sees
// ErrPeerGone once it has what was sent before): Close waits until both ends
// have delivered what was queued, or ctx ends and the rest is dropped.
func (t *Transport) Close(ctx context.Context) error {
	t.leave()
	t.mu.Lock()
	links := make([]*link, 0, len(t.links))
	for l := range t.links {
		links = append(links, l)
	}
	t.mu.Unlock()
	for _, l := range links {
		l.Close(ErrClosed)
	}
	done := make(chan struct{})
	go func() { t.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		for _, l := range links {
			l.fault(ErrClosed) // their readers stop draining
		}
		<-done
		return fmt.Errorf("bustest: close: %w", ctx.Err())
	}
}

// leave takes t off the network; it is idempotent.
func (t *Transport) leave() {
	n := t.net
	n.mu.Lock()
	if n.nodes[t.addr] == t {
		delete(n.nodes, t.addr)
	}
	n.mu.Unlock()
	t.kill()
}

// kill makes t refuse new links.
func (t *Transport) kill() {
	t.mu.Lock()
	t.closed = true
	t.mu.Unlock()
}

// Schemes implements bus.Transport: the in-memory network's "mem".
func (t *Transport) Schemes() []string { return []string{Scheme} }

// Dial makes one attempt to link this node to the node at addr ("b" or
// "mem://b") and returns its end of the link; the bus redials. It fails
// with ErrUnreachable when no node is there, ErrPartitioned across a
// partition, ErrClosed after Close or Kill.
func (t *Transport) Dial(ctx context.Context, addr string) (bus.Link, error) {
	l, err := t.dial(ctx, trimScheme(addr))
	if err != nil {
		return nil, err
	}
	return l, nil
}

func (t *Transport) dial(ctx context.Context, addr string) (*link, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	n := t.net
	n.mu.Lock()
	defer n.mu.Unlock()
	far := n.nodes[addr]
	switch {
	case n.nodes[t.addr] != t:
		return nil, ErrClosed
	case far == nil || far == t:
		return nil, fmt.Errorf("%w: %q", ErrUnreachable, addr)
	case n.cut[pair(t.addr, addr)]:
		return nil, fmt.Errorf("%w: %q from %q", ErrPartitioned, addr, t.addr)
	}
	st := &linkState{fin: make(chan struct{}), closed: make(chan struct{})}
	near := newLink(t, far.host.NodeID(), st)
	back := newLink(far, t.host.NodeID(), st)
	near.peer, back.peer = back, near
	far.mu.Lock()
	far.links[back] = struct{}{}
	far.mu.Unlock()
	t.mu.Lock()
	t.links[near] = struct{}{}
	t.mu.Unlock()
	// Both readers start now, so that a fault between here and LinkUp is
	// still reported; each delivers nothing before its own side's LinkUp.
	far.wg.Go(back.read)
	t.wg.Go(near.read)
	// The handshake is complete: the accepting side reports first, as a
	// listener that answers the dialer's hello does.
	n.mu.Unlock()
	far.host.LinkUp(back)
	close(back.up)
	t.host.LinkUp(near)
	close(near.up)
	n.mu.Lock()
	return near, nil
}

// frame is one envelope in its binary form on its way to a reader.
type frame struct {
	b    []byte
	kind bus.Kind
	due  time.Time // zero: at once
	lost bool      // breaks the link when it would have arrived
}

// linkState is what both ends of a link share. A link ends gracefully
// (Close: no new frame is queued, each reader delivers what is queued and
// then goes down, as a socket's close sends what was written before it) or
// at once (a fault: the frames queued are lost, as with a dead process).
type linkState struct {
	mu     sync.RWMutex  // held for reading while Send queues a frame, for writing to end intake
	ending bool          // intake has ended; guarded by mu
	fin    chan struct{} // closed when intake ends
	abrupt sync.Once
	closed chan struct{} // closed by a fault: the readers go down at once
	why    sync.Once     // sets err and by: the first of Close and a fault
	err    error
	by     *link // the end whose Close ended it; nil for a fault
}

// link is one end of a link: what one node sends on and reads from.
type link struct {
	t      *Transport
	peer   *link
	peerID bus.NodeID
	st     *linkState
	in     chan frame    // frames from the peer, for this end's reader
	up     chan struct{} // closed once this side's LinkUp returned
	handed chan struct{} // closed once this side's reader handed back what it will never deliver
	done   chan struct{} // closed once this side's LinkDown returned
}

func newLink(t *Transport, peer bus.NodeID, st *linkState) *link {
	return &link{t: t, peerID: peer, st: st, in: make(chan frame, t.cfg.QueueLen),
		up: make(chan struct{}), handed: make(chan struct{}), done: make(chan struct{})}
}

func (l *link) Peer() bus.NodeID       { return l.peerID }
func (l *link) Locality() bus.Locality { return bus.Remote }
func (l *link) Scheme() string         { return Scheme }
func (l *link) Codec() bus.Codec       { return l.t.codec }

// Close ends the link gracefully: Send fails from now on, and each end
// delivers what was queued to it before going down. This side sees err,
// the peer ErrPeerGone.
func (l *link) Close(err error) {
	if err == nil {
		err = ErrClosed
	}
	l.st.why.Do(func() { l.st.err, l.st.by = err, l })
	l.st.mu.Lock() // waits for the Sends queueing now
	if !l.st.ending {
		l.st.ending = true
		close(l.st.fin)
	}
	l.st.mu.Unlock()
}

// fault ends the link at once with err, reported to both sides; what was
// queued is lost.
func (l *link) fault(err error) {
	l.st.why.Do(func() { l.st.err = err })
	l.st.abrupt.Do(func() { close(l.st.closed) })
}

// downErr is what this end reports with LinkDown.
func (l *link) downErr() error {
	if l.st.by != nil && l.st.by != l {
		return fmt.Errorf("%w: the peer closed the link: %w", bus.ErrPeerGone, l.st.err)
	}
	return l.st.err
}

// Send queues env for the peer in its binary form. It blocks while the
// peer's queue is full, until ctx ends or the link goes down.
func (l *link) Send(ctx context.Context, env *bus.Envelope) error {
	l.st.mu.RLock()
	defer l.st.mu.RUnlock()
	if l.st.ending {
		return fmt.Errorf("%w: %w", bus.ErrPeerGone, l.st.err)
	}
	select {
	case <-l.st.closed:
		return fmt.Errorf("%w: %w", bus.ErrPeerGone, l.st.err)
	default:
	}
	b, err := env.AppendBinary(nil)
	if err != nil {
		return err
	}
	f := frame{b: b, kind: env.Kind}
	f.due, f.lost = l.t.net.stamp()
	sent := &l.t.net.sent[slot(f.kind)]
	sent.Add(1) // before the reader can count it delivered
	select {
	case l.peer.in <- f:
		return nil
	default:
	}
	select {
	case l.peer.in <- f:
		return nil
	case <-l.st.closed:
		err = fmt.Errorf("%w: %w", bus.ErrPeerGone, l.st.err)
	case <-ctx.Done():
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			err = fmt.Errorf("%w: link to %s full", bus.ErrDeadline, l.peerID.Short())
		} else {
			err = fmt.Errorf("%w: link to %s full", bus.ErrCanceled, l.peerID.Short())
		}
	}
	sent.Add(^uint64(0))
	return err
}

// read hands the bus what the peer sent, in order, until the link goes
// down (at once on a fault, once drained after Close), then hands the
// sender's bus back what a fault left undelivered and reports LinkDown,
// once the other end has handed back what this side sent: a bus hears of
// every envelope of a link it will get back before it hears of its end.
func (l *link) read() {
	<-l.up
	var held *frame // taken from l.in and not yet delivered
	defer func() {
		l.handBack(held)
		close(l.handed)
		<-l.peer.handed
		l.t.host.LinkDown(l, l.downErr())
		l.t.mu.Lock()
		delete(l.t.links, l)
		l.t.mu.Unlock()
		close(l.done)
	}()
	var timer *time.Timer
	for {
		var f frame
		select {
		case <-l.st.closed:
			return
		case f = <-l.in:
		case <-l.st.fin:
			select {
			case f = <-l.in:
			default:
				return // drained: nothing is queued after fin
			}
		}
		held = &f
		if g := l.t.net.gate(l.t.addr); g != nil {
			select {
			case <-g:
			case <-l.st.closed:
				return
			}
		}
		if d := time.Until(f.due); !f.due.IsZero() && d > 0 {
			if timer == nil {
				timer = time.NewTimer(d)
			} else {
				timer.Reset(d)
			}
			select {
			case <-timer.C:
			case <-l.st.closed:
				return
			}
		}
		select {
		case <-l.st.closed:
			return // nothing is delivered once the link is down
		default:
		}
		if f.lost {
			l.fault(ErrLost)
			return
		}
		held = nil
		l.deliver(f.b)
		l.t.net.delivered[slot(f.kind)].Add(1)
	}
}

// handBack gives the sending bus back, with Host.Undelivered, held and
// every frame still queued for this end once a fault ended the link: what
// a dead process swallows, its peer's bus must count.
func (l *link) handBack(held *frame) {
	select {
	case <-l.st.closed:
	default:
		return // a graceful end delivered everything queued
	}
	l.st.mu.Lock() // waits for the Sends queueing now; later ones see closed
	l.st.mu.Unlock()
	if held != nil {
		l.handBackOne(*held)
	}
	for {
		select {
		case f := <-l.in:
			l.handBackOne(f)
		default:
			return
		}
	}
}

func (l *link) handBackOne(f frame) {
	var env bus.Envelope
	if err := bus.DecodeEnvelope(f.b, &env); err != nil {
		env = bus.Envelope{Kind: f.kind} // our own encoding: the kind is all that counts
	}
	l.peer.t.host.Undelivered(l.peer, &env, l.st.err)
	l.t.net.handed[slot(f.kind)].Add(1)
}

func (l *link) deliver(b []byte) {
	var env bus.Envelope
	if err := bus.DecodeEnvelope(b, &env); err != nil {
		l.fault(err) // our own encoding: a bug, never a peer's input
		return
	}
	l.t.host.Deliver(l, &env)
}
