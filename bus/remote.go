package bus

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/xbus-dev/xbus/bus/placement"
	"github.com/xbus-dev/xbus/mailbox"
)

// peer is another node this bus has at least one link to.
//
// links, names and watchers are guarded by Bus.peersMu; names
// change only with Bus.routesMu held as well.
type peer struct {
	id       NodeID
	links    []Link // nearest first
	names    map[uint64]*instance
	subs     peerSubs // subscriptions both ways, with their credit (subflow.go)
	watchers map[Ref][]*process
	inflight atomic.Int64 // asks to this node waiting for a reply
	ctl      *control     // what this node tells the peer of its names and subscriptions
	gate     sendGate     // sends that chose a link; a switch waits for them (switch.go)
	// near is links[0] while the peer is among Bus.peers, published with
	// Bus.nearest (snapshotPeers), else nil: a send to an instance of the
	// peer reads it without looking the node up.
	near atomic.Pointer[nearLink]
}

// nearLink returns pr's nearest link, or nil when it has none or pr is nil.
func (pr *peer) nearLink() Link {
	if pr == nil {
		return nil
	}
	if n := pr.near.Load(); n != nil {
		return n.l
	}
	return nil
}

// System message bodies exchanged between buses over a link.
type (
	// sysNames adds and removes named instances; Reset replaces them all.
	sysNames struct {
		Reset  bool        `json:"reset,omitempty" cbor:"1,keyasint,omitempty"`
		Add    []nameEntry `json:"add,omitempty" cbor:"2,keyasint,omitempty"`
		Remove []nameEntry `json:"remove,omitempty" cbor:"3,keyasint,omitempty"`
		// Want asks for the receiver's whole state in return: the sender
		// has just made its record of the receiver, so it knows none of
		// its names (a first link, or one after its last link went down
		// while the receiver still had another).
		Want bool `json:"want,omitempty" cbor:"4,keyasint,omitempty"`
	}
	nameEntry struct {
		Name string `json:"n" cbor:"1,keyasint"`
		ID   uint64 `json:"i" cbor:"2,keyasint"`
		// Weight is the instance's WithWeight, 0 for 1 (and from a node
		// that predates it, which leaves the key out).
		Weight uint32 `json:"w,omitempty" cbor:"3,keyasint,omitempty"`
	}
)

// nameEntry is how p's name is announced to peers.
func (p *process) nameEntry() nameEntry {
	return nameEntry{Name: p.ref.Name, ID: p.ref.ID, Weight: uint32(p.opts.weight)}
}

func registerSystemTypes(t *Types) error {
	if err := RegisterType[*sysNames](t, "xbus.names"); err != nil {
		return err
	}
	if err := registerSubTypes(t); err != nil {
		return err
	}
	if err := registerStreamTypes(t); err != nil {
		return err
	}
	if err := RegisterType[*sysLink](t, sysLinkType); err != nil {
		return err
	}
	return registerWatchTypes(t)
}

// answer returns the call and arming that a reply or error with corr,
// arrived on l, answers: an arming still waiting, of an ask sent on l, so
// that no other peer (nor another link) can complete it, whatever id it
// guesses, and no answer one that has ended, whatever it repeats. The
// caller completes the arming; of several answers only one can.
func (b *Bus) answer(l Link, corr uint64) (*askCall, uint64, bool) {
	c, named := b.asks.lookup(corr)
	if c == nil {
		return nil, 0, false
	}
	seq, n, ok := c.sent()
	if !ok || seq&askSeqMask != named || n.l != l {
		return nil, 0, false
	}
	return c, seq, true
}

// nextCorr returns a new stream id: the bus's counter mixed with its
// random keys through a bijection of uint64 (xor, multiplication by an odd
// constant and xor-shifts are each invertible), so that ids are unique
// until the counter wraps and cost a few instructions, yet a peer cannot
// tell from the ids it sees which ones this node opened with other peers.
// (An ask's id names its call's slot instead: askTable.)
func (b *Bus) nextCorr() uint64 {
	for {
		x := b.corr.Add(1) ^ b.corrKey[0]
		x *= 0x9e3779b97f4a7c15
		x ^= x >> 31
		x = (x ^ b.corrKey[1]) * 0xbf58476d1ce4e5b9
		x ^= x >> 29
		if x != 0 { // 0 means "no ask" in a call
			return x
		}
	}
}

// LinkUp implements Host: it adds l and tells the peer what this node hosts.
func (b *Bus) LinkUp(l Link) {
	if b.lk.admit(b, l) {
		b.addLink(l)
		b.added(l)
	}
}

