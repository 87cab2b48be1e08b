package bus

import "container/heap"

// What a publishing node holds for peers' SlowDropOldest and SlowCut
// subscriptions while they have no credit (creditFor), and the bounds on
// it. A window bounds each subscription, but a peer may announce
// maxRemoteSubs subscriptions of flow.MaxWindow each and never grant, and
// many peers may: so the node also holds at most maxPeerHeld for one
// peer's subscriptions together and maxNodeHeld for all peers'. Beyond a
// bound the oldest publish held for the subscription that holds the most
// is a dead letter with ErrSlowConsumer: within a window, that of the
// subscription itself; within the peer's budget, of the peer's
// subscription holding the most; within the node's, of that of the peer
// holding the most. So a subscription, or a peer, that holds less than the
// others is never the one that loses, and one that makes the node hold
// much cannot starve the others of their share. An honest peer whose
// readers keep up holds far less.

// maxPeerHeld bounds the publishes this node holds for all the
// SlowDropOldest and SlowCut subscriptions of one peer together.
const maxPeerHeld = 1 << 16

// maxNodeHeld bounds the publishes this node holds for the subscriptions
// of all its peers together.
const maxNodeHeld = 1 << 18

// holding is a peer's subscriptions that hold publishes, as a max-heap by
// how many each holds (remoteSub.at is its index); peerSubs.mu guards it.
type holding []*remoteSub

func (h holding) Len() int           { return len(h) }
func (h holding) Less(i, j int) bool { return len(h[i].held) > len(h[j].held) }
func (h holding) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].at, h[j].at = i, j
}
func (h *holding) Push(x any) {
	rs := x.(*remoteSub)
	rs.at = len(*h)
	*h = append(*h, rs)
}
func (h *holding) Pop() any {
	old := *h
	rs := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	rs.at = -1
	return rs
}

// hold adds m to what rs, a subscription of ps's peer, holds, and drops
// the oldest held publish beyond rs's window or the peer's budget (see
// above); ps.mu is held. It reports the publish dropped, if one was, for
// the caller to dead-letter once it has let go of ps.mu, and whether the
// node now holds more than its budget (shedNode).
func (b *Bus) hold(ps *peerSubs, rs *remoteSub, m Message) (dropped Message, drop, over bool) {
	rs.held = append(rs.held, m)
	ps.held++
	if len(rs.held) == 1 {
		heap.Push(&ps.holding, rs)
	} else {
		heap.Fix(&ps.holding, rs.at)
	}
	switch {
	case len(rs.held) > rs.window:
		return ps.takeHeld(rs), true, false
	case ps.held > b.peerHeld:
		return ps.takeHeld(ps.holding[0]), true, false
	}
	return Message{}, false, b.heldAll.Add(1) > int64(b.nodeHeld)
}

// takeHeld removes and returns the oldest publish rs holds, of ps's peer;
// ps.mu is held. Bus.heldAll is the caller's to count.
func (ps *peerSubs) takeHeld(rs *remoteSub) Message {
	m := rs.held[0]
	rs.held[0] = Message{}
	rs.held = rs.held[1:]
	ps.held--
	if len(rs.held) == 0 {
		rs.held = nil
		heap.Remove(&ps.holding, rs.at)
	} else {
		heap.Fix(&ps.holding, rs.at)
	}
	return m
}

// releaseHeld removes and returns all rs holds, of ps's peer (ended);
// ps.mu is held.
func (b *Bus) releaseHeld(ps *peerSubs, rs *remoteSub) []Message {
	all := rs.held
	if len(all) > 0 {
		heap.Remove(&ps.holding, rs.at)
		ps.held -= len(all)
		b.heldAll.Add(-int64(len(all)))
	}
	rs.held = nil
	return all
}

// shedNode drops held publishes while the node holds more than its budget:
// each the oldest of the subscription holding the most, of the peer
// holding the most, a dead letter with ErrSlowConsumer. It takes one
// peer's lock at a time, none held by the caller.
func (b *Bus) shedNode() {
	for {
		n := b.heldAll.Load()
		if n <= int64(b.nodeHeld) {
			return
		}
		// Claim the one to drop first, so that publishers shedding at
		// the same time drop no more than the excess between them.
		if !b.heldAll.CompareAndSwap(n, n-1) {
			continue
		}
		pr := b.heaviestPeer()
		var m Message
		ok := false
		if pr != nil {
			ps := &pr.subs
			ps.mu.Lock()
			if !ps.gone && len(ps.holding) > 0 {
				m, ok = ps.takeHeld(ps.holding[0]), true
			}
			ps.mu.Unlock()
		}
		if !ok { // it went meanwhile, with what it held
			b.heldAll.Add(1)
			return
		}
		b.deadLetter(m.Msg, Ref{Node: pr.id, Name: m.Subject}, Ref{Node: b.id}, ErrSlowConsumer)
	}
}

// heaviestPeer returns the peer this node holds the most publishes for,
// nil if it holds none.
func (b *Bus) heaviestPeer() *peer {
	b.peersMu.RLock()
	defer b.peersMu.RUnlock()
	var top *peer
	most := 0
	for _, pr := range b.peers {
		pr.subs.mu.Lock()
		n := pr.subs.held
		pr.subs.mu.Unlock()
		if n > most {
			top, most = pr, n
		}
	}
	return top
}
