package bus

import "context"

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
// w.local, then w.remote; a remote one with send took a credit of epoch.
type waited struct {
	i     int
	epoch uint64
	send  bool
	err   error
}

// awaitPublish waits for every subscription in w at the same time, each for
// its own room or credit, a local one until ctx ends and a remote one until
// sctx does, and sends env (encoded into encs) to each remote one as soon as
// it has credit. So a subscriber that never reads costs one that does no
// more than it would cost alone: both wait within the same bound, neither
// behind the other. A local subscription waits on a goroutine of its own
// (they are this node's); a peer's subscriptions, on one goroutine per
// peer, so that a peer announcing many costs no goroutine each. Every
// wait has ended when it returns.
func (b *Bus) awaitPublish(ctx, sctx context.Context, w *publishWait, env *Envelope, encs *[]encoded) {
	n, nl := len(w.local)+len(w.remote), len(w.local)
	switch {
	case n == 0:
		return
	case n == 1 && nl == 1:
		s := w.local[0]
		if err := s.deliver(ctx, w.m, deliverWait); err != nil {
			w.miss(b.id, s.pattern, err)
		}
		return
	case n == 1:
		t := w.remote[0]
		if err := b.publishTo(sctx, t, env, encs, true); err != nil {
			w.miss(t.pr.id, t.rs.pattern, err)
		}
		return
	}
	m := w.m
	done := make(chan waited, n)
	for i, s := range w.local {
		go func() { done <- waited{i: i, err: s.deliver(ctx, m, deliverWait)} }()
	}
	// w.remote holds each peer's subscriptions together (publishRemote).
	for i := 0; i < len(w.remote); {
		j := i + 1
		for j < len(w.remote) && w.remote[j].pr == w.remote[i].pr {
			j++
		}
		ts, base := w.remote[i:j], nl+i
		go b.awaitPeerCredit(sctx, ts, m, base, done)
		i = j
	}
	// Sends go from here, one at a time, as their credit comes: env and
	// encs are the publish's, not the waiting goroutines'.
	for range n {
		r := <-done
		if r.i < nl {
			if r.err != nil {
				w.miss(b.id, w.local[r.i].pattern, r.err)
			}
			continue
		}
		t := w.remote[r.i-nl]
		if r.send {
			r.err = b.sendPublish(sctx, t, r.epoch, env, encs)
		}
		if r.err != nil {
			w.miss(t.pr.id, t.rs.pattern, r.err)
		}
	}
}

// awaitPeerCredit takes one credit of each of ts, subscriptions of one
// peer, for m as each gets a grant, until ctx ends, and reports each on
// done once, numbered from base: with the credit taken (send) or why
// not. It wakes on the peer's grants only (peerSubs.bell), so that a peer
// that never grants costs it nothing but the wait.
func (b *Bus) awaitPeerCredit(ctx context.Context, ts []remoteTarget, m Message, base int, done chan<- waited) {
	ps := &ts[0].pr.subs
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
			left[i] = false
			waiting--
			done <- waited{i: base + i, epoch: epoch, send: send, err: err}
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
					done <- waited{i: base + i, err: err}
				}
			}
			return
		}
	}
}