// addLink puts l among its peer's links and tells the peer what this node
// hosts; LinkUp calls it for a peer's first link, and for a later one once
// it proved it leads to the same node (bind.go).
func (b *Bus) addLink(l Link) {
	b.namesMu.Lock()
	defer b.namesMu.Unlock()
	b.peersMu.Lock()
	pr := b.peers[l.Peer()]
	if pr == nil {
		pr = &peer{id: l.Peer(), names: map[uint64]*instance{}, watchers: map[Ref][]*process{}}
		pr.ctl = newControl(b, pr)
		b.peers[pr.id] = pr
	}
	var old Link
	if len(pr.links) > 0 {
		old = pr.links[0]
	}
	pr.links = append(pr.links, l)
	slices.SortStableFunc(pr.links, func(x, y Link) int { return schemeRank(x.Scheme()) - schemeRank(y.Scheme()) })
	switched := old != nil && pr.links[0] != old
	if !switched {
		b.snapshotPeers()
	}
	b.peersMu.Unlock()
	if switched {
		b.switchNearest(pr, old, pr.links[0])
	}
	if old != nil {
		// The peer has this node's names from its first link: a reset
		// here would leave it without them for a moment.
		return
	}
	b.queueState(pr, true, l)
}

// queueState queues this node's whole state for pr, asking for the peer's
// in return when want is set, on l (the link the peer's want came on, or
// the first link); namesMu must be held, so that every later change queues
// after it.
func (b *Bus) queueState(pr *peer, want bool, l Link) {
	var names []nameEntry
	b.names.Range(func(_, v any) bool {
		for _, in := range v.(*service).view.Load().inst {
			if in.proc != nil {
				names = append(names, in.proc.nameEntry())
			}
		}
		return true
	})
	pr.ctl.resetTo(names, b.subReset(pr, l), want)
}

// LinkDown implements Host: it removes l, and when it was the peer's last
// link, forgets the peer's names and tells watchers of its actors.
func (b *Bus) LinkDown(l Link, err error) {
	b.releaseDown(l)
	b.routesMu.Lock()
	b.peersMu.Lock()
	pr := b.peers[l.Peer()]
	var gone bool
	var watchers map[Ref][]*process
	if pr != nil {
		pr.links = slices.DeleteFunc(pr.links, func(x Link) bool { return x == l })
		if len(pr.links) == 0 {
			gone = true
			delete(b.peers, pr.id)
			pr.near.Store(nil)
			pr.ctl.stop()
			gone := make(map[*instance]struct{}, len(pr.names))
			for _, in := range pr.names {
				gone[in] = struct{}{}
			}
			b.dropInstances(gone)
			watchers = pr.watchers
		}
		b.snapshotPeers()
	}
	b.peersMu.Unlock()
	b.routesMu.Unlock()

	reason := peerGone(err)
	if gone {
		b.subsGone(pr, reason)
	}
	b.streamsDown(l, reason)
	var unsent error // for asks l handed back unsent (Undelivered): they never ran
	b.asks.forEach(func(c *askCall) {
		seq, n, ok := c.sent()
		if !ok || (n.l != l && !(gone && n.pr == pr)) {
			return
		}
		if c.unsent.Load() == seq {
			if unsent == nil {
				unsent = neverRan(reason)
			}
			c.complete(seq, nil, unsent)
			return
		}
		c.complete(seq, nil, reason)
	})
	b.forgetTellSources(l)
	b.inbound.removeIf(func(in *inbound) bool {
		if in.link != l {
			return false
		}
		in.cancel() // under the lock: once out of the map it may be recycled
		return true
	})
	for ref, ws := range watchers {
		for _, w := range ws {
			w.notifyTerminated(Terminated{Ref: ref, Reason: reason})
		}
	}
	b.lk.linkDown(b, l, err)
}

// nearLink is a peer and its nearest link, as linkTo finds them.
type nearLink struct {
	pr *peer
	l  Link
}

// snapshotPeers publishes each peer's nearest link for linkTo; peersMu
// must be held for writing. Links come and go rarely; every message to a
// peer looks one up, so the lookup reads a snapshot without locking (a
// read lock's shared counter bounced between the cores of concurrent
// senders).
func (b *Bus) snapshotPeers() {
	m := make(map[NodeID]nearLink, len(b.peers))
	for id, pr := range b.peers {
		if len(pr.links) == 0 {
			pr.near.Store(nil)
			continue
		}
		n := pr.near.Load()
		if n == nil || n.l != pr.links[0] {
			n = &nearLink{pr, pr.links[0]}
			pr.near.Store(n)
		}
		m[id] = *n
	}
	b.nearest.Store(&m)
	b.linkGen.Add(1) // localities change with nearest links: routeViews are described again
}

// linkTo returns the nearest link to node, or nil.
func (b *Bus) linkTo(node NodeID) (*peer, Link) {
	m := b.nearest.Load()
	if m == nil {
		return nil, nil
	}
	n := (*m)[node]
	return n.pr, n.l
}

// noLinkTo is the error of a send to to when this node has no link to its
// node.
func noLinkTo(to Ref) error {
	return fmt.Errorf("%w: %s: %w %s", ErrNoRoute, to, errNoLink, to.Node.Short())
}

// peerGone is the reason given for what a link's end, with err, leaves
// undone.
func peerGone(err error) error {
	if err == nil {
		return ErrPeerGone
	}
	return fmt.Errorf("%w: %w", ErrPeerGone, err)
}

// peerFor is the peer to send to node through, and its nearest link: pr's,
// placement's record of the node, when it is still linked, else the one
// looked up by node (nil when there is none).
func (b *Bus) peerFor(pr *peer, node NodeID) (*peer, Link) {
	if l := pr.nearLink(); l != nil {
		return pr, l
	}
	return b.linkTo(node)
}

