package bus

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

// control is one peer's outbound queue of changes to what this node hosts
// (named instances, subscriptions), of the credit this node grants the
// peer's publishes to its subscriptions (subflow.go), and of watch notices (watch.go),
// drained in order by a goroutine of its own. Register, Subscribe and an actor's stop only queue a change:
// none of them waits on a peer, however slow or frozen.
//
// Changes coalesce: the queue keeps, per instance and per subscription, the last
// change not yet sent (the receiver applies a batch as removals, then
// additions, so one change per key gives the state the changes in order
// would), grants add up per subscription, and a reset (a new link)
// replaces everything pending. The drainer also sends the publishes this
// node held for the peer's subscriptions as their credit comes back. A peer that
// does not take a batch within the bus's send timeout, or lets more than
// maxControlPending changes pile up, has its links closed: it gets every
// name again if it links again.
//
// mu guards every field below it; the drainer goroutine owns the sending.
type control struct {
	b    *Bus
	pr   *peer
	kick chan struct{}      // cap 1: there is something to send
	ctx  context.Context    // ends with stop: the peer is gone
	end  context.CancelFunc // ends ctx

	mu       sync.Mutex
	reset    bool                // the next batch replaces what the peer knows
	want     bool                // the next batch asks the peer for its whole state
	names    map[nameEntry]bool  // true: add, false: remove
	subs     map[uint64]subEntry // an entry with no Window: remove
	subReset bool                // the next sysSub replaces what the peer knows
	epoch    uint64              // the credit epoch of grants (subflow.go)
	grants   map[uint64]uint64   // summed per subscription while pending
	notices  []any               // watch notices (watch.go): in order, never coalesced, after the changes
	stopped  bool
}

// maxControlPending bounds the changes waiting for one peer.
const maxControlPending = 1 << 16

func newControl(b *Bus, pr *peer) *control {
	c := &control{b: b, pr: pr, kick: make(chan struct{}, 1),
		names: map[nameEntry]bool{}, subs: map[uint64]subEntry{}, grants: map[uint64]uint64{}}
	c.ctx, c.end = context.WithCancel(context.Background())
	b.tasks.Go(c.run)
	return c
}

// stop ends the drainer; what is pending is dropped (the peer is gone).
func (c *control) stop() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.stopped {
		c.stopped = true
		c.end()
	}
}

// resetTo replaces everything pending with the whole state: names and
// subscriptions this node hosts now, the subscriptions' credit starting
// epoch. want asks the peer to send its whole state back.
func (c *control) resetTo(names []nameEntry, subs *subState, want bool) {
	c.mu.Lock()
	if c.stopped {
		c.mu.Unlock()
		return
	}
	c.reset = true
	c.want = c.want || want
	clear(c.names)
	for _, e := range names {
		c.names[e] = true
	}
	if subs != nil {
		c.subReset = true
		clear(c.subs)
		clear(c.grants)
		c.epoch = subs.epoch
		for _, e := range subs.entries {
			c.subs[e.ID] = e
		}
	}
	c.mu.Unlock()
	c.wake()
}

// name queues the addition (add) or removal of a named instance.
func (c *control) name(e nameEntry, add bool) { c.queue(func() { c.names[e] = add }) }

// sub queues the announcement of a subscription.
func (c *control) sub(e subEntry) { c.queue(func() { c.subs[e.ID] = e }) }

// unsub queues the end of subscription id.
func (c *control) unsub(id uint64) { c.queue(func() { c.subs[id] = subEntry{ID: id} }) }

// grant queues a grant of n credits to subscription id in epoch; grants of
// an older epoch are moot.
func (c *control) grant(epoch, id uint64, n uint32) {
	c.queue(func() {
		if epoch == c.epoch {
			c.grants[id] += uint64(n)
		}
	})
}

// notice queues a watch notice (sysWatch, sysStopped) for the peer.
func (c *control) notice(m any) { c.queue(func() { c.notices = append(c.notices, m) }) }

// queue applies change to what is pending, under mu, unless the peer is
// gone, and wakes the drainer; past maxControlPending it closes the peer's
// links.
func (c *control) queue(change func()) {
	c.mu.Lock()
	if c.stopped {
		c.mu.Unlock()
		return
	}
	change()
	over := len(c.names)+len(c.subs)+len(c.grants)+len(c.notices) > maxControlPending
	c.mu.Unlock()
	c.wake()
	if over {
		c.overflow()
	}
}

