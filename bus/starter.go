package bus

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/xbus-dev/xbus/mailbox"
)

// starter runs new top-level actors' first turns, each beginning with
// Started, in batches. A spawn holds its actor's mailbox (mailbox.Hold, so
// that nothing runs before Started), queues it here and wakes a drainer
// only when none is running; a drainer runs the queued first turns one
// after another on its worker. A child's first turn goes to a worker of its
// own, as any turn does: its parent may wait for it inside its own first
// turn, as a supervisor does. Spawning many actors so pays an append per actor instead of
// a hand-off to a worker and the worker's parking again
// (docs/performance.md, "Spawning a million").
//
// A first turn that blocks (a Started waiting for an actor queued behind
// it) must not hold up those queued behind it for long: while a drainer
// runs and first turns wait, a timer looks every startStall, and when no
// first turn began since its last look it starts one more drainer, which
// takes over what waits. Drainers take first turns one at a time from the
// batch they share, so one stuck in a turn holds no other.
//
// A drainer is the turn of a mailbox of the starter's own, whose one
// system message runs drain: kick for the first drainer, one made for each
// drainer the timer adds. A drain that ends just as a spawn kicks again
// finds the new message in its mailbox's lane and drains again.
//
// The queue's array and the batch's take turns: a batch that its one
// drainer has run to its end gives its array, cleared slot by slot as its
// turns were taken, back to the next queue, so that spawning a million
// appends into two arrays instead of making one per batch.
//
// mu guards queue, spare, cur, drainers, watching and seen. begun is counted
// by the drainers.
type starter struct {
	w        *workers
	kick     mailbox.Mailbox[struct{}]
	mu       sync.Mutex
	queue    []firstTurn // spawned since the drainers last took the queue
	spare    []firstTurn // an emptied batch's array, for the next queue
	cur      *startBatch // what the drainers take from; nil when none runs
	drainers int         // running drainers, one of them perhaps stuck in a turn
	watching bool        // the timer is armed
	seen     uint64      // begun when the timer last looked
	timer    *time.Timer // made on first use
	begun    atomic.Uint64
}

// firstTurn is an actor whose first turn waits: its held mailbox's turns.
type firstTurn struct {
	p *process
	t mailbox.Turns
}

// startBatch is a queue the drainers took, each claiming the next turn.
type startBatch struct {
	turns []firstTurn
	next  atomic.Int64
}

// startStall is how long first turns wait behind one that does not return
// before another drainer takes them.
const startStall = time.Millisecond

func newStarter(w *workers) *starter {
	s := &starter{w: w}
	if err := s.kick.Init(s, mailbox.Options{Pool: w}); err != nil {
		panic(err) // the options are valid
	}
	return s
}

// InvokeSystem, Invoke and Dropped make the starter the Invoker of its
// drainers' mailboxes.
func (s *starter) InvokeSystem(struct{})   { s.drain() }
func (s *starter) Invoke(struct{})         {}
func (s *starter) Dropped(struct{}, error) {}

// start queues p's first turn; t is the Turns of its held mailbox.
func (s *starter) start(p *process, t mailbox.Turns) {
	s.mu.Lock()
	s.queue = append(s.queue, firstTurn{p, t})
	if s.drainers == 0 {
		s.drainers = 1
		s.mu.Unlock()
		_ = s.kick.SendSystem(struct{}{}) // never closed
		return
	}
	if !s.watching {
		s.watching = true
		s.seen = s.begun.Load()
		if s.timer == nil {
			s.timer = time.AfterFunc(startStall, s.watch)
		} else {
			s.timer.Reset(startStall)
		}
	}
	s.mu.Unlock()
}

// drain runs first turns until none waits.
func (s *starter) drain() {
	for {
		b := s.take()
		if b == nil {
			return
		}
		for {
			i := int(b.next.Add(1) - 1)
			if i >= len(b.turns) {
				break
			}
			f := b.turns[i]
			b.turns[i] = firstTurn{}
			s.begun.Add(1)
			f.p.first(f.t)
		}
	}
}

// take returns the batch to take first turns from: the current one while
// it has some left, else the queue, as a new batch. It returns nil, and
// counts the drainer out, when none waits.
func (s *starter) take() *startBatch {
	s.mu.Lock()
	defer s.mu.Unlock()
	if b := s.cur; b != nil {
		if int(b.next.Load()) < len(b.turns) {
			return b
		}
		// The batch is run to its end. With one drainer, the caller, no
		// one reads it any more; with more, one that claimed its last
		// turn may still be reading it, and the array is left to go.
		if s.drainers == 1 {
			s.spare = b.turns[:0]
		}
		s.cur = nil
	}
	if len(s.queue) == 0 {
		s.drainers--
		return nil
	}
	b := &startBatch{turns: s.queue}
	s.queue, s.spare = s.spare, nil
	s.cur = b
	return b
}

// waitingLocked reports whether first turns wait for a drainer; mu must
// be held.
func (s *starter) waitingLocked() bool {
	return len(s.queue) > 0 || s.cur != nil && int(s.cur.next.Load()) < len(s.cur.turns)
}

// watch is the timer's look: when first turns wait and none began since
// the last look, one more drainer takes them over.
func (s *starter) watch() {
	s.mu.Lock()
	if s.drainers == 0 || !s.waitingLocked() {
		s.watching = false
		s.mu.Unlock()
		return
	}
	n := s.begun.Load()
	stalled := n == s.seen
	s.seen = n
	if stalled {
		s.drainers++
	}
	s.timer.Reset(startStall)
	s.mu.Unlock()
	if stalled {
		m, err := mailbox.New[struct{}](s, mailbox.Options{Pool: s.w})
		if err != nil {
			panic(err) // the options are valid
		}
		_ = m.SendSystem(struct{}{})
	}
}