// enterPeer enters the send gate of the peer to send to node through (see
// peerFor) and returns it with its nearest link as read inside the gate,
// for the caller to send on and then exit the gate with e; l is nil, and
// no gate entered, when the node has no link. Every send that picks a
// peer's link goes through it, so that a switch to a nearer link
// (switch.go) waits for the send. A peer that lost its links between the
// two reads may have been replaced by a new one, its node linked again:
// the node is looked up once more, and its new peer's link read inside
// that peer's gate, rather than the send failing for want of a link that
// is up, or going out on the new peer's link without its gate. kind, of
// what the caller sends, is for the test hook beforeGate.
func (b *Bus) enterPeer(pr *peer, node NodeID, kind Kind) (_ *peer, l Link, e uint32) {
	pr, l = b.peerFor(pr, node)
	if l != nil && b.beforeGate != nil {
		b.beforeGate(kind)
	}
	for try := 0; l != nil && try < 2; try++ {
		e = pr.gate.enter()
		if l = pr.nearLink(); l != nil {
			return pr, l, e
		}
		pr.gate.exit(e)
		pr, l = b.linkTo(node)
	}
	return nil, nil, 0
}

// tellRemote sends a tell to node through pr (nil: looked up), bounded by
// ctx or, when ctx has no deadline, by the bus's send timeout. On a link
// that fences itself (FencingLink) it skips the peer's send gate; one
// fenced (or closed) since the tell chose it refuses it, and the tell takes
// the gate to the peer's nearest link, which is another by then.
func (b *Bus) tellRemote(ctx context.Context, pr *peer, to *Ref, from *Ref, msg any) error {
	if _, l := b.peerFor(pr, to.Node); l != nil {
		if fl, ok := l.(FencingLink); ok {
			if b.beforeGate != nil {
				b.beforeGate(KindTell)
			}
			err := b.sendOutOn(ctx, l, fl, outgoingTell(ctx, to, from, msg), b.sendTimeout)
			if err == nil || !errors.Is(err, ErrLinkFenced) && !errors.Is(err, ErrPeerGone) {
				return err
			}
			// Fenced, or closed, since the tell chose it: the link took
			// nothing, and the peer's nearest link may be another now.
			pr = nil
		}
	}
	pr, l, e := b.enterPeer(pr, to.Node, KindTell)
	if l == nil {
		return noLinkTo(*to)
	}
	defer pr.gate.exit(e)
	return b.sendOut(ctx, l, outgoingTell(ctx, to, from, msg), b.sendTimeout)
}

// outgoingTell returns a pooled outgoing holding a tell of msg.
func outgoingTell(ctx context.Context, to *Ref, from *Ref, msg any) *outgoing {
	o := getOutgoing()
	hs, c := wireOptionsOf(ctx)
	// Field by field into the zeroed envelope (see outgoing.reset).
	env := &o.env
	env.Kind, env.Headers, env.Msg = KindTell, hs, msg
	setRef(&env.From, from)
	setRef(&env.To, to)
	o.codec = c
	return o
}

// bodyBufs pools the buffers the bus encodes bodies into for Link.Send,
// which lets the caller reuse them once it returns.
var bodyBufs = sync.Pool{New: func() any { b := make([]byte, 0, 256); return &b }}

// maxPooledBody bounds the buffers kept: one grown by a large message is
// dropped rather than held.
const maxPooledBody = 64 << 10

// sendOn encodes env.Msg with l's codec into env.Type and env.Body and sends
// env on l. Body is cleared again before it returns.
func (b *Bus) sendOn(ctx context.Context, l Link, env *Envelope) error {
	return b.sendOnWith(ctx, l, nil, env)
}

// sendOnWith is sendOn encoding with c (nil: l's codec).
func (b *Bus) sendOnWith(ctx context.Context, l Link, c Codec, env *Envelope) error {
	return b.encodeSend(ctx, l, c, env, nil)
}

// encodeSend is sendOnWith, sending through via (a link's Fence or Lead)
// when via is not nil.
func (b *Bus) encodeSend(ctx context.Context, l Link, c Codec, env *Envelope, via func(context.Context, *Envelope) error) error {
	bp := bodyBufs.Get().(*[]byte)
	body, err := b.encodeFor(l, c, env, (*bp)[:0])
	if err == nil {
		env.Body = body
		if via != nil {
			err = via(ctx, env)
		} else {
			err = l.Send(ctx, env)
		}
		env.Body = nil
		*bp = body
	}
	if cap(*bp) <= maxPooledBody {
		bodyBufs.Put(bp)
	}
	return sendError(err)
}

// encoded is one body encoded with one codec, for a publish that goes to
// several subscriptions: each distinct codec encodes the body once.
type encoded struct {
	codec string
	typ   string
	body  []byte
}

