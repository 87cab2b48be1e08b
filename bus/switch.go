package bus

import (
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Switching a peer to a nearer link never reorders one sender's messages.
// The sender side marks the new link first (sysLink.After names the old
// link by this node's token on it), then lets new sends take the new link,
// waits until every send that chose the old link has returned (sendGate),
// and sends a fence on the old link (sysLink.Moved). A tell on a link that
// fences itself (FencingLink) skips the gate: the link refuses it once the
// fence has begun, and the tell goes on the new link. A link that may
// reorder senders among themselves (a pool of connections) sends the mark
// through Lead (LeadingLink) and the fence through Fence, so that the mark
// precedes, and the fence follows, every sender's messages. The receiver holds what
// arrives on the new link after the mark until the fence arrives on the old
// link, or the old link goes down, then delivers it in order. Replies and
// errors are never held: they travel on the link their ask took.

// maxHolding bounds the bytes held on one link (bodies plus a fixed cost
// per envelope); past it the link's messages are delivered at once (logged
// at Warn: order may then break). It exceeds what a sender's link queues
// and the sockets buffer, which is all that can be in flight on the old
// link.
const (
	maxHolding   = 64 << 20
	heldOverhead = 256
)

// sendGate lets a switch wait for the sends that chose a peer's old link
// (all but tells on a FencingLink).
// A send enters the gate before it looks up the nearest link and leaves it
// when Send returned; drain flips the epoch and waits for the sends of the
// previous one.
type sendGate struct {
	mu    sync.Mutex // one drain at a time
	epoch atomic.Uint32
	n     [2]atomic.Int64
}

func (g *sendGate) enter() uint32 {
	for {
		e := g.epoch.Load()
		g.n[e&1].Add(1)
		if g.epoch.Load() == e {
			return e
		}
		g.n[e&1].Add(-1)
	}
}

func (g *sendGate) exit(e uint32) { g.n[e&1].Add(-1) }

// drain returns once every send that entered before it has left. Sends are
// bounded by their context or the bus's send timeout, so this is too.
func (g *sendGate) drain() {
	g.mu.Lock()
	defer g.mu.Unlock()
	e := g.epoch.Add(1) - 1
	for g.n[e&1].Load() != 0 {
		time.Sleep(50 * time.Microsecond)
	}
}

// switchNearest moves sends to pr from old to its new nearest link nl;
// addLink calls it instead of publishing the snapshot itself.
func (b *Bus) switchNearest(pr *peer, old, nl Link) {
	b.lk.mu.Lock()
	var tok uint64
	if ll := b.lk.live[old]; ll != nil {
		tok = ll.tok
	}
	b.lk.mu.Unlock()
	if tok != 0 {
		b.sendLead(nl, &sysLink{After: tok})
	}
	b.peersMu.Lock()
	b.snapshotPeers()
	b.peersMu.Unlock()
	if tok == 0 {
		return
	}
	b.tasks.Go(func() {
		pr.gate.drain()
		b.sendFence(old, &sysLink{Moved: true})
	})
}

// onAfter handles the mark on l: hold what follows on it until the peer's
// fence arrives on the link it names (the peer's token on it).
func (b *Bus) onAfter(l Link, tok uint64) {
	t := &b.lk
	t.mu.Lock()
	defer t.mu.Unlock()
	nl := t.live[l]
	if nl == nil {
		return
	}
	for x, xl := range t.live {
		if x == l || x.Peer() != l.Peer() || xl.theirTok != tok {
			continue
		}
		if xl.moved {
			xl.moved = false // its fence came first: nothing to wait for
			return
		}
		if nl.waitFor == nil && !nl.flushing {
			t.holding.Add(1) // until release has emptied its queue
		}
		nl.waitFor = x
		return
	}
}

// onMoved handles the peer's fence on l: links waiting for it deliver what
// they held.
func (b *Bus) onMoved(l Link) {
	t := &b.lk
	t.mu.Lock()
	ready := t.waiters(l)
	if ll := t.live[l]; ll != nil && len(ready) == 0 {
		ll.moved = true // the mark on the new link is still on its way
	}
	t.mu.Unlock()
	for x, xl := range ready {
		b.release(x, xl)
	}
}

// waiters returns the links that hold what they receive until l's fence;
// t.mu must be held.
func (t *linkTable) waiters(l Link) map[Link]*liveLink {
	var out map[Link]*liveLink
	for x, xl := range t.live {
		if xl.waitFor == l {
			if out == nil {
				out = map[Link]*liveLink{}
			}
			out[x] = xl
		}
	}
	return out
}

// hold keeps env if l holds what arrives on it; Deliver calls it.
func (t *linkTable) hold(b *Bus, l Link, env *Envelope) bool {
	if t.holding.Load() == 0 {
		return false
	}
	switch {
	case env.Kind == KindReply || env.Kind == KindError:
		return false
	case env.Kind == KindSystem && env.Type == sysLinkType:
		return false
	}
	t.mu.Lock()
	ll := t.live[l]
	if ll == nil || (ll.waitFor == nil && !ll.flushing) {
		t.mu.Unlock()
		return false
	}
	e := *env
	e.Body, e.Headers = slices.Clone(env.Body), slices.Clone(env.Headers)
	ll.queue = append(ll.queue, &e)
	ll.queued += len(e.Body) + heldOverhead
	over := ll.waitFor != nil && ll.queued > maxHolding
	t.mu.Unlock()
	if over {
		b.log.Warn("a link switch held too much; delivering without waiting for the old link's fence", "peer", l.Peer().Short(), "bytes", maxHolding)
		b.release(l, ll)
	}
	return true
}

// releaseDown delivers what l held for another link's fence as l goes down,
// and waits for a delivery of it under way elsewhere (the fence arrived,
// or the old link went down, just now): LinkDown calls it first, so that
// what l held, which arrived on l, meets l's end as what l delivered
// before does: its streams end, its asks are canceled. Delivered after
// LinkDown, a stream's open left the actor a stream that never ended.
func (b *Bus) releaseDown(l Link) {
	t := &b.lk
	for t.holding.Load() != 0 {
		t.mu.Lock()
		ll := t.live[l]
		if ll == nil || ll.waitFor == nil && !ll.flushing {
			t.mu.Unlock()
			return
		}
		flushing := ll.flushing
		t.mu.Unlock()
		if !flushing {
			b.release(l, ll)
			continue
		}
		time.Sleep(50 * time.Microsecond) // its deliveries never wait on an actor or a peer
	}
}

// keepEarly puts early, what the held link of ll received before it was
// admitted, at the front of what it holds, so that what its reader reads
// from now on waits behind it; t.mu must be held. It reports whether the
// caller must drain ll (nobody else will: it waits for no fence), which
// holding then counts; the caller has counted it already.
func (t *linkTable) keepEarly(ll *liveLink, early []*Envelope) bool {
	if len(early) == 0 {
		return false
	}
	for _, e := range early {
		ll.queued += len(e.Body) + heldOverhead
	}
	ll.queue = append(early, ll.queue...)
	if ll.waitFor != nil || ll.flushing {
		return false
	}
	ll.flushing = true
	return true
}

// release delivers, in order, what l held, and what arrives meanwhile.
func (b *Bus) release(l Link, ll *liveLink) {
	t := &b.lk
	t.mu.Lock()
	if ll.flushing || ll.waitFor == nil {
		t.mu.Unlock()
		return
	}
	ll.waitFor, ll.flushing = nil, true
	t.mu.Unlock()
	b.drain(l, ll)
}

// drain delivers, in order, what l holds and what arrives meanwhile, then
// lets l's reader deliver again; ll.flushing is set, and holding counts it.
func (b *Bus) drain(l Link, ll *liveLink) {
	t := &b.lk
	t.mu.Lock()
	for {
		q := ll.queue
		ll.queue, ll.queued = nil, 0
		if len(q) == 0 {
			ll.flushing = false
			t.holding.Add(-1)
			t.mu.Unlock()
			return
		}
		t.mu.Unlock()
		for _, env := range q {
			b.deliver(l, env)
		}
		t.mu.Lock()
	}
}
