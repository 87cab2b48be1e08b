package bus

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"slices"
	"time"
)

// Two nodes that dial each other at once end with two links of one scheme.
// Both ends keep the same one without knowing who dialed which: each end
// sends a random token as the first thing on every link (sysLink.Token),
// and among a peer's admitted links of one scheme whose tokens both ends
// sent, the one with the least XOR of the two tokens stays. The others are
// retired without losing what is in flight on them: this node stops sending
// on a retired link (it leaves the peer's links), waits for the sends that
// chose it before (the peer's sendGate; a FencingLink refuses the tells
// that skip it once the fence has begun), sends a fence, answers the
// peer's fence with an ack, and closes the link once the peer acked its
// fence (so the peer has read everything sent before it) and no ask
// through the link waits for its reply, or after replyTimeout, and no
// stream runs on it (a stream never moves off its link).

// errRetired closes a link retired in favour of a duplicate.
var errRetired = errors.New("bus: link retired: another link of its scheme leads to the same node")

// retireCheck is how often a retired link whose asks are still answered is
// looked at again.
const retireCheck = 10 * time.Millisecond

func randomToken() uint64 {
	var b [8]byte
	for {
		rand.Read(b[:])
		if t := binary.LittleEndian.Uint64(b[:]); t != 0 {
			return t
		}
	}
}

// added marks l as among its peer's links and retires duplicates.
func (b *Bus) added(l Link) {
	t := &b.lk
	t.mu.Lock()
	if ll := t.live[l]; ll != nil {
		ll.added = true
	}
	t.mu.Unlock()
	b.dedupe(l.Peer())
}

// dedupe retires the duplicates among node's admitted links.
func (b *Bus) dedupe(node NodeID) {
	t := &b.lk
	type retire struct{ l, to Link }
	var out []retire
	t.mu.Lock()
	groups := map[string][]Link{}
	for l, ll := range t.live {
		if l.Peer() == node && ll.added && !ll.retiring && ll.theirTok != 0 {
			groups[l.Scheme()] = append(groups[l.Scheme()], l)
		}
	}
	for _, ls := range groups {
		if len(ls) < 2 {
			continue
		}
		key := func(l Link) uint64 { ll := t.live[l]; return ll.tok ^ ll.theirTok }
		keep := slices.MinFunc(ls, func(x, y Link) int {
			switch kx, ky := key(x), key(y); {
			case kx < ky:
				return -1
			case kx > ky:
				return 1
			}
			return 0
		})
		for _, l := range ls {
			if l != keep {
				t.live[l].retiring = true
			}
		}
	}
	// Fence every link to retire once another of its scheme is in use: one
	// the peer fenced first may have waited for this node to admit its
	// successor.
	for l, ll := range t.live {
		if l.Peer() != node || !ll.retiring || ll.fenced {
			continue
		}
		for x, xl := range t.live {
			if x.Peer() == node && x.Scheme() == l.Scheme() && xl.added && !xl.retiring {
				ll.fenced, ll.retiredTo = true, x
				out = append(out, retire{l, x})
				break
			}
		}
	}
	t.mu.Unlock()
	for _, r := range out {
		b.retire(r.l)
	}
}

// retire stops sending on l and sends the peer a fence on it, once every
// send that chose l before it left its peer's links has returned: the fence
// follows everything this node sent on l, so the peer, which closes l only
// after this fence, reads all of it.
func (b *Bus) retire(l Link) {
	pr := b.dropLink(l)
	b.log.Debug("retiring a duplicate link", "peer", l.Peer().Short(), "scheme", l.Scheme())
	b.tasks.Go(func() {
		if pr != nil {
			pr.gate.drain()
		}
		b.sendFence(l, &sysLink{Fence: true})
		deadline := time.Now().Add(replyTimeout)
		time.AfterFunc(replyTimeout, func() { b.closeRetired(l, deadline) })
	})
}

// dropLink takes l out of its peer's links, so nothing new is sent on it,
// and returns the peer.
func (b *Bus) dropLink(l Link) *peer {
	b.peersMu.Lock()
	defer b.peersMu.Unlock()
	pr := b.peers[l.Peer()]
	if pr != nil && len(pr.links) > 1 {
		pr.links = slices.DeleteFunc(pr.links, func(x Link) bool { return x == l })
		b.snapshotPeers()
	}
	return pr
}

// onFence handles the peer's fence on l: this node retires l too (once the
// link the peer keeps is admitted here), and acks.
func (b *Bus) onFence(l Link) {
	t := &b.lk
	t.mu.Lock()
	ll := t.live[l]
	done := false
	if ll != nil {
		ll.retiring, ll.gotFence = true, true
		done = ll.gotAck
	}
	t.mu.Unlock()
	b.sendLinkMsg(l, &sysLink{FenceAck: true})
	b.dedupe(l.Peer())
	if done {
		b.closeRetired(l, time.Now().Add(replyTimeout))
	}
}

// onFenceAck notes the peer's ack of this node's fence on l; with the
// peer's own fence in too, nothing more comes on l from either side.
func (b *Bus) onFenceAck(l Link) {
	t := &b.lk
	t.mu.Lock()
	ll := t.live[l]
	done := false
	if ll != nil {
		ll.gotAck = true
		done = ll.gotFence
	}
	t.mu.Unlock()
	if done {
		b.closeRetired(l, time.Now().Add(replyTimeout))
	}
}

// closeRetired closes l once no ask through it waits for a reply (until
// deadline) and no stream runs on it: a stream never moves off its link,
// and its peer lives, so it keeps the link as long as it runs.
func (b *Bus) closeRetired(l Link, deadline time.Time) {
	wait := retireCheck
	var check func()
	check = func() {
		if b.streams.busy(l) || b.busyOn(l) && time.Now().Before(deadline) {
			next := wait
			if time.Now().After(deadline) { // only streams keep it now: look less often
				wait = min(2*wait, time.Second)
			}
			time.AfterFunc(next, check) // last: the next check reads wait
			return
		}
		b.lk.closeOurs(l, errRetired)
	}
	check()
}

// busyOn reports whether an ask sent through l waits for its reply, one
// received on it is being served, or a stream runs on it.
func (b *Bus) busyOn(l Link) bool {
	return b.streams.busy(l) ||
		b.asks.any(func(c *askCall) bool { _, n, ok := c.sent(); return ok && n.l == l }) ||
		b.inbound.any(func(in *inbound) bool { return in.link == l })
}