func (b *Bus) askRemote(ctx context.Context, to Ref, msg any, from Ref, call *askCall, seq uint64) error {
	var pr *peer
	if call.inst != nil {
		pr = call.inst.peer
	}
	pr, l, e := b.enterPeer(pr, to.Node, KindAsk)
	if l != nil {
		defer pr.gate.exit(e)
	}
	if l == nil {
		b.putCall(call)
		return neverRan(noLinkTo(to))
	}
	var timeout time.Duration
	if dl, ok := ctx.Deadline(); ok {
		// The time left travels, not the time of day: the peer's clock
		// may differ from ours.
		if timeout = time.Until(dl); timeout <= 0 {
			b.putCall(call)
			return ctxError(context.DeadlineExceeded)
		}
	}
	// Read before the arming starts: whoever completes an actor's ask
	// recycles its call, which another ask may then take.
	async := call.cb != nil
	corr := b.asks.id(call, seq)
	// A recycled call keeps its peer, link and via (putCall): each is
	// stored only where it differs, a write barrier spared.
	if call.peer != pr {
		call.peer = pr
	}
	if call.link != l {
		call.link = l
	}
	call.corr = corr
	pr.inflight.Add(1)
	if call.inst != nil {
		call.inst.stats.Add(1) // until the reply or the end (askCall.ended)
		if call.inst.timed {
			call.start = time.Now()
		}
	}
	if n := call.via.Load(); n == nil || n.pr != pr || n.l != l {
		if n = pr.near.Load(); n == nil || n.l != l {
			n = &nearLink{pr, l} // l is no longer pr's nearest: rare
		}
		call.via.Store(n)
	}
	// The arming starts: from here a reply on l naming it may complete it
	// (answer), and the asker may give up on it.
	call.state.Store(seq << stateBits)
	o := getOutgoing()
	hs, c := wireOptionsOf(ctx)
	env := &o.env // field by field into the zeroed envelope (see outgoing.reset)
	env.Kind, env.Corr, env.Timeout, env.Headers, env.Msg = KindAsk, corr, timeout, hs, msg
	setRef(&env.From, &from)
	setRef(&env.To, &to)
	if c != nil {
		b.codecs.learn(c) // its reply comes back in c
		o.codec = c
	}
	if err := b.sendOut(ctx, l, o, b.sendTimeout); err != nil {
		// The link did not take it: it never reached the peer.
		err = neverRan(err)
		switch {
		case call.abandon(seq, err):
			b.putCall(call)
		case !async:
			// Completed meanwhile, by the link's end: the failed send
			// proves more (it never ran), so it is the outcome.
			b.settled(call)
		default:
			return nil // its callback has the link's end for outcome already
		}
		return err
	}
	return nil
}

// settled recycles c, whose asker no longer waits on it, once another has
// completed it and stored the outcome.
func (b *Bus) settled(c *askCall) {
	for {
		switch c.state.Load() & stateMask {
		case callDone:
			b.putCall(c)
			return
		case callCompleting:
			runtime.Gosched()
		default:
			return // not completed by another: never so here
		}
	}
}

// forgetRemote drops a remote ask its asker gave up on and tells the peer to
// stop work on it.
func (b *Bus) forgetRemote(c *askCall) {
	if c.link == nil {
		return
	}
	l, corr := c.link, c.corr
	b.tasks.Go(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = l.Send(ctx, &Envelope{Kind: KindCancel, From: Ref{Node: b.id}, Corr: corr}) // no body to encode
	})
}

// replyRemote sends the outcome of an ask that came over a link back on it,
// with the reply's headers hs, encoded with codec, or when it is nil with
// the codec the ask came in.
func (b *Bus) replyRemote(in *inbound, reply any, err error, codec Codec, hs []Header) {
	// The ask stays inbound until its reply is queued on the link, so that
	// a retired link is not closed between the two (closeRetired); a reply
	// that must wait for room leaves it before it waits (below).
	// No From or To: the link it goes back on and Corr name the ask, and
	// the two refs were a third of a small reply's bytes to encode and decode.
	kind, msg := KindReply, reply
	if u, ok := err.(*undelivered); ok { // a refusal (process.Dropped)
		kind, msg, hs = KindError, u.err, append(hs[:len(hs):len(hs)], neverRanHeaders...)
	} else if err != nil {
		kind, msg = KindError, err
		for len(hs) > 0 && hs[len(hs)-1].Key == neverRanKey {
			hs = hs[:len(hs)-1] // the actor's, not a refusal's: the ask ran
		}
	} else if codec == nil && in.env.Codec != "" {
		codec, _ = b.codecFor(in.link, in.env.Codec) // known: the ask decoded
	}
	o := getOutgoing()
	o.env.Kind, o.env.Corr, o.env.Msg, o.env.Headers = kind, in.env.Corr, msg, hs
	o.codec = codec
	e := b.sendOut(noWait, in.link, o, 0) // recycles o
	if e == nil {
		b.finishInbound(in)
		return
	}
	if !errors.Is(e, ErrCanceled) { // not "no room now"
		if !errors.Is(e, ErrPeerGone) && !errors.Is(e, ErrClosed) && !errors.Is(e, ErrDeadline) {
			// The link is up but the reply itself cannot go (its body or
			// headers do not encode): the asker gets why at once, in an
			// error that encodes, rather than waiting for its deadline.
			b.refuse(in.link, in.env.Corr, fmt.Errorf("%w: the reply could not be sent: %w", ErrBadEnvelope, e))
		}
		b.finishInbound(in)
		b.log.Debug("reply to a peer not sent", "peer", in.env.From.Node.Short(), "err", e)
		return
	}
	// The link has no room now. The actor does not wait on the peer: the
	// reply waits on a goroutine of its own, no longer than the asker
	// waits and the send timeout. Past maxReplyWaiters of those the actor
	// waits itself, so a peer that takes no replies costs bounded memory.
	d := b.sendTimeout
	if !in.deadline.IsZero() {
		d = min(d, time.Until(in.deadline))
	}
	// in is recycled once the actor's Receive returns: the waiting reply
	// below must not refer to it, so it leaves Bus.inbound now.
	b.finishInbound(in)
	if d <= 0 {
		b.log.Debug("reply to a peer not sent: its asker gave up", "peer", in.env.From.Node.Short())
		return
	}
	b.replyWhenRoom(in.link, in.env.From.Node, Envelope{Kind: kind, Corr: in.env.Corr, Msg: msg, Headers: hs}, codec, d)
}

