package bus

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/xbus-dev/xbus/bus/internal/flow"
	"github.com/xbus-dev/xbus/bus/internal/subject"
)

// End-to-end credit for subscriptions across links (docs/wire.md).
//
// The subscribing node announces each subscription to every peer with its
// id, pattern, window and policy (sysSub, through the peer's control queue)
// and keeps one flow.Receiver per publishing peer per subscription. The
// publishing node keeps, per peer, a flow.Sender per subscription and sends
// each matching publish to the subscription by id while it has credit;
// without credit it applies the subscription's policy itself: SlowBlock
// waits for a grant, bounded by the publisher's ctx; SlowDropOldest and
// SlowCut hold at most a window, dropping the oldest, all of one peer's
// subscriptions together at most maxPeerHeld and all peers' at most
// maxNodeHeld (subheld.go). The subscribing node
// grants credit back (sysGrant) as its reader takes messages, so a reader
// that stops costs at most a window held on each side.
//
// Credit belongs to an epoch: every reset of a subscribing node's
// announcements to a peer starts a new one, with fresh receivers on one side
// and fresh senders on the other. Publishes and grants carry their epoch
// (a publish in Envelope.Corr), so that credit of an older epoch is never
// counted against a newer one.

type (
	// sysSub announces the sender's subscriptions. Reset replaces them
	// all and starts Epoch; every Add grants its whole Window anew.
	sysSub struct {
		Reset  bool       `json:"reset,omitempty" cbor:"1,keyasint,omitempty"`
		Epoch  uint64     `json:"epoch,omitempty" cbor:"2,keyasint,omitempty"`
		Add    []subEntry `json:"add,omitempty" cbor:"3,keyasint,omitempty"`
		Remove []uint64   `json:"remove,omitempty" cbor:"4,keyasint,omitempty"`
	}
	subEntry struct {
		ID      uint64 `json:"i" cbor:"1,keyasint"`
		Pattern string `json:"p" cbor:"2,keyasint"`
		Window  uint32 `json:"w" cbor:"3,keyasint"`
		Policy  uint8  `json:"s,omitempty" cbor:"4,keyasint,omitempty"`
	}
	// sysGrant grants credit to the receiver's publishes to the sender's
	// subscriptions, in Epoch.
	sysGrant struct {
		Epoch  uint64       `json:"epoch,omitempty" cbor:"1,keyasint,omitempty"`
		Grants []grantEntry `json:"g,omitempty" cbor:"2,keyasint,omitempty"`
	}
	grantEntry struct {
		ID uint64 `json:"i" cbor:"1,keyasint"`
		N  uint64 `json:"n" cbor:"2,keyasint"`
	}
)

func registerSubTypes(t *Types) error {
	if err := RegisterType[*sysSub](t, "xbus.sub"); err != nil {
		return err
	}
	return RegisterType[*sysGrant](t, "xbus.grant")
}

// maxRemoteSubs bounds the subscriptions one peer may announce.
const maxRemoteSubs = 1 << 16

// maxRemoteNames bounds the registered instances one peer may announce:
// each costs this node memory and a place in its routing views, so a peer
// that announces more is taken for a liar and its link closes.
const maxRemoteNames = 1 << 18

// peerSubs is what one peer's subscriptions cost this node, both ways.
type peerSubs struct {
	mu      sync.Mutex
	epoch   uint64 // of this node's announcements to the peer; set under Bus.namesMu
	resetOn Link   // the link the last reset was queued for

	// As the publishing node: the peer's subscriptions, in theirs by id
	// and in index by pattern, which a publish matches its subject in.
	theirs  map[uint64]*remoteSub
	index   subject.Index[*remoteSub]
	their   uint64 // the epoch of the peer's last reset
	gone    bool
	held    int     // publishes held in all of theirs: at most Bus.peerHeld
	holding holding // those of theirs that hold any, the most first (subheld.go)
	// bell is closed on the next grant, reset or end of any of the peer's
	// subscriptions: what a publish waiting for several of them waits on
	// (awaitPeer).
	bell chan struct{}
}

// nextBell returns the channel closed on the next grant, reset or end of
// any of the peer's subscriptions.
func (ps *peerSubs) nextBell() <-chan struct{} {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if ps.bell == nil {
		ps.bell = make(chan struct{})
	}
	return ps.bell
}