func (c *control) wake() {
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

// overflow closes the peer's links: it takes our changes slower than they
// come.
func (c *control) overflow() {
	c.closeLinks(fmt.Errorf("%w: more than %d changes of names and subscriptions wait for the peer", ErrPeerGone, maxControlPending))
}

func (c *control) closeLinks(err error) {
	c.b.peersMu.RLock()
	links := append([]Link(nil), c.pr.links...)
	c.b.peersMu.RUnlock()
	for _, l := range links {
		l.Close(err)
	}
}

// take returns what is pending as the messages to send, in order, and
// clears it.
func (c *control) take() []any {
	c.mu.Lock()
	defer c.mu.Unlock()
	var names *sysNames
	var subs *sysSub
	if c.reset || len(c.names) > 0 {
		names = &sysNames{Reset: c.reset, Want: c.want}
		for e, add := range c.names {
			if add {
				names.Add = append(names.Add, e)
			} else {
				names.Remove = append(names.Remove, e)
			}
		}
	}
	if c.subReset || len(c.subs) > 0 {
		subs = &sysSub{Reset: c.subReset, Epoch: c.epoch}
		for id, e := range c.subs {
			if e.Window > 0 {
				subs.Add = append(subs.Add, e)
			} else if !c.subReset {
				subs.Remove = append(subs.Remove, id)
			}
		}
	}
	var grants *sysGrant
	if len(c.grants) > 0 {
		grants = &sysGrant{Epoch: c.epoch}
		for id, n := range c.grants {
			grants.Grants = append(grants.Grants, grantEntry{ID: id, N: n})
		}
	}
	c.reset, c.want, c.subReset = false, false, false
	clear(c.names)
	clear(c.subs)
	clear(c.grants)
	var msgs []any
	if names != nil {
		msgs = append(msgs, names)
	}
	if subs != nil {
		msgs = append(msgs, subs)
	}
	if grants != nil {
		msgs = append(msgs, grants)
	}
	msgs = append(msgs, c.notices...)
	c.notices = nil
	return msgs
}

// run is the drainer: it sends what is pending on the peer's nearest link,
// one batch at a time, until the peer is gone.
func (c *control) run() {
	for {
		select {
		case <-c.kick:
		case <-c.ctx.Done():
			return
		}
		sent := true
		for _, m := range c.take() {
			if sent = c.send(m); !sent {
				break
			}
		}
		if sent {
			c.b.drainHeld(c.ctx, c.pr)
		}
	}
}

// send sends one system message on the peer's nearest link. A link that
// does not take it within the send timeout is closed; false means the rest
// of the batch is moot (the peer gets a reset if it links again).
func (c *control) send(m any) bool {
	if c.b.beforeGate != nil {
		c.b.beforeGate(KindSystem)
	}
	e := c.pr.gate.enter() // a switch to a nearer link waits for this send (switch.go)
	defer c.pr.gate.exit(e)
	// Its own peer's link, not the node's: a peer that lost its links
	// sends nothing on those of the record that replaced it, which sends
	// its own state from a reset on.
	l := c.pr.nearLink()
	if l == nil {
		return false
	}
	ctx, cancel := context.WithTimeout(c.ctx, c.b.sendTimeout)
	defer cancel()
	err := c.b.sendOn(ctx, l, &Envelope{Kind: KindSystem, From: Ref{Node: c.b.id}, Msg: m})
	if err == nil {
		return true
	}
	switch {
	case errors.Is(err, ErrPeerGone):
		// Its link is going down; if it comes back, the two exchange all
		// their names again.
		c.b.log.Debug("telling a peer of a change failed", "peer", c.pr.id.Short(), "err", err)
	case c.ctx.Err() != nil:
	case errors.Is(err, ErrDeadline):
		c.b.log.Warn("a peer took no change of names for the send timeout; closing its link", "peer", c.pr.id.Short(), "timeout", c.b.sendTimeout)
		l.Close(fmt.Errorf("%w: it took no change of names for %v", ErrPeerGone, c.b.sendTimeout))
	default:
		c.b.log.Warn("telling a peer of a change failed", "peer", c.pr.id.Short(), "err", err)
	}
	return false
}