// replyWhenRoom sends env, a reply the link l to peer had no room for,
// within d, from a goroutine of its own unless maxReplyWaiters wait
// already. A method of its own, so that the envelope its goroutine keeps
// is allocated only on this path and not with every reply.
func (b *Bus) replyWhenRoom(l Link, peer NodeID, env Envelope, codec Codec, d time.Duration) {
	send := func() {
		ctx, cancel := context.WithTimeout(context.Background(), d)
		defer cancel()
		if e := b.sendOnWith(ctx, l, codec, &env); e != nil {
			b.log.Debug("reply to a peer not sent", "peer", peer.Short(), "err", e)
		}
	}
	if b.replyWaiters.Add(1) > maxReplyWaiters {
		b.replyWaiters.Add(-1)
		send()
		return
	}
	if !b.tasks.Go(func() {
		defer b.replyWaiters.Add(-1)
		send()
	}) {
		b.replyWaiters.Add(-1) // the bus has closed: the link is gone too
	}
}

// replyTimeout bounds how long an answer the bus sends on its own (a
// refusal, a retired link's last reply) waits for room on a busy link.
const replyTimeout = 10 * time.Second

// maxReplyWaiters bounds the replies of a bus waiting for room on their
// links, each on a goroutine of its own.
const maxReplyWaiters = 1024

// outgoing is what the bus sends a message to a peer with: the envelope,
// the buffer its body is encoded into and the bound of the send. They are
// pooled, so that a send allocates neither an envelope, a buffer nor a timer.
type outgoing struct {
	env   Envelope
	codec Codec // nil: the link's
	ctx   lazyTimeout
	body  []byte
}

var outgoings = sync.Pool{New: func() any { return new(outgoing) }}

func getOutgoing() *outgoing { return outgoings.Get().(*outgoing) }

// sendOut encodes o.env's body with l's codec and sends it on l, then
// recycles o. The send is bounded by ctx, or by d when ctx has no deadline:
// the bus never hands a link an unbounded send. An error that ends it is
// one of the bus's (a timeout matches ErrDeadline).
func (b *Bus) sendOut(ctx context.Context, l Link, o *outgoing, d time.Duration) error {
	return b.sendOutOn(ctx, l, nil, o, d)
}

// sendOutOn is sendOut through fl's SendUnfenced when fl, which is l, is
// not nil.
func (b *Bus) sendOutOn(ctx context.Context, l Link, fl FencingLink, o *outgoing, d time.Duration) error {
	sctx := ctx
	if _, ok := ctx.Deadline(); !ok && ctx != noWait {
		o.ctx.parent, o.ctx.d = ctx, d // the rest is zero (reset)
		sctx = &o.ctx
	}
	body, err := b.encodeFor(l, o.codec, &o.env, o.body[:0])
	if err == nil {
		o.body, o.env.Body = body, body
		if fl != nil {
			err = fl.SendUnfenced(sctx, &o.env)
		} else {
			err = l.Send(sctx, &o.env)
		}
	}
	// A timer that was started may still be read by the link: o is then
	// left to the collector.
	if o.ctx.stop() && cap(o.body) <= maxPooledBody {
		o.reset()
		outgoings.Put(o)
	}
	return sendError(err)
}

// reset zeroes o but for its buffer, field by field: storing a whole zero
// envelope (or one made whole) took the collector's bulk write barrier over
// all its 200 bytes whenever it was marking, a tenth of a tell's cost.
func (o *outgoing) reset() {
	clearEnvelope(&o.env)
	o.codec = nil
	o.ctx.parent, o.ctx.d, o.ctx.at = nil, 0, time.Time{} // a started one is never reset (stop)
}

// sendError maps a context error a link returned to the bus's own.
func sendError(err error) error {
	if err == nil || errors.Is(err, ErrDeadline) || errors.Is(err, ErrCanceled) {
		return err
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return ctxError(err)
	}
	return err
}

