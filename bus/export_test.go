package bus

import (
	"fmt"
	"time"
)

// WithNodeID gives the bus the node id id instead of a fresh one, as a peer
// that lies about who it is would.
func WithNodeID(id NodeID) Option { return func(c *config) { c.nodeID = id } }

// WithBeforeGate runs f, with the kind of what is sent, in every send to a
// peer between the send's choice of the peer and its read of the peer's
// link inside the peer's send gate: where a relink of the peer's node
// replaces the peer the send chose.
func WithBeforeGate(f func(Kind)) Option { return func(c *config) { c.beforeGate = f } }

// GateOf reads how many sends are inside the send gate of b's record of
// node as it is now (0 ever after when there is none): the sends a switch
// of that record's nearest link waits for.
func GateOf(b *Bus, node NodeID) func() int64 {
	pr := b.peerByID(node)
	if pr == nil {
		return func() int64 { return 0 }
	}
	return func() int64 { return pr.gate.n[0].Load() + pr.gate.n[1].Load() }
}

// WithProofTimeout bounds how long a second link to a linked node may take
// to prove it leads to the same node. Zero: DefaultProofTimeout.
func WithProofTimeout(d time.Duration) Option { return func(c *config) { c.proofTimeout = d } }

// RemoteSubs is how many subscriptions of its peers b knows and how many
// publishes it holds for them, waiting for credit.
func RemoteSubs(b *Bus) (subs, held int) {
	b.peersMu.RLock()
	defer b.peersMu.RUnlock()
	for _, pr := range b.peers {
		pr.subs.mu.Lock()
		for _, rs := range pr.subs.theirs {
			subs++
			held += len(rs.held)
		}
		pr.subs.mu.Unlock()
	}
	return subs, held
}

// WithPeerHeld bounds the publishes b holds for one peer's subscriptions,
// waiting for credit, at n instead of maxPeerHeld.
func WithPeerHeld(n int) Option { return func(c *config) { c.peerHeld = n } }

// MaxPeerHeld is the bound of WithPeerHeld by default.
const MaxPeerHeld = maxPeerHeld

// WithNodeHeld bounds the publishes b holds for all its peers'
// subscriptions, waiting for credit, at n instead of maxNodeHeld.
func WithNodeHeld(n int) Option { return func(c *config) { c.nodeHeld = n } }

// MaxNodeHeld is the bound of WithNodeHeld by default.
const MaxNodeHeld = maxNodeHeld

// NodeHeld is how many publishes b counts as held for all its peers'
// subscriptions (the count WithNodeHeld's bound applies to).
func NodeHeld(b *Bus) int { return int(b.heldAll.Load()) }

// PeerHeldBy reads, for each peer of b, what PeerHeld reads over them all.
func PeerHeldBy(b *Bus) map[NodeID][]int {
	b.peersMu.RLock()
	defer b.peersMu.RUnlock()
	by := map[NodeID][]int{}
	for id, pr := range b.peers {
		pr.subs.mu.Lock()
		held := []int{}
		for _, rs := range pr.subs.theirs {
			held = append(held, len(rs.held))
		}
		pr.subs.mu.Unlock()
		by[id] = held
	}
	return by
}

// PeerHeld reads, over b's peers, the publishes b counts as held for their
// subscriptions (the count the bound applies to), those their
// subscriptions hold, one per subscription, and the credit they have.
func PeerHeld(b *Bus) (counted int, held []int, credit uint64) {
	b.peersMu.RLock()
	defer b.peersMu.RUnlock()
	for _, pr := range b.peers {
		pr.subs.mu.Lock()
		counted += pr.subs.held
		for _, rs := range pr.subs.theirs {
			held = append(held, len(rs.held))
			credit += uint64(rs.snd.Credit())
		}
		pr.subs.mu.Unlock()
	}
	return counted, held, credit
}

// Queued is how many publishes from peers s holds beyond its buffer,
// waiting for its reader; Buffered, how many its buffer holds.
func Queued(s *Subscription) (queued, buffered int) {
	s.qmu.Lock()
	defer s.qmu.Unlock()
	return len(s.queue), len(s.ch)
}

// SubID is the id peers address s's publishes to.
func SubID(s *Subscription) uint64 { return s.id }

// SubEpoch is the credit epoch b's subscriptions have with peer.
func SubEpoch(b *Bus, peer NodeID) uint64 {
	if pr := b.peerByID(peer); pr != nil {
		return pr.subs.curEpoch()
	}
	return 0
}

// ForgedGrant is a grant of n to subscription id in epoch, as a lying
// subscriber's node would send it.
func ForgedGrant(epoch, id, n uint64) any {
	return &sysGrant{Epoch: epoch, Grants: []grantEntry{{ID: id, N: n}}}
}