// ring closes the bell, if anyone took it; ps.mu is held.
func (ps *peerSubs) ring() {
	if ps.bell != nil {
		close(ps.bell)
		ps.bell = nil
	}
}

// remoteSub is a peer's subscription as the publishing node sees it;
// peerSubs.mu guards it.
type remoteSub struct {
	id       uint64
	pattern  string
	window   int
	policy   SlowPolicy
	snd      flow.Sender
	held     []Message     // publishes waiting for credit, oldest first
	at       int           // index in peerSubs.holding while it holds any
	draining bool          // the control goroutine is sending held[0]
	wait     chan struct{} // closed on the next grant or end
	closed   bool
}

func (rs *remoteSub) wakeAll() {
	if rs.wait != nil {
		close(rs.wait)
		rs.wait = nil
	}
}

// subRecv is one subscription's credit toward one publishing peer: the
// receiver of the current epoch and that of the one before, whose
// publishes may still be on their way.
type subRecv struct {
	cur, prev           flow.Receiver
	curEpoch, prevEpoch uint64
}

// remoteItem is a publish from a peer waiting in a subscription's queue.
type remoteItem struct {
	m     Message
	peer  NodeID
	epoch uint64
}

// subState is what a reset announces of this node's subscriptions.
type subState struct {
	epoch   uint64
	entries []subEntry
}

// subReset starts a new credit epoch with pr and returns the announcement
// of every subscription that goes with it; namesMu must be held. A peer's
// want that came on the link this node last reset on needs none: that
// reset reached the peer's new record already (a new pair of records
// exchanges resets and wants on its first link). One on another link means
// the peer made its record after it: the peer's senders start over, so this
// node's receivers must too.
func (b *Bus) subReset(pr *peer, l Link) *subState {
	ps := &pr.subs
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if ps.resetOn == l && ps.epoch != 0 {
		return nil
	}
	ps.resetOn = l
	ps.epoch = b.subEpoch.Add(1)
	st := &subState{epoch: ps.epoch}
	for _, s := range b.subscriptions() {
		if s.pattern != DeadLetterSubject {
			st.entries = append(st.entries, s.entry())
		}
	}
	return st
}

func (s *Subscription) entry() subEntry {
	return subEntry{ID: s.id, Pattern: s.pattern, Window: uint32(s.window), Policy: uint8(s.policy)}
}

// onSub applies a peer's announcement of its subscriptions.
func (b *Bus) onSub(l Link, m *sysSub) {
	pr := b.peerOf(l)
	if pr == nil {
		return
	}
	ps := &pr.subs
	var dead []Message
	ps.mu.Lock()
	if ps.gone {
		ps.mu.Unlock()
		return
	}
	if ps.theirs == nil {
		ps.theirs = map[uint64]*remoteSub{}
	}
	add := make(map[uint64]subEntry, len(m.Add))
	for _, e := range m.Add {
		if validPattern(e.Pattern) == nil && e.Window >= 1 && e.Window <= flow.MaxWindow && e.Policy <= uint8(SlowCut) {
			add[e.ID] = e
		}
	}
	end := func(id uint64) {
		if rs := ps.theirs[id]; rs != nil {
			rs.closed = true
			rs.wakeAll()
			dead = append(dead, b.releaseHeld(ps, rs)...)
			delete(ps.theirs, id)
			ps.index.Remove(rs.pattern, rs)
		}
	}
	if m.Reset {
		ps.their = m.Epoch
		for id, rs := range ps.theirs {
			if _, ok := add[id]; !ok {
				end(id)
				continue
			}
			// Kept: fresh credit of the new epoch; what it holds goes on it.
			rs.snd = flow.Sender{}
			_ = rs.snd.Grant(uint64(add[id].Window))
			rs.wakeAll()
			delete(add, id)
		}
	}
	for _, id := range m.Remove {
		end(id)
	}
	over := false
	for id, e := range add {
		if ps.theirs[id] != nil {
			continue
		}
		if len(ps.theirs) >= maxRemoteSubs {
			over = true
			break
		}
		rs := &remoteSub{id: id, pattern: e.Pattern, window: int(e.Window), policy: SlowPolicy(e.Policy)}
		_ = rs.snd.Grant(uint64(e.Window))
		ps.theirs[id] = rs
		ps.index.Insert(e.Pattern, rs)
	}
	ps.ring()
	ps.mu.Unlock()
	for _, d := range dead {
		b.deadLetter(d.Msg, Ref{Node: pr.id, Name: d.Subject}, Ref{Node: b.id}, ErrClosed)
	}
	pr.ctl.wake() // held publishes of kept subscriptions go on their new credit
	if over {
		l.Close(fmt.Errorf("%w: the peer announced more than %d subscriptions", ErrBadEnvelope, maxRemoteSubs))
	}
}