// lazyTimeout is a context that ends with parent, or d after it is first
// asked for its deadline or waited on. A link whose queue has room asks
// for neither, so the common send starts no timer; one that applies
// backpressure gets the same bound as context.WithTimeout(parent, d), and
// a timer only if it waits on Done: a link that sleeps until its
// deadline by other means (shmbus waiting for room) needs none.
type lazyTimeout struct {
	parent  context.Context // nil: none
	d       time.Duration
	mu      sync.Mutex
	at      time.Time       // the deadline, fixed when first asked; zero until then
	ctx     context.Context // nil until first waited on
	cancel  context.CancelFunc
	started atomic.Bool // ctx is set; read without mu by stop
}

// deadline fixes the deadline the first time it is asked for: d from now,
// or parent's if that comes first. mu is held.
func (c *lazyTimeout) deadline() time.Time {
	if c.at.IsZero() {
		c.at = time.Now().Add(c.d)
		if c.parent != nil {
			if pd, ok := c.parent.Deadline(); ok && pd.Before(c.at) {
				c.at = pd
			}
		}
	}
	return c.at
}

func (c *lazyTimeout) Deadline() (time.Time, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.deadline(), true
}

func (c *lazyTimeout) Done() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ctx == nil {
		parent := c.parent
		if parent == nil {
			parent = context.Background()
		}
		c.ctx, c.cancel = context.WithDeadline(parent, c.deadline())
		c.started.Store(true)
	}
	return c.ctx.Done()
}

func (c *lazyTimeout) Value(key any) any {
	if c.parent == nil {
		return nil
	}
	return c.parent.Value(key)
}

func (c *lazyTimeout) Err() error {
	c.mu.Lock()
	ctx, at := c.ctx, c.at
	c.mu.Unlock()
	if ctx != nil {
		return ctx.Err()
	}
	if c.parent != nil {
		if err := c.parent.Err(); err != nil {
			return err
		}
	}
	if !at.IsZero() && !time.Now().Before(at) { // nobody waited, yet the time has started
		return context.DeadlineExceeded
	}
	return nil
}

// stop releases the timer, if one was started, and reports whether none was:
// only then may c be reused, as nobody can be waiting on it.
func (c *lazyTimeout) stop() bool {
	if !c.started.Load() {
		return true // the common send: no lock taken
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ctx == nil {
		return true
	}
	c.cancel()
	return false
}

func (b *Bus) finishInbound(in *inbound) {
	b.inbound.delete(in)
}

// tellPeers queues a change for every peer (see control); namesMu must be
// held, so that changes are queued in the order they happened. It never
// waits on a peer.
func (b *Bus) tellPeers(f func(*control)) {
	b.peersMu.RLock()
	ctls := make([]*control, 0, len(b.peers))
	for _, pr := range b.peers {
		ctls = append(ctls, pr.ctl)
	}
	b.peersMu.RUnlock()
	for _, c := range ctls {
		f(c)
	}
}

// Deliver implements Host: one envelope that arrived on l. It decodes the
// body here, with l's codec, so that every transport follows one policy for
// a body that does not decode (see undecodable).
func (b *Bus) Deliver(l Link, env *Envelope) {
	if b.lk.isHeld(l) {
		b.deliverHeld(l, env)
		return
	}
	if b.lk.hold(b, l, env) {
		return // the peer switched to l: it waits for the old link's fence
	}
	b.deliver(l, env)
}

// deliver is Deliver once the link's gates let env through.
func (b *Bus) deliver(l Link, env *Envelope) {
	err := b.decodeBody(l, env)
	env.Body = nil // it aliased the transport's buffer
	if err != nil {
		b.undecodable(l, env, err)
		return
	}
	switch env.Kind {
	case KindTell, KindAsk:
		b.deliverMessage(l, env)
	case KindReply, KindError:
		c, seq, ok := b.answer(l, env.Corr)
		if !ok {
			return // the asker gave up, or l is not the link the ask went on
		}
		if env.Kind == KindError {
			err, hs := answered(env)
			c.completeWith(seq, nil, err, hs)
		} else {
			c.completeWith(seq, env.Msg, nil, env.Headers)
		}
	case KindPublish:
		b.deliverRemotePublish(l, env, nil)
	case KindStreamItem, KindStreamEnd:
		b.deliverStream(l, env)
	case KindCancel:
		b.inbound.cancel(l.Peer(), env.Corr)
		b.streamCanceled(l, env)
	case KindSystem:
		b.handleSystem(l, env.Msg)
	default:
		b.deadLetter(env.Msg, env.To, env.From, fmt.Errorf("%w: unexpected %v from a peer", ErrBadEnvelope, env.Kind))
	}
}

// undecodable handles an envelope whose body does not decode, the same on
// every transport: an ask is refused at once with the coded error, an ask
// waiting on a reply that does not decode gets the error, every such
// envelope is a dead letter with the reason, and the link stays up.
func (b *Bus) undecodable(l Link, env *Envelope, err error) {
	if errors.Is(err, ErrUnknownType) {
		err = fmt.Errorf("%w: %q is not registered on node %s: register it there with bus.RegisterType[T](b.Types(), %q)",
			ErrUnknownType, env.Type, b.id.Short(), env.Type)
	} else if !errors.Is(err, ErrUnknownCodec) { // that one names the node already
		err = fmt.Errorf("%w (on node %s)", err, b.id.Short())
	}
	// Counted first, so an asker that has its error sees the count.
	b.deadLetter(nil, env.To, env.From, err)
	switch env.Kind {
	case KindAsk:
		b.refuse(l, env.Corr, err)
	case KindReply, KindError:
		if c, seq, ok := b.answer(l, env.Corr); ok {
			c.complete(seq, nil, err)
		}
	case KindPublish:
		b.deliverRemotePublish(l, env, err) // its credit comes back
	case KindStreamItem, KindStreamEnd, KindCancel:
		b.streamUndecodable(l, env, err)
	case KindSystem:
		b.log.Warn("a system message from a peer does not decode", "peer", l.Peer().Short(), "err", err)
	}
}

// refuse answers an ask that arrived on l with err, without waiting:
// Deliver runs on the link's reader, which must not wait on the peer. When
// the link has no room for it at once, the answer goes from a goroutine of
// its own, bounded by replyTimeout.
func (b *Bus) refuse(l Link, corr uint64, err error) {
	env := Envelope{Kind: KindError, Corr: corr, Msg: err}
	if u, ok := err.(*undelivered); ok {
		env.Msg, env.Headers = u.err, neverRanHeaders
	}
	e := b.sendOn(noWait, l, &env)
	if e == nil || errors.Is(e, ErrPeerGone) {
		return
	}
	b.tasks.Go(func() {
		ctx, cancel := context.WithTimeout(context.Background(), replyTimeout)
		defer cancel()
		_ = b.sendOn(ctx, l, &env)
	})
}

// neverRanHeaders are the headers of a refusal (see undelivered).
var neverRanHeaders = []Header{{Key: neverRanKey}}

// answered is the error of an error answer env to an ask of ours, and the
// headers its answerer set: a refusal before the ask ran (neverRanKey)
// proves so, and its header is ours, not the answerer's.
func answered(env *Envelope) (error, []Header) {
	err, _ := env.Msg.(error)
	if err == nil {
		err = fmt.Errorf("%w: error reply without an error", ErrBadEnvelope)
	}
	hs := env.Headers
	if len(hs) > 0 && hs[len(hs)-1].Key == neverRanKey {
		return neverRan(err), hs[: len(hs)-1 : len(hs)-1]
	}
	return err, hs
}

// noWait is a context that has ended: a Send with it takes the envelope if
// the link has room at once and fails otherwise.
var noWait = func() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}()

