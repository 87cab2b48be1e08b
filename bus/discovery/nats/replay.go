package nats

import (
	"fmt"
	"time"
)

// maxPeers bounds the nodes a source remembers, so that a sender with the
// secret but a bug (a new node id per message) cannot grow it without end.
const maxPeers = 8192

// replayGuard refuses announcements that are stale or were seen before. It
// is pure: no goroutines, no I/O, time as an input.
//
// Each announcement carries its sender's sequence number (counting up with
// every message) and clock. A receiver admits one only if its time is
// within maxSkew of its own clock and its sequence number is above the last
// one it admitted from that node. It remembers a node's last sequence
// number until a replay of that node's newest message could no longer pass
// the time check (its last receipt + TTL + twice maxSkew), so a goodbye
// cannot be undone by replaying the hello before it.
type replayGuard struct {
	maxSkew time.Duration
	seen    map[string]seenNode
}

type seenNode struct {
	seq   uint64
	until time.Time // forget the node after this
}

func newReplayGuard(maxSkew time.Duration) *replayGuard {
	return &replayGuard{maxSkew: maxSkew, seen: map[string]seenNode{}}
}

// admit records a if it is fresh and new, and says why not otherwise.
func (g *replayGuard) admit(a *announcement, now time.Time) error {
	if skew := now.Sub(time.UnixMilli(a.Time)); skew > g.maxSkew || skew < -g.maxSkew {
		return fmt.Errorf("%w: its clock is %v from ours (at most %v)", errStale, skew.Round(time.Millisecond), g.maxSkew)
	}
	s, ok := g.seen[a.Node]
	if ok && a.Seq <= s.seq {
		return fmt.Errorf("%w: %d after %d from node %s", errReplay, a.Seq, s.seq, a.Node)
	}
	if !ok && len(g.seen) >= maxPeers {
		g.prune(now)
		if len(g.seen) >= maxPeers {
			return fmt.Errorf("too many nodes (%d) announced within the TTL", maxPeers)
		}
	}
	g.seen[a.Node] = seenNode{seq: a.Seq, until: now.Add(time.Duration(a.TTL)*time.Millisecond + 2*g.maxSkew)}
	return nil
}

// prune forgets the nodes whose records can no longer matter.
func (g *replayGuard) prune(now time.Time) {
	for id, s := range g.seen {
		if now.After(s.until) {
			delete(g.seen, id)
		}
	}
}
