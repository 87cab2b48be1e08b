package bus

import (
	"context"
	"slices"
)

// publishWait is what one publish has left after every subscription with
// room or credit took its message: the SlowBlock subscriptions that had
// none, here (local) and on peers (remote), and those it missed.
type publishWait struct {
	m      Message // what is published
	local  []*Subscription
	remote []remoteTarget
	missed []MissedSubscription
}

func (w *publishWait) miss(node NodeID, pattern string, err error) {
	w.missed = append(w.missed, MissedSubscription{Node: node, Pattern: pattern, Err: err})
}

// err is the publish's error: nil, or a *PublishError naming what it missed.
func (w *publishWait) err() error {
	if len(w.missed) == 0 {
		return nil
	}
	return &PublishError{Subject: w.m.Subject, Missed: w.missed}
}

// waited is how one subscription's wait in awaitPublish ended: i indexes
// w.local, then w.remote.
type waited struct {
	i   int
	err error
}

// awaitPublish waits for every subscription in w at the same time, each for
// its own room or credit, a local one until ctx ends and a remote one until
// sctx does, and sends env (encoded into encs) to each remote one as soon as
// it has credit and its peer's link room. So a subscriber that never reads,
// or a peer whose link is full, costs one that does no more than it would
// cost alone: both wait within the same bound, neither behind the other. A
// local subscription waits on a goroutine of its own (they are this
// node's); a peer's subscriptions, on one goroutine per peer, so that a
// peer announcing many costs no goroutine each. What one peer alone has
// left, the publisher's goroutine does itself. Every wait has ended when
// it returns.
func (b *Bus) awaitPublish(ctx, sctx context.Context, w *publishWait, env *Envelope, encs *[]encoded) {
	nl, np := len(w.local), 0
	for i := range w.remote { // w.remote holds each peer's subscriptions together (publishRemote)
		if i == 0 || w.remote[i].pr != w.remote[i-1].pr {
			np++
		}
	}
	switch {
	case nl+np == 0:
		return
	case nl == 1 && np == 0:
		s := w.local[0]
		if err := s.deliver(ctx, w.m, deliverWait); err != nil {
			w.miss(b.id, s.pattern, err)
		}
		return
	case nl == 0 && len(w.remote) == 1:
		t := w.remote[0]
		if err := b.publishTo(sctx, t, env, encs, true); err != nil {
			w.miss(t.pr.id, t.rs.pattern, err)
		}
		return
	case nl == 0 && np == 1:
		b.awaitPeer(sctx, w.remote, env, encs, func(i int, err error) {
			if err != nil {
				w.miss(w.remote[i].pr.id, w.remote[i].rs.pattern, err)
			}
		})
		return
	}
	m := w.m
	done := make(chan waited, nl+len(w.remote))
	for i, s := range w.local {
		go func() { done <- waited{i: i, err: s.deliver(ctx, m, deliverWait)} }()
	}
	if np > 0 {
		b.encodeAhead(w.remote, env, encs)
	}
	for i := 0; i < len(w.remote); {
		j := i + 1
		for j < len(w.remote) && w.remote[j].pr == w.remote[i].pr {
			j++
		}
		ts, base := w.remote[i:j], nl+i
		// The peer's own envelope, and the bodies encoded so far: a body
		// in another codec it encodes apart (Clip: never in encs' array).
		pe, pencs := *env, slices.Clip(*encs)
		go b.awaitPeer(sctx, ts, &pe, &pencs, func(i int, err error) { done <- waited{i: base + i, err: err} })
		i = j
	}
	for range nl + len(w.remote) {
		r := <-done
		switch {
		case r.err == nil:
		case r.i < nl:
			w.miss(b.id, w.local[r.i].pattern, r.err)
		default:
			t := w.remote[r.i-nl]
			w.miss(t.pr.id, t.rs.pattern, r.err)
		}
	}
}

// awaitPeer sends env to each of ts, subscriptions of one peer, as each
// has credit, one after another on the peer's link, until ctx ends, and
// reports how each ended with report(i, err), once: a subscription without
// credit applies its policy (creditFor), a SlowBlock one waiting for a
// grant. It wakes on the peer's grants only (peerSubs.bell), so that a
// peer that never grants costs it nothing but the wait.
func (b *Bus) awaitPeer(ctx context.Context, ts []remoteTarget, env *Envelope, encs *[]encoded, report func(i int, err error)) {
	ps := &ts[0].pr.subs
	m := Message{Subject: env.To.Name, Msg: env.Msg}
	left := make([]bool, len(ts))
	for i := range left {
		left[i] = true
	}
	for waiting := len(ts); ; {
		bell := ps.nextBell() // before the tries: a grant after them rings it
		for i, t := range ts {
			if !left[i] {
				continue
			}
			epoch, send, err := b.creditFor(ctx, t, m, false)
			if err == errMustWait {
				continue
			}
			if send {
				err = b.sendPublish(ctx, t, epoch, env, encs)
			}
			left[i] = false
			waiting--
			report(i, err)
		}
		if waiting == 0 {
			return
		}
		select {
		case <-bell:
		case <-ctx.Done():
			err := ctxError(ctx.Err())
			for i := range ts {
				if left[i] {
					report(i, err)
				}
			}
			return
		}
	}
}