// deliverMessage queues a tell or an ask from a peer, or runs it here, on
// the link's reader, when its actor is WithInline and idle. It never
// waits: a full mailbox whose policy is to block refuses the message at
// once (ErrMailboxFull) instead, because the link's reader must not wait
// on one actor. A refused ask is answered with the error; every refused
// message is a dead letter with the reason.
func (b *Bus) deliverMessage(l Link, env *Envelope) {
	if b.forged(l, env) {
		return
	}
	p := b.localTarget(env)
	if p == nil {
		b.refuseMessage(l, env, errNoRouteTo(env.To))
		return
	}
	in := b.inboundOf(l, env, p)
	d := linkOf(env.Msg, in)
	if p.mb.Inline() && p.mb.Claim() {
		// Idle and WithInline: it runs here, as a send that scheduled it
		// would run it, without the trip through its queue.
		p.Invoke(d)
		p.mb.Release()
		return
	}
	if err := p.send(context.Background(), d, linkPolicy(p)); err != nil {
		b.unqueued(p, d, err)
	}
}

// forged reports whether env, a tell or an ask that arrived on l, names a
// sender that is not an actor of l's peer (another node's, or a name with
// no node), and if so refuses it and closes l: a peer speaks only for its
// own actors, and the actor must not take, nor answer or reply to, another
// node's on its word.
func (b *Bus) forged(l Link, env *Envelope) bool {
	if env.From.IsZero() || env.From.Node == l.Peer() {
		return false
	}
	err := fmt.Errorf("%w: %v from node %s in the name of %s", ErrBadEnvelope, env.Kind, l.Peer().Short(), env.From)
	b.refuseMessage(l, env, err)
	b.log.Warn("a peer sent a message in another's name; closing its link", "peer", l.Peer().Short(), "from", env.From.String())
	l.Close(err)
	return true
}

// errNoRouteTo is the reason a message from a peer to a name or actor this
// node does not host is refused.
func errNoRouteTo(to Ref) error { return fmt.Errorf("%w: %s", ErrNoRoute, to) }

// localTarget is the local process a tell or an ask from a peer goes to, or
// nil.
func (b *Bus) localTarget(env *Envelope) *process {
	if env.To.ID != 0 {
		if env.To.Node == b.id {
			return b.procs.get(env.To.ID)
		}
		return nil
	}
	return b.placeLocal(env.To.Name)
}

