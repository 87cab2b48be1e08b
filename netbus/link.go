package netbus

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/xbus-dev/xbus/bus"
)

// link is a bus.Link: the pool of connections to one peer that one dial
// established (the dialer chose a link id and pool size; the acceptor groups
// connections by them). Messages of one sender always take the same
// connection, so per-sender order holds with any pool size. The pool lives
// and dies as one: when any connection fails the whole link closes, so every
// ask in flight on it fails at once instead of waiting for a reply that
// cannot come.
type link struct {
	t     *Transport
	peer  bus.NodeID
	loc   bus.Locality
	codec bus.Codec // agreed in the handshake: Config.Codec or the peer's
	conns []*conn   // fixed after newLink

	deliverMu sync.Mutex // the host is handed one envelope or batch at a time per link; guards each conn's stopped

	closeOnce sync.Once
	done      chan struct{} // closed by close
	closed    atomic.Bool   // set as done is closed: what Send checks, cheaper than a select
	err       error         // why the link closed; written before done is closed
	readers   atomic.Int32  // live reader goroutines; the last one reports LinkDown

	// The peer's fence frames (see Fence): fences counts those read in the
	// current round, whose readers wait on fenced until the last one.
	// roundMu keeps the rounds of fence frames this end sends (Fence,
	// Lead) in one order on every connection.
	fenceMu sync.Mutex
	fences  int
	fenced  chan struct{}
	roundMu sync.Mutex

	// Calls in flight, for choosing between writing a frame at once and
	// queueing it for the writer (see alone). They are a hint, not a
	// ledger: an ask whose reply never comes keeps asksOut (or, on the
	// serving side, asksIn) raised, which only means its frames take the
	// writer's path.
	asksOut atomic.Int64 // asks sent on this link whose reply has not come
	asksIn  atomic.Int64 // asks received on this link not yet replied to
}

var _ bus.Link = (*link)(nil)

func (l *link) Peer() bus.NodeID       { return l.peer }
func (l *link) Locality() bus.Locality { return l.loc }
func (l *link) Codec() bus.Codec       { return l.codec }

// Scheme is "unix" for a Unix socket, "tcp" otherwise.
func (l *link) Scheme() string {
	if l.loc == bus.SameHost {
		return "unix"
	}
	return "tcp"
}
func (l *link) String() string {
	return fmt.Sprintf("netbus link to %s via %s (%d conns)", l.peer.Short(), l.conns[0].nc.RemoteAddr(), len(l.conns))
}

var _ bus.FencingLink = (*link)(nil)

// Send frames env (its body already encoded by the bus) and queues it on the
// connection of env's sender.
func (l *link) Send(ctx context.Context, env *bus.Envelope) error {
	if l.closed.Load() {
		return l.sendErr()
	}
	return l.pick(env).send(ctx, env, false)
}

// SendUnfenced is Send, refusing env with bus.ErrLinkFenced, having queued
// nothing, once Fence has begun: the check is under the connection's lock,
// which the send takes anyway, where the bus's send gate would cost two
// atomic adds.
func (l *link) SendUnfenced(ctx context.Context, env *bus.Envelope) error {
	if l.closed.Load() {
		return l.sendErr()
	}
	return l.pick(env).send(ctx, env, true)
}

// Fence fences every connection, so that each SendUnfenced from now on is
// refused, then sends env: env follows every envelope a SendUnfenced
// queued on any connection. On a pool of connections of version 5 or
// above, each connection carries a fence frame after what it took, and the
// peer's reader of each waits at its fence frame until every connection's
// has arrived, so env, queued behind the fence frame of its own, reaches
// the peer's host after all of them. On a pool of older connections env
// follows only what was queued on its own connection.
func (l *link) Fence(ctx context.Context, env *bus.Envelope) error {
	if l.closed.Load() {
		return l.sendErr()
	}
	frames := l.fenceFrames()
	if frames {
		l.roundMu.Lock()
		defer l.roundMu.Unlock()
	}
	for _, c := range l.conns {
		c.fence(true, frames)
	}
	return l.pick(env).send(ctx, env, false)
}

var _ bus.LeadingLink = (*link)(nil)

// Lead sends env, then, on a pool of connections of version 5 or above, a
// fence frame on each connection: the peer's readers of the others wait at
// theirs until the one behind env has arrived, so env reaches the peer's
// host before every envelope sent on any connection after Lead returned.
func (l *link) Lead(ctx context.Context, env *bus.Envelope) error {
	if l.closed.Load() {
		return l.sendErr()
	}
	if !l.fenceFrames() {
		return l.pick(env).send(ctx, env, false)
	}
	l.roundMu.Lock()
	defer l.roundMu.Unlock()
	if err := l.pick(env).send(ctx, env, false); err != nil {
		return err
	}
	for _, c := range l.conns {
		c.fence(false, true)
	}
	return nil
}

// fenceFrames reports whether the link's connections carry fence frames:
// two or more, all of version 5 or above.
func (l *link) fenceFrames() bool {
	ok := len(l.conns) > 1
	for _, c := range l.conns {
		ok = ok && c.res.Version >= versionFence
	}
	return ok
}