// onGrant adds a peer's grants to this node's senders. A grant beyond
// flow.MaxWindow is a lie: the link closes.
func (b *Bus) onGrant(l Link, m *sysGrant) {
	pr := b.peerOf(l)
	if pr == nil {
		return
	}
	ps := &pr.subs
	var bad error
	ps.mu.Lock()
	if m.Epoch == ps.their && !ps.gone {
		for _, g := range m.Grants {
			rs := ps.theirs[g.ID]
			if rs == nil {
				continue // ended; its grant crossed the removal
			}
			if err := rs.snd.Grant(g.N); err != nil {
				bad = err
				break
			}
			rs.wakeAll()
		}
		ps.ring()
	}
	ps.mu.Unlock()
	if bad != nil {
		b.log.Warn("a peer granted more credit than a window holds; closing its link", "peer", pr.id.Short(), "err", bad)
		l.Close(fmt.Errorf("%w: %w", ErrBadEnvelope, bad))
		return
	}
	pr.ctl.wake()
}

// peerOf returns l's peer, nil if it has none (any more).
func (b *Bus) peerOf(l Link) *peer {
	b.peersMu.RLock()
	defer b.peersMu.RUnlock()
	return b.peers[l.Peer()]
}

// subsGone ends what a peer that left had of this node's publishes: held
// ones are dead letters with reason, blocked publishers return.
func (b *Bus) subsGone(pr *peer, reason error) {
	ps := &pr.subs
	var dead []Message
	ps.mu.Lock()
	ps.gone = true
	for _, rs := range ps.theirs {
		rs.closed = true
		rs.wakeAll()
		dead = append(dead, b.releaseHeld(ps, rs)...)
	}
	ps.theirs, ps.index = nil, subject.Index[*remoteSub]{}
	ps.ring()
	ps.mu.Unlock()
	for _, d := range dead {
		b.deadLetter(d.Msg, Ref{Node: pr.id, Name: d.Subject}, Ref{Node: b.id}, reason)
	}
	for _, s := range b.subscriptions() {
		s.qmu.Lock()
		delete(s.recv, pr.id)
		s.qmu.Unlock()
	}
}

// remoteTarget is one peer's subscription a publish goes to.
type remoteTarget struct {
	pr *peer
	rs *remoteSub
	// moved: the publish followed its peer's node to a new record once
	// already (publishMoved).
	moved bool
}

// publishing is what a publish to peers sends with: its envelope, its
// bodies, one per codec, and the bound of its sends. They are pooled, so
// that a publish allocates neither, nor starts a timer unless a link makes
// it wait.
type publishing struct {
	env  Envelope
	ctx  lazyTimeout
	encs []encoded
}

var publishings = sync.Pool{New: func() any { return new(publishing) }}