// inboundOf returns the record of env's header fields for p's turn: the
// shared one of its sender (tellSource), or a pooled one; an ask's goes
// into Bus.inbound until its reply is sent.
func (b *Bus) inboundOf(l Link, env *Envelope, p *process) *inbound {
	if in := b.tellSource(l, env); in != nil {
		return in
	}
	in := inbounds.Get().(*inbound)
	in.link = l
	copyHead(&in.env, env) // without Msg and Body
	if env.Timeout > 0 {
		in.deadline = time.Now().Add(env.Timeout)
	}
	if env.Kind == KindAsk {
		b.inbound.store(l.Peer(), in)
		p.stats.Add(1) // until its reply is sent (process.answer)
	}
	return in
}

// linkPolicy is how a message from a link goes into p's mailbox: a full
// mailbox that would block refuses it at once instead.
func linkPolicy(p *process) mailbox.Policy {
	if p.mb.Options().Policy == mailbox.Block {
		return mailbox.FailFast
	}
	return mailbox.Default
}

// unqueued undoes inboundOf for d, a message from a link that p's mailbox
// refused with err, and refuses it.
func (b *Bus) unqueued(p *process, d delivery, err error) {
	in := d.in()
	env := in.env
	env.Msg = d.msg
	if env.Kind == KindAsk {
		p.stats.Add(-1)
		b.finishInbound(in)
	}
	l := in.link
	if !in.shared {
		putInbound(in)
	}
	b.refuseMessage(l, &env, err)
}

// refuseMessage answers a tell or ask from a peer that could not be queued.
func (b *Bus) refuseMessage(l Link, env *Envelope, err error) {
	if env.Kind == KindAsk {
		b.refuse(l, env.Corr, neverRan(err))
	}
	b.deadLetter(env.Msg, env.To, env.From, err)
}

// inbounds pools inbound records. Invoke puts one back when the actor's
// Receive has returned and nothing refers to it any more: a tell's always
// (Promise keeps no tell); an ask's unless the actor took a Promise, since
// Receive returning means it was answered, which took it out of
// Bus.inbound (whose users touch an entry only under its shard's lock).
var inbounds = sync.Pool{New: func() any { return new(inbound) }}

func putInbound(in *inbound) {
	clearEnvelope(&in.env)
	in.link, in.deadline = nil, time.Time{}
	if in.canceled.Load() { // rarely: a load is cheaper than a locked exchange
		in.canceled.Store(false)
	}
	in.answered.Store(false)
	in.hooks.reset()
	inbounds.Put(in)
}

func (b *Bus) handleSystem(l Link, m any) {
	switch m := m.(type) {
	case *sysNames:
		b.routesMu.Lock()
		b.peersMu.Lock()
		pr := b.peers[l.Peer()]
		if pr == nil {
			b.peersMu.Unlock()
			b.routesMu.Unlock()
			return
		}
		// Removals, then additions, each applied once per name: one view
		// per instance cost time in the square of a name's instances.
		gone := map[*instance]struct{}{}
		if m.Reset {
			// Only what the new state lacks goes: removing an instance
			// it keeps, to add it again, would leave a moment in which
			// a send finds no route to it.
			keep := make(map[uint64]string, len(m.Add))
			for _, e := range m.Add {
				keep[e.ID] = e.Name
			}
			for id, in := range pr.names {
				if name, ok := keep[id]; ok && name == in.ref.Name {
					continue
				}
				gone[in] = struct{}{}
				delete(pr.names, id)
			}
		}
		for _, e := range m.Remove {
			if in := pr.names[e.ID]; in != nil {
				gone[in] = struct{}{}
				delete(pr.names, e.ID)
			}
		}
		b.dropInstances(gone)
		var order []string
		added := map[string][]*instance{}
		over := false
		for _, e := range m.Add {
			if validName(e.Name) != nil || e.Weight > MaxWeight || pr.names[e.ID] != nil {
				continue
			}
			if len(pr.names) >= maxRemoteNames {
				over = true
				break
			}
			in := &instance{ref: Ref{Node: pr.id, Name: e.Name, ID: e.ID}, peer: pr, stats: &placement.Stats{}, weight: int(e.Weight)}
			pr.names[e.ID] = in
			if added[e.Name] == nil {
				order = append(order, e.Name)
			}
			added[e.Name] = append(added[e.Name], in)
		}
		for _, name := range order {
			b.addInstances(added[name])
		}
		b.peersMu.Unlock()
		b.routesMu.Unlock()
		if over {
			l.Close(fmt.Errorf("%w: the peer announced more than %d instances", ErrBadEnvelope, maxRemoteNames))
			return
		}
		if m.Want {
			// The peer has just made its record of this node: whatever it
			// had of our names went with its last link.
			b.namesMu.Lock()
			b.queueState(pr, false, l)
			b.namesMu.Unlock()
		}
	case *sysLink:
		b.onLinkMsg(l, m)
	case *sysSub:
		b.onSub(l, m)
	case *sysGrant:
		b.onGrant(l, m)
	case *sysStreamGrant:
		b.onStreamGrant(l, m)
	case *sysWatch:
		b.watchedFrom(l, m)
	case *sysStopped:
		b.stoppedOnPeer(l, m)
	default:
		b.log.Debug("unknown system message from a peer", "peer", l.Peer().Short(), "type", fmt.Sprintf("%T", m))
	}
}