// fenceIn takes a fence frame that a reader read, having handed over what
// came before it, and waits until every connection's reader has read its
// own, or the link closes. A reader waits at one fence frame at a time, so
// a round counts one from each connection.
func (l *link) fenceIn() {
	l.fenceMu.Lock()
	if l.fenced == nil {
		l.fenced = make(chan struct{})
	}
	ch := l.fenced
	if l.fences++; l.fences == len(l.conns) {
		close(ch)
		l.fences, l.fenced = 0, nil
	}
	l.fenceMu.Unlock()
	select {
	case <-ch:
	case <-l.done:
	}
}

// pick returns the connection for env: a hash of the sender (or, for a
// message from outside any actor, of the destination), so one sender's
// messages stay in order.
func (l *link) pick(env *bus.Envelope) *conn {
	if len(l.conns) == 1 {
		return l.conns[0]
	}
	r := env.From
	if r.IsZero() {
		r = env.To
	}
	h := uint64(14695981039346656037)
	for _, b := range r.Node {
		h = (h ^ uint64(b)) * 1099511628211
	}
	h = (h ^ r.ID) * 1099511628211
	for i := 0; i < len(r.Name); i++ {
		h = (h ^ uint64(r.Name[i])) * 1099511628211
	}
	return l.conns[h%uint64(len(l.conns))]
}

func (l *link) sendErr() error {
	return fmt.Errorf("netbus: link to %s closed: %w: %w", l.peer.Short(), bus.ErrPeerGone, l.err)
}

// Close closes the link; the transport reports LinkDown with err.
func (l *link) Close(err error) {
	if err == nil {
		err = ErrClosed
	}
	l.close(err)
}

func (l *link) close(err error) { l.shut(err, false) }

// closedByPeer closes the link on the peer's close frame. The peer sends
// one on each connection after what it sent before, so the readers of the
// others read on to their own: a reply queued on another connection still
// arrives. A peer that then keeps a connection open is cut off by its
// writer's linger.
func (l *link) closedByPeer(err error) { l.shut(err, true) }

// shut closes the link once, with err, shutting each connection (conn.shut).
func (l *link) shut(err error, byPeer bool) {
	l.closeOnce.Do(func() {
		l.err = err
		l.closed.Store(true)
		close(l.done)
		for _, c := range l.conns {
			c.shut(err, byPeer)
		}
	})
}

// deliver hands envs, which arrived on c in this order, with their raw
// bodies, to the host, which decodes the bodies before it returns: with one
// DeliverBatch when the host takes batches, one Deliver each otherwise. It
// counts them in c's dataIn. Once c is stopped it hands over nothing and
// reports false. It clears envs: the reader does not keep the messages
// alive, and the bodies aliased its buffer.
func (l *link) deliver(c *conn, envs []bus.Envelope) bool {
	l.deliverMu.Lock()
	ok := !c.stopped
	if ok {
		if bh := l.t.batchHost; bh != nil {
			bh.DeliverBatch(l, envs)
		} else {
			for i := range envs {
				l.t.host.Deliver(l, &envs[i])
			}
		}
		c.dataIn.Add(uint64(len(envs)))
	}
	l.deliverMu.Unlock()
	for i := range envs { // its other fields hold only names, which the decoder keeps anyway
		envs[i].Headers, envs[i].Body, envs[i].Msg = nil, nil, nil
	}
	return ok
}

// alone counts a frame of kind k that is about to be sent and reports
// whether it is the only call in flight on the link: an ask with no other
// ask awaiting its reply, or a reply with no other ask being served. Such a
// frame is worth writing at once (conn.writeNow); with others in flight,
// more frames are on their way and the writer batches them.
func (l *link) alone(k bus.Kind) bool {
	switch k {
	case bus.KindAsk:
		return l.asksOut.Add(1) == 1
	case bus.KindReply, bus.KindError:
		return l.asksIn.Add(-1) <= 0
	}
	return false
}

// received counts a frame of kind k that arrived on the link.
func (l *link) received(k bus.Kind) {
	switch k {
	case bus.KindAsk:
		l.asksIn.Add(1)
	case bus.KindReply, bus.KindError:
		l.asksOut.Add(-1)
	}
}

// readerDone is called by each reader as it exits; the last one reports
// the link down. It first waits for each writer to hand back what it never
// wrote, so that such an ask is handed back before LinkDown and placed
// again on another instance (Host.Undelivered): after LinkDown it would
// have failed with bus.ErrPeerGone. After LinkDown the host hears of the
// link only the tells and publishes in doubt that settle later.
func (l *link) readerDone() {
	if l.readers.Add(-1) != 0 {
		return
	}
	wait := time.NewTimer(handBackWait)
	defer wait.Stop()
	for _, c := range l.conns {
		select {
		case <-c.handedBack:
		case <-wait.C:
			l.t.log.Warn("netbus: a writer did not hand back its queue in time", "peer", l.peer.Short(), "wait", handBackWait)
			l.t.linkDown(l)
			return
		}
	}
	l.t.linkDown(l)
}

// handBackWait bounds how long a link's end waits for its writers to hand
// back their queues. A writer does so once its write under way and its
// last write of the queue are done, each bounded by lingerTimeout.
const handBackWait = 3 * lingerTimeout