// RemoteIndexAgrees checks that each peer's subscriptions as b knows them by
// id are exactly those its subject index holds, each once, under its pattern.
func RemoteIndexAgrees(b *Bus) error {
	b.peersMu.RLock()
	defer b.peersMu.RUnlock()
	for _, pr := range b.peers {
		ps := &pr.subs
		ps.mu.Lock()
		seen := map[*remoteSub]bool{}
		var bad error
		ps.index.All(func(rs *remoteSub) bool {
			switch {
			case seen[rs]:
				bad = fmt.Errorf("the index holds subscription %d twice", rs.id)
			case ps.theirs[rs.id] != rs || rs.closed:
				bad = fmt.Errorf("the index holds subscription %d (%q), which is not the peer's", rs.id, rs.pattern)
			}
			seen[rs] = true
			return bad == nil
		})
		for _, rs := range ps.theirs {
			if bad == nil && (!seen[rs] || !ps.index.Has(rs.pattern)) {
				bad = fmt.Errorf("subscription %d (%q) is not in the index under its pattern", rs.id, rs.pattern)
			}
		}
		ps.mu.Unlock()
		if bad != nil {
			return bad
		}
	}
	return nil
}

// TellSourcesOf is how many shared records of tells from l's senders b
// keeps (tellsource.go).
func TellSourcesOf(b *Bus, l Link) int {
	n := 0
	for i := range b.tellSrc {
		if in := b.tellSrc[i].Load(); in != nil && in.link == l {
			n++
		}
	}
	return n
}

// ForgedName is an announcement of one instance of name, as a peer would
// send it: with weight, or with none (the form a node that predates
// weights sends) when weight is 0.
func ForgedName(name string, id uint64, weight uint32) any {
	return &sysNames{Add: []nameEntry{{Name: name, ID: id, Weight: weight}}}
}

// ForgedNames is an announcement of n instances of name, with ids from
// first on, as a peer would send it.
func ForgedNames(name string, first uint64, n int) any {
	m := &sysNames{Add: make([]nameEntry, n)}
	for i := range m.Add {
		m.Add[i] = nameEntry{Name: name, ID: first + uint64(i)}
	}
	return m
}

// Weights is the weight placement sees for each instance of name on b.
func Weights(b *Bus, name string) map[Ref]int {
	v, ok := b.names.Load(name)
	if !ok {
		return nil
	}
	view := b.current(v.(*service))
	out := map[Ref]int{}
	for i, in := range view.inst {
		out[in.ref] = view.cands[i].Weight
	}
	return out
}

// Loads is the load placement sees on each instance of name on b: asks in
// flight and open streams.
func Loads(b *Bus, name string) map[Ref]int64 {
	v, ok := b.names.Load(name)
	if !ok {
		return nil
	}
	out := map[Ref]int64{}
	for _, in := range v.(*service).view.Load().inst {
		out[in.ref] = in.stats.InFlight()
	}
	return out
}

// Halt marks the actor at r as asked to stop, as a stop does before it
// looks for the ask the actor runs (cancelServing), without stopping it: the
// state an ask the actor takes up just after that look runs in.
func Halt(b *Bus, r Ref) { b.lookup(r).ctx.halting.Store(true) }

// AskSlots reports b's table of asks to peers: how many slots it has, how
// many are free (each counted once: a slot freed twice would be counted
// twice, or loop), and how many free slots were listed more than once.
func AskSlots(b *Bus) (total, free, twice int) {
	b.asks.forEach(func(*askCall) { total++ })
	seen := map[uint32]bool{}
	for s := uint32(b.asks.free.Load()); s != 0 && free <= total; s = b.asks.at(s - 1).nextFree.Load() {
		if seen[s] {
			twice++
			break
		}
		seen[s] = true
		free++
	}
	return total, free, twice
}

// NextAskID is the correlation id the next ask b sends to a peer will
// carry, when no other ask takes a slot first: a peer that guessed the
// table's layout and keys could not do better.
func NextAskID(b *Bus) uint64 {
	h := b.asks.free.Load()
	if uint32(h) == 0 {
		return 0
	}
	c := b.asks.at(uint32(h) - 1)
	return b.asks.id(c, c.state.Load()>>stateBits+1)
}

// Watchers is how many watchers b holds for ref: those of its own actor,
// or those it keeps for an actor of a peer.
func Watchers(b *Bus, ref Ref) int {
	if ref.Node != b.id {
		b.peersMu.RLock()
		defer b.peersMu.RUnlock()
		if pr := b.peers[ref.Node]; pr != nil {
			return len(pr.watchers[ref])
		}
		return 0
	}
	return ofKin(b, ref, func(k *kin) int { return len(k.watchers) })
}

// Watching is how many watches b's actor ref holds whose Terminated has
// not come.
func Watching(b *Bus, ref Ref) int {
	return ofKin(b, ref, func(k *kin) int { return len(k.watching) })
}

// ofKin is f of the kin record of b's actor ref under its lock, or 0 when
// the actor or its record is gone.
func ofKin(b *Bus, ref Ref, f func(*kin) int) int {
	p := b.procs.get(ref.ID)
	if p == nil {
		return 0
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if k := p.kin.Load(); k != nil {
		return f(k)
	}
	return 0
}