// publishRemote sends msg to every peer's subscription matching subject,
// each within the credit that subscription granted. A SlowBlock one without
// credit goes in w, and w's waits (local ones too) are waited for here, all
// at once, sending as credit comes. When the publish has more than one
// peer's link to send on, or local subscriptions to wait for, a send
// takes only the room its link has at once: one that must wait for room
// goes in w with its peer's others, so that a full link holds up no other
// peer's send.
func (b *Bus) publishRemote(ctx context.Context, subject string, msg any, w *publishWait) {
	if strings.HasPrefix(subject, "$") {
		b.awaitPublish(ctx, ctx, w, nil, nil)
		return
	}
	var buf [8]remoteTarget
	targets := buf[:0]
	b.peersMu.RLock()
	for _, pr := range b.peers {
		pr.subs.mu.Lock()
		pr.subs.index.Match(subject, func(rs *remoteSub) bool {
			targets = append(targets, remoteTarget{pr: pr, rs: rs})
			return true
		})
		pr.subs.mu.Unlock()
	}
	b.peersMu.RUnlock()
	if len(targets) == 0 {
		b.awaitPublish(ctx, ctx, w, nil, nil)
		return
	}
	p := publishings.Get().(*publishing)
	sctx := ctx
	if _, ok := ctx.Deadline(); !ok {
		// The bound starts only if a link waits for room or a publisher
		// for credit, as in sendOut.
		p.ctx = lazyTimeout{parent: ctx, d: b.sendTimeout}
		sctx = &p.ctx
	}
	p.env = Envelope{Kind: KindPublish, From: Ref{Node: b.id}, To: Ref{Name: subject}, Msg: msg}
	// targets holds each peer's subscriptions together.
	tctx := sctx
	if len(w.local) > 0 || targets[0].pr != targets[len(targets)-1].pr {
		tctx = noWait
	}
	var full *peer // whose link had no room: its sends wait in w
	for _, t := range targets {
		if t.pr == full {
			w.remote = append(w.remote, t)
			continue
		}
		switch err := b.publishTo(tctx, t, &p.env, &p.encs, false); {
		case err == errMustWait:
			w.remote = append(w.remote, t)
		case err != nil && tctx == noWait && errors.Is(err, ErrCanceled):
			// No room at once (its credit was given back): it waits
			// for room beside the others.
			full = t.pr
			w.remote = append(w.remote, t)
		case err != nil:
			w.miss(t.pr.id, t.rs.pattern, err)
		}
	}
	b.awaitPublish(ctx, sctx, w, &p.env, &p.encs)
	p.release()
}

// release recycles p, unless a link may still wait on its bound.
func (p *publishing) release() {
	if !p.ctx.stop() {
		return
	}
	for i := range p.encs {
		if cap(p.encs[i].body) > maxPooledBody {
			p.encs[i].body = nil
		}
	}
	p.env, p.ctx, p.encs = Envelope{}, lazyTimeout{}, p.encs[:0]
	publishings.Put(p)
}

// publishTo sends one publish to one peer's subscription when it has credit,
// and otherwise applies the subscription's policy; under SlowBlock it waits
// for credit, or returns errMustWait at once when wait is false.
func (b *Bus) publishTo(ctx context.Context, t remoteTarget, env *Envelope, encs *[]encoded, wait bool) error {
	epoch, send, err := b.creditFor(ctx, t, Message{Subject: env.To.Name, Msg: env.Msg}, wait)
	if !send {
		return err
	}
	return b.sendPublish(ctx, t, epoch, env, encs)
}

// creditFor takes one credit of t's subscription for m: send says it did,
// in epoch. Without credit it applies the subscription's policy: SlowBlock
// waits for a grant, bounded by ctx (errMustWait at once when wait is
// false); the others hold m for the peer's control goroutine to send, a
// publish dropped beyond a window, beyond what the peer may make this node
// hold in all, or beyond what all peers may (subheld.go).
func (b *Bus) creditFor(ctx context.Context, t remoteTarget, m Message, wait bool) (epoch uint64, send bool, err error) {
	ps, rs := &t.pr.subs, t.rs
	ps.mu.Lock()
	for {
		if rs.closed {
			ps.mu.Unlock()
			return 0, false, nil // ended: the message goes nowhere, as with a closed local subscription
		}
		if len(rs.held) == 0 && !rs.draining && rs.snd.Send() == nil {
			epoch := ps.their
			ps.mu.Unlock()
			return epoch, true, nil
		}
		if rs.policy != SlowBlock {
			break
		}
		if !wait {
			ps.mu.Unlock()
			return 0, false, errMustWait
		}
		if rs.wait == nil {
			rs.wait = make(chan struct{})
		}
		w := rs.wait
		ps.mu.Unlock()
		select {
		case <-w:
		case <-ctx.Done():
			return 0, false, ctxError(ctx.Err())
		}
		ps.mu.Lock()
	}
	dropped, drop, over := b.hold(ps, rs, m)
	ps.mu.Unlock()
	if drop {
		b.deadLetter(dropped.Msg, Ref{Node: t.pr.id, Name: dropped.Subject}, Ref{Node: b.id}, ErrSlowConsumer)
	}
	if over {
		b.shedNode()
	}
	t.pr.ctl.wake()
	return 0, false, nil
}

