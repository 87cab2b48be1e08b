package bustest

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/xbus-dev/xbus/bus"
)

// Faults a Network injects. A link it breaks is reported to both buses with
// LinkDown and one of these errors.
var (
	ErrLost        = errors.New("bustest: envelope lost, link broken")
	ErrPartitioned = errors.New("bustest: partitioned")
	ErrKilled      = errors.New("bustest: node killed")
	ErrUnreachable = errors.New("bustest: no node at that address")
	ErrClosed      = errors.New("bustest: transport closed")
)

// Network is an in-memory network of nodes, one per Transport, that a test
// controls: it delays envelopes, loses them, partitions nodes, pauses and
// kills them.
//
// Faults are never silent to the bus: a lost envelope breaks its link, as a
// gap breaks a reliable stream (TCP, a shared-memory ring), so both buses see
// LinkDown and every ask in flight on it fails. A partition likewise takes
// the links down at once (as a heartbeat timeout would, without the wait)
// and refuses dials across it until Heal.
//
// Time is the time package's: under testing/synctest every delay runs on
// the bubble's fake clock, as do the bus's redials. Loss draws from a generator seeded by
// NewNetwork, so one sequence of sends loses the same envelopes every run.
//
// A Network's methods are safe for concurrent use. Fault methods (Partition,
// Kill, SetLoss's broken links) return once both buses have seen the links
// they break go down; they must not be called from inside Receive of an
// actor whose bus they break, since the link's reader may be waiting on it.
type Network struct {
	mu     sync.Mutex // guards everything below
	nodes  map[string]*Transport
	cut    map[[2]string]bool // partitioned pairs, sorted
	delay  time.Duration
	loss   float64
	rnd    *rand.Rand
	paused map[string]chan struct{} // closed on Resume

	// Envelopes by kind: accepted by a link's Send, handed to the receiving
	// bus, and handed back to the sending bus (Host.Undelivered).
	sent, delivered, handed [kinds]atomic.Uint64
}

// kinds bounds the envelope kinds counted: bus.KindSystem is the last
// today; one added later shares the last slot.
const kinds = int(bus.KindSystem) + 1

func slot(k bus.Kind) int { return min(int(k), kinds-1) }

// NewNetwork returns an empty network with no delay, no loss and no
// partition. Loss is drawn from a generator with a fixed seed.
func NewNetwork() *Network {
	return &Network{
		nodes:  map[string]*Transport{},
		cut:    map[[2]string]bool{},
		rnd:    rand.New(rand.NewPCG(1, 2)),
		paused: map[string]chan struct{}{},
	}
}

// SetDelay makes every envelope sent from now on arrive d after it was sent.
// Order per link holds whatever the delay: an envelope never overtakes one
// sent before it.
func (n *Network) SetDelay(d time.Duration) {
	n.mu.Lock()
	n.delay = d
	n.mu.Unlock()
}

// SetLoss makes each envelope sent from now on lost with probability p
// (0 ≤ p ≤ 1). A lost envelope breaks its link when it would have arrived:
// the envelopes sent before it are delivered, it and every later one on that
// link are not, and both buses see LinkDown wrapping ErrLost.
func (n *Network) SetLoss(p float64) {
	if p < 0 || p > 1 {
		panic(fmt.Sprintf("bustest: loss probability %v outside [0, 1]", p))
	}
	n.mu.Lock()
	n.loss = p
	n.mu.Unlock()
}

// Partition cuts a from b, both ways: the links between them go down
// (LinkDown wrapping ErrPartitioned on both) and dials between them fail
// until Heal. It returns once both buses have seen the links go down.
func (n *Network) Partition(a, b string) {
	n.mu.Lock()
	n.cut[pair(a, b)] = true
	links := n.linksLocked(func(l *link) bool {
		return (l.t.addr == a && l.peer.t.addr == b) || (l.t.addr == b && l.peer.t.addr == a)
	})
	n.mu.Unlock()
	breakAll(links, ErrPartitioned)
}

// Heal ends a partition between a and b; a bus that keeps the other's
// address linked (Config.Peers, bus.Connect) dials it again.
func (n *Network) Heal(a, b string) {
	n.mu.Lock()
	delete(n.cut, pair(a, b))
	n.mu.Unlock()
}

// Kill makes the node at addr die as a process does: every link of it goes
// down (LinkDown wrapping ErrKilled, on both ends), it accepts and dials
// nothing more, and its address is free for a new Transport (a restarted
// node). It returns once every bus involved has seen its links go down.
func (n *Network) Kill(addr string) {
	n.mu.Lock()
	t := n.nodes[addr]
	if t == nil {
		n.mu.Unlock()
		return
	}
	links := n.linksLocked(func(l *link) bool { return l.t == t })
	delete(n.nodes, addr)
	n.mu.Unlock()
	t.kill()
	breakAll(links, ErrKilled)
}

// Pause freezes the node at addr as SIGSTOP does: it reads nothing more, so
// envelopes to it queue up on their links and senders block when a link's
// queue is full (Config.QueueLen), until their ctx ends. Its links stay up.
func (n *Network) Pause(addr string) {
	n.mu.Lock()
	if n.paused[addr] == nil {
		n.paused[addr] = make(chan struct{})
	}
	n.mu.Unlock()
}

// Resume undoes Pause.
func (n *Network) Resume(addr string) {
	n.mu.Lock()
	if c := n.paused[addr]; c != nil {
		close(c)
		delete(n.paused, addr)
	}
	n.mu.Unlock()
}

// gate returns a channel to wait on before the node at addr reads, or nil
// when it is not paused.
func (n *Network) gate(addr string) chan struct{} {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.paused[addr]
}

// Undelivered returns how many envelopes of kind k a link's Send accepted
// and no bus has been handed, neither the receiving one (Host.Deliver) nor,
// once their link died, the sending one (Host.Undelivered): those still on
// their way. Once the network is quiet it is zero, and a test balances its
// ledger on the buses' own counts.
func (n *Network) Undelivered(k bus.Kind) uint64 {
	h := n.handed[slot(k)].Load() // first: sent only grows past them
	d := n.delivered[slot(k)].Load()
	return n.sent[slot(k)].Load() - d - h
}

// HandedBack returns how many envelopes of kind k a dead link handed back
// to their sending bus with Host.Undelivered.
func (n *Network) HandedBack(k bus.Kind) uint64 { return n.handed[slot(k)].Load() }

// stamp decides the fate of one envelope sent now: when it arrives and
// whether it is lost.
func (n *Network) stamp() (due time.Time, lost bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.delay > 0 {
		due = time.Now().Add(n.delay)
	}
	return due, n.loss > 0 && n.rnd.Float64() < n.loss
}

// linksLocked returns the link ends, of every node, that keep returns true
// for; n.mu must be held.
func (n *Network) linksLocked(keep func(*link) bool) []*link {
	var out []*link
	for _, t := range n.nodes {
		t.mu.Lock()
		for l := range t.links {
			if keep(l) {
				out = append(out, l)
			}
		}
		t.mu.Unlock()
	}
	return out
}

// breakAll ends each link at once with err and waits until both of its
// ends have been reported down.
func breakAll(links []*link, err error) {
	for _, l := range links {
		l.fault(err)
	}
	for _, l := range links {
		<-l.done
		<-l.peer.done
	}
}

func pair(a, b string) [2]string {
	if a > b {
		a, b = b, a
	}
	return [2]string{a, b}
}