// sendPublish sends env to t's subscription, in epoch, on its peer's
// nearest link as read inside the peer's send gate (enterPeer), encoding
// its body once per codec across the calls that share encs (into the
// buffers encs kept from its last use). A peer that lost its links since
// the publish chose it hands the publish on to publishMoved.
func (b *Bus) sendPublish(ctx context.Context, t remoteTarget, epoch uint64, env *Envelope, encs *[]encoded) error {
	pr, l, e := b.enterPeer(t.pr, t.pr.id, KindPublish)
	if pr != t.pr {
		if l != nil {
			pr.gate.exit(e)
		}
		return b.publishMoved(ctx, t, pr, env, encs)
	}
	defer pr.gate.exit(e)
	i, err := b.encodeOnce(l.Codec(), env, encs)
	if err != nil {
		b.giveBack(t, epoch)
		return err
	}
	env.Type, env.Body = (*encs)[i].typ, (*encs)[i].body
	env.To.ID, env.Corr = t.rs.id, epoch
	err = l.Send(ctx, env)
	env.To.ID, env.Corr, env.Body = 0, 0, nil
	if err != nil {
		// The link did not accept env (one it accepts and loses is handed
		// back through Undelivered): the subscriber never sees it, so never
		// grants its credit again.
		b.giveBack(t, epoch)
	}
	return sendError(err)
}

// encodeOnce returns the index in encs of env's body encoded with c,
// encoding it there (into the buffer the slot kept from its last use)
// unless it already is.
func (b *Bus) encodeOnce(c Codec, env *Envelope, encs *[]encoded) (int, error) {
	name := c.Name()
	for i, x := range *encs {
		if x.codec == name {
			return i, nil
		}
	}
	i := len(*encs)
	if i < cap(*encs) {
		*encs = (*encs)[:i+1]
	} else {
		*encs = append(*encs, encoded{})
	}
	x := &(*encs)[i]
	env.Body = nil
	body, err := b.types.EncodeBody(c, env, x.body[:0])
	if err != nil {
		*encs = (*encs)[:i]
		return 0, err
	}
	x.codec, x.typ, x.body = name, env.Type, body
	return i, nil
}

// encodeAhead encodes env's body into encs with the codec of each peer's
// nearest link among ts, before their sends go their own ways (a body
// that does not encode is left for the send to report).
func (b *Bus) encodeAhead(ts []remoteTarget, env *Envelope, encs *[]encoded) {
	for i, t := range ts {
		if i > 0 && t.pr == ts[i-1].pr {
			continue
		}
		if l := t.pr.nearLink(); l != nil {
			_, _ = b.encodeOnce(l.Codec(), env, encs)
		}
	}
}

// giveBack returns the credit a publish to t took in epoch and did not
// send, so that a send that failed (its bound ended while the link applied
// backpressure, the link closed) leaves the subscription's window whole. A
// credit of an epoch that ended is not returned: the new epoch's reset
// gave the window anew.
func (b *Bus) giveBack(t remoteTarget, epoch uint64) {
	ps, rs := &t.pr.subs, t.rs
	ps.mu.Lock()
	if rs.closed || ps.gone || epoch != ps.their || rs.snd.Grant(1) != nil {
		ps.mu.Unlock()
		return
	}
	rs.wakeAll()
	ps.ring()
	ps.mu.Unlock()
	t.pr.ctl.wake() // held publishes may go on it
}

// publishMoved sends env, a publish to t whose peer lost its links before
// it was sent, to the subscription of the same id at npr, the node's record
// now that it is linked again (nil: it is not), within that subscription's
// credit and policy, in its epoch: the old record's epoch and credit ended
// with its links. It follows the node once. With no such subscription the
// publish is a dead letter, its peer gone, as those the old record held.
func (b *Bus) publishMoved(ctx context.Context, t remoteTarget, npr *peer, env *Envelope, encs *[]encoded) error {
	var rs *remoteSub
	if npr != nil && !t.moved {
		npr.subs.mu.Lock()
		if !npr.subs.gone {
			rs = npr.subs.theirs[t.rs.id]
		}
		npr.subs.mu.Unlock()
	}
	if rs == nil {
		b.deadLetter(env.Msg, Ref{Node: t.pr.id, Name: env.To.Name}, Ref{Node: b.id}, peerGone(nil))
		return nil
	}
	return b.publishTo(ctx, remoteTarget{pr: npr, rs: rs, moved: true}, env, encs, true)
}

// drainHeld sends the publishes held for pr's subscriptions as credit
// allows, oldest first; the peer's control goroutine runs it.
func (b *Bus) drainHeld(ctx context.Context, pr *peer) {
	ps := &pr.subs
	for {
		ps.mu.Lock()
		var rs *remoteSub
		for _, x := range ps.holding {
			if !x.draining && x.snd.Credit() > 0 {
				rs = x
				break
			}
		}
		if rs == nil {
			ps.mu.Unlock()
			return
		}
		_ = rs.snd.Send()
		m := ps.takeHeld(rs)
		b.heldAll.Add(-1)
		rs.draining = true
		epoch := ps.their
		ps.mu.Unlock()

		sctx, cancel := context.WithTimeout(ctx, b.sendTimeout)
		env := Envelope{Kind: KindPublish, From: Ref{Node: b.id}, To: Ref{Name: m.Subject}, Msg: m.Msg}
		var encs []encoded
		err := b.sendPublish(sctx, remoteTarget{pr: pr, rs: rs}, epoch, &env, &encs)
		cancel()
		ps.mu.Lock()
		rs.draining = false
		ps.mu.Unlock()
		if err != nil {
			b.deadLetter(m.Msg, Ref{Node: pr.id, Name: m.Subject}, Ref{Node: b.id}, err)
			return
		}
	}
}

// deliverRemotePublish takes a publish a peer sent to one of this node's
// subscriptions. It never waits: an item beyond the credit granted closes
// the link (the peer lies); one for a subscription that ended or that does
// not match is dropped and counted as a dead letter. A publish whose body
// did not decode (bad, dead-lettered already) takes its credit and gives it
// back at once, counted as dropped: its sender spent that credit, and the
// subscription would otherwise lose it for good.
func (b *Bus) deliverRemotePublish(l Link, env *Envelope, bad error) {
	s := b.subByID(env.To.ID)
	if s == nil || !matchSubject(s.pattern, env.To.Name) {
		if bad == nil {
			b.deadLetter(env.Msg, env.To, env.From, fmt.Errorf("%w: no subscription %d to %q here", ErrNoRoute, env.To.ID, env.To.Name))
		}
		return
	}
	pr := b.peerOf(l)
	if pr == nil {
		return
	}
	m := Message{Subject: env.To.Name, Msg: env.Msg}
	cur := pr.subs.curEpoch()
	s.qmu.Lock()
	if s.recv == nil {
		s.recv = map[NodeID]*subRecv{}
	}
	rc := s.recv[pr.id]
	if env.Corr == cur && (rc == nil || rc.curEpoch != cur) {
		// The first publish of a new epoch: its receiver opens, the one
		// before keeps what is still on its way.
		r, _ := flow.NewReceiver(s.window)
		if rc == nil {
			rc = &subRecv{}
			s.recv[pr.id] = rc
		}
		rc.prev, rc.prevEpoch = rc.cur, rc.curEpoch
		rc.cur, rc.curEpoch = r, cur
	}
	var r *flow.Receiver
	switch {
	case rc == nil:
	case env.Corr == rc.curEpoch:
		r = &rc.cur
	case env.Corr == rc.prevEpoch:
		r = &rc.prev
	}
	if r == nil {
		s.qmu.Unlock()
		s.dropped.Add(1)
		if bad == nil {
			b.deadLetter(env.Msg, env.To, env.From, fmt.Errorf("%w: a publish of an ended credit epoch", ErrSlowConsumer))
		}
		return
	}
	if err := r.Receive(); err != nil {
		s.qmu.Unlock()
		if errors.Is(err, flow.ErrClosed) {
			s.dropped.Add(1)
			if bad == nil {
				b.deadLetter(env.Msg, env.To, env.From, ErrClosed)
			}
			return
		}
		err = fmt.Errorf("%w: subscription %d: %w", ErrBadEnvelope, s.id, err)
		if bad == nil {
			b.deadLetter(env.Msg, env.To, env.From, err)
		}
		b.log.Warn("a peer published beyond the credit granted; closing its link", "peer", pr.id.Short(), "err", err)
		l.Close(err)
		return
	}
	it := remoteItem{m: m, peer: pr.id, epoch: env.Corr}
	if bad != nil {
		grant := s.consumed(it)
		s.qmu.Unlock()
		b.grantTo(pr, it.epoch, s.id, grant)
		s.dropped.Add(1)
		return
	}
	if len(s.queue) == 0 && !s.pumping {
		put, full := s.offer(m)
		if put || !full {
			grant := s.consumed(it)
			s.qmu.Unlock()
			b.grantTo(pr, it.epoch, s.id, grant)
			if !put { // ended: what came after is dropped
				s.dropped.Add(1)
				b.deadLetter(m.Msg, Ref{Name: m.Subject}, env.From, ErrClosed)
			}
			return
		}
		if s.policy == SlowCut {
			grant := s.consumed(it)
			s.qmu.Unlock()
			b.grantTo(pr, it.epoch, s.id, grant)
			s.dropped.Add(1)
			b.deadLetter(m.Msg, Ref{Name: m.Subject}, env.From, ErrSlowConsumer)
			s.end(ErrSlowConsumer)
			return
		}
	}
	s.queue = append(s.queue, it)
	start := !s.pumping
	s.pumping = true
	s.qmu.Unlock()
	if start {
		b.tasks.Go(s.pump)
	}
}

// offer puts m in the subscription's buffer if it has room now: put says
// it did; full, that it had no room (not that it ended).
func (s *Subscription) offer(m Message) (put, full bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return false, false
	}
	select {
	case s.ch <- m:
		return true, false
	default:
		return false, true
	}
}

// consumed accounts for it leaving the queue and returns the grant owed to
// its peer; qmu must be held.
func (s *Subscription) consumed(it remoteItem) uint32 {
	rc := s.recv[it.peer]
	switch {
	case rc == nil:
		return 0
	case it.epoch == rc.curEpoch:
		return rc.cur.Consume()
	case it.epoch == rc.prevEpoch:
		rc.prev.Consume() // its sender is gone: nothing to grant
	}
	return 0
}

// pump hands the queued publishes from peers to the reader as it makes
// room, one at a time, granting their credit back; it runs while the queue
// is not empty.
func (s *Subscription) pump() {
	for {
		s.qmu.Lock()
		if len(s.queue) == 0 {
			s.pumping = false
			s.qmu.Unlock()
			return
		}
		it := s.queue[0]
		s.qmu.Unlock()
		s.mu.RLock()
		put := false
		if !s.closed {
			select {
			case s.ch <- it.m:
				put = true
			case <-s.done:
			}
		}
		s.mu.RUnlock()
		s.qmu.Lock()
		if !put {
			rest := s.queue
			s.queue, s.pumping = nil, false
			s.qmu.Unlock()
			for _, it := range rest {
				s.dropped.Add(1)
				s.b.deadLetter(it.m.Msg, Ref{Name: it.m.Subject}, Ref{Node: it.peer}, s.Err())
			}
			return
		}
		s.queue[0] = remoteItem{}
		s.queue = s.queue[1:]
		grant := s.consumed(it)
		s.qmu.Unlock()
		if grant > 0 {
			if pr := s.b.peerByID(it.peer); pr != nil {
				s.b.grantTo(pr, it.epoch, s.id, grant)
			}
		}
	}
}

func (b *Bus) peerByID(id NodeID) *peer {
	b.peersMu.RLock()
	defer b.peersMu.RUnlock()
	return b.peers[id]
}

// grantTo queues a grant of n to pr for subscription id, if epoch is still
// the current one.
func (b *Bus) grantTo(pr *peer, epoch, id uint64, n uint32) {
	if n == 0 || epoch != pr.subs.curEpoch() {
		return
	}
	pr.ctl.grant(epoch, id, n)
}

func (ps *peerSubs) curEpoch() uint64 {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	return ps.epoch
}

// subByID returns this node's subscription id, nil if it has none.
func (b *Bus) subByID(id uint64) *Subscription {
	if id == 0 {
		return nil
	}
	v, _ := b.subIDs.Load(id)
	s, _ := v.(*Subscription)
	return s
}
