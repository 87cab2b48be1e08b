package bus

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/xbus-dev/xbus/bus/internal/flow"
)

// Message is one published message as a subscriber sees it.
type Message struct {
	Subject string
	Msg     any
}

// SlowPolicy is what a publisher does when a subscriber's window is full.
// For a subscriber on another node the publisher's node applies it when the
// subscription's credit is used up: SlowBlock waits for credit;
// SlowDropOldest holds at most a window there, dropping its oldest (and
// at most 65,536 for all of one node's subscriptions together and 262,144
// for all nodes', beyond which the subscription holding the most, of the
// node holding the most, drops its oldest); SlowCut holds likewise, and
// the subscriber's node cuts the subscription when its buffer is full as
// a message arrives.
type SlowPolicy uint8

const (
	// SlowBlock makes the publisher wait for room, up to its context.
	SlowBlock SlowPolicy = iota
	// SlowDropOldest drops the subscriber's oldest buffered message; every
	// drop is counted (Subscription.Dropped) and dead-lettered.
	SlowDropOldest
	// SlowCut ends the subscription with ErrSlowConsumer, as NATS does with
	// slow consumers; the message that did not fit is dead-lettered.
	SlowCut
)

// DefaultWindow is how many messages a subscription buffers by default.
const DefaultWindow = 256

// SubOption configures Subscribe.
type SubOption func(*Subscription)

// WithWindow sets the subscriber's credit: at most n messages are buffered
// for it, and each publishing node has at most n more in flight or waiting
// in its node's queue; the publisher side never holds more. Zero:
// DefaultWindow; at most 1<<20.
func WithWindow(n int) SubOption { return func(s *Subscription) { s.window = n } }

// WithSlowPolicy sets what happens when the window is full. Zero: SlowBlock.
func WithSlowPolicy(p SlowPolicy) SubOption { return func(s *Subscription) { s.policy = p } }

// Subscription is a stream of the messages published on subjects matching its
// pattern. Read it with Next or range over Messages; Close it when done (it
// also closes when the ctx given to Subscribe ends, or the bus closes).
type Subscription struct {
	b       *Bus
	pattern string
	window  int
	policy  SlowPolicy
	ch      chan Message
	done    chan struct{}
	dropped atomic.Uint64

	endOnce sync.Once
	mu      sync.RWMutex // held for reading while publishing into ch; for writing to close it
	closed  bool         // guarded by mu
	errMu   sync.Mutex   // guards err and stopCtx apart from mu, which a blocked publisher holds
	err     error
	stopCtx func() bool // set after the ctx's AfterFunc, which may already run end

	// Publishes from peers (subflow.go): qmu guards what follows; it is
	// taken before mu, never while mu is held.
	id      uint64 // what peers address the subscription's publishes to
	qmu     sync.Mutex
	queue   []remoteItem        // waiting for room in ch, in arrival order
	recv    map[NodeID]*subRecv // credit granted to each publishing peer
	pumping bool                // pump runs
}

// Subscribe starts a subscription to pattern ("prices.>", "orders.*.new").
// Publishers on other nodes linked to this one send matching messages too.
func (b *Bus) Subscribe(ctx context.Context, pattern string, opts ...SubOption) (*Subscription, error) {
	if pattern != DeadLetterSubject {
		if err := validPattern(pattern); err != nil {
			return nil, err
		}
	}
	if b.closing.Load() {
		return nil, ErrClosed
	}
	s := &Subscription{b: b, pattern: pattern, done: make(chan struct{})}
	for _, o := range opts {
		o(s)
	}
	if s.window == 0 {
		s.window = DefaultWindow
	}
	if s.window < 0 || s.window > flow.MaxWindow || s.policy > SlowCut {
		return nil, fmt.Errorf("bus: subscription window must be between 1 and %d and policy known, got %d and %d", flow.MaxWindow, s.window, s.policy)
	}
	s.ch = make(chan Message, s.window)
	s.id = b.subSeq.Add(1)

	b.namesMu.Lock()
	b.subMu.Lock()
	b.subs.Insert(pattern, s)
	if pattern == DeadLetterSubject {
		b.deadSubs.Add(1)
	} else {
		b.subIDs.Store(s.id, s)
	}
	b.subMu.Unlock()
	if pattern != DeadLetterSubject {
		e := s.entry()
		b.tellPeers(func(c *control) { c.sub(e) })
	}
	b.namesMu.Unlock()

	stop := context.AfterFunc(ctx, func() { s.end(ctx.Err()) })
	s.errMu.Lock()
	s.stopCtx = stop
	s.errMu.Unlock()
	return s, nil
}

// Pattern is the subscription's pattern.
func (s *Subscription) Pattern() string { return s.pattern }

// Messages returns the channel messages arrive on. It is closed when the
// subscription ends; Err then says why.
func (s *Subscription) Messages() <-chan Message { return s.ch }

// Next returns the next message, waiting until one arrives, ctx ends, or the
// subscription ends (then the error is Err()).
func (s *Subscription) Next(ctx context.Context) (Message, error) {
	select {
	case m, ok := <-s.ch:
		if !ok {
			return Message{}, s.Err()
		}
		return m, nil
	case <-ctx.Done():
		return Message{}, ctxError(ctx.Err())
	}
}

// Dropped is how many messages were dropped for this subscriber.
func (s *Subscription) Dropped() uint64 { return s.dropped.Load() }

// Err says why the subscription ended: ErrClosed after Close or when the bus
// closed, ErrSlowConsumer under SlowCut, or the ctx's error. Nil while open.
func (s *Subscription) Err() error {
	s.errMu.Lock()
	defer s.errMu.Unlock()
	return s.err
}

// Close ends the subscription. Messages already buffered can still be read
// from Messages. Close is idempotent.
func (s *Subscription) Close() error {
	s.end(ErrClosed)
	return nil
}

func (s *Subscription) end(reason error) {
	s.endOnce.Do(func() {
		s.errMu.Lock()
		s.err = reason
		stopCtx := s.stopCtx
		s.errMu.Unlock()
		// First release the publishers blocked on a full window: they hold
		// mu for reading, so the write lock that closes ch waits for them.
		close(s.done)
		s.mu.Lock()
		s.closed = true
		close(s.ch)
		s.mu.Unlock()
		if stopCtx != nil { // nil: the ctx ended before Subscribe returned
			stopCtx()
		}
		s.b.removeSubscription(s)
	})
}

func (b *Bus) removeSubscription(s *Subscription) {
	b.namesMu.Lock()
	defer b.namesMu.Unlock()
	b.subMu.Lock()
	b.subs.Remove(s.pattern, s)
	if s.pattern == DeadLetterSubject {
		b.deadSubs.Add(-1)
	} else {
		b.subIDs.Delete(s.id)
	}
	b.subMu.Unlock()
	if s.pattern != DeadLetterSubject && !b.closing.Load() {
		b.tellPeers(func(c *control) { c.unsub(s.id) })
	}
}

func (b *Bus) closeSubscriptions() {
	for _, s := range b.subscriptions() {
		s.end(ErrClosed)
	}
}

// subscriptions lists every subscription now open.
func (b *Bus) subscriptions() []*Subscription {
	b.subMu.RLock()
	defer b.subMu.RUnlock()
	all := make([]*Subscription, 0, b.subs.Len())
	b.subs.All(func(s *Subscription) bool { all = append(all, s); return true })
	return all
}

// Publish sends msg to every subscription matching subject, here and on
// linked nodes. A message with no subscriber goes nowhere, as in NATS; that
// is not an error. Publish waits while a SlowBlock subscriber's window is
// full (a remote one's no longer than the bus's send timeout, then
// ErrDeadline); use PublishContext to bound that wait. Each such subscriber
// waits for its own room at the same time, within the one bound, and gets
// the message as soon as it has room: one that never reads costs the others
// nothing but the publish's wait. Likewise a peer whose link has no room
// (it stopped reading) delays no other peer's send. A *PublishError names
// the subscriptions that missed the message, and why.
func (b *Bus) Publish(subject string, msg any) error {
	return b.PublishContext(context.Background(), subject, msg)
}

// PublishContext is Publish with ctx bounding any wait for a slow subscriber.
func (b *Bus) PublishContext(ctx context.Context, subject string, msg any) error {
	if err := validSubject(subject); err != nil {
		return err
	}
	if b.closing.Load() {
		return ErrClosed
	}
	// Every subscription with room (or credit) takes the message first;
	// then those that must wait wait together (publishWait).
	w := publishWait{m: Message{Subject: subject, Msg: msg}}
	b.publish(ctx, subject, msg, deliverTry, &w)
	b.publishRemote(ctx, subject, msg, &w)
	return w.err()
}

// deliverMode is how a delivery to a full SlowBlock subscription goes on.
type deliverMode uint8

const (
	deliverWait deliverMode = iota // waits for room, up to ctx
	deliverTry                     // returns errMustWait
	deliverDrop                    // drops the message, counted: for a caller that must not wait
)

// errMustWait is a delivery's under deliverTry that would have waited.
var errMustWait = errors.New("bus: must wait for room")

// publish delivers msg to the local subscriptions matching subject, how
// says; under deliverTry those that must wait go in w, any other failure
// too. Dead letters publish with deliverDrop and a nil w.
func (b *Bus) publish(ctx context.Context, subject string, msg any, how deliverMode, w *publishWait) {
	// The matches are copied out under the read lock and delivered after
	// it, since a delivery may wait for room and Subscribe and Close take
	// the lock for writing.
	var buf [8]*Subscription
	matched := buf[:0]
	b.subMu.RLock()
	b.subs.Match(subject, func(s *Subscription) bool { matched = append(matched, s); return true })
	b.subMu.RUnlock()
	for _, s := range matched {
		switch err := s.deliver(ctx, Message{Subject: subject, Msg: msg}, how); {
		case err == nil || w == nil:
		case err == errMustWait:
			w.local = append(w.local, s)
		default:
			w.miss(b.id, s.pattern, err)
		}
	}
}

func (s *Subscription) deliver(ctx context.Context, m Message, how deliverMode) error {
	cut := false
	s.mu.RLock()
	err := func() error {
		if s.closed {
			return nil
		}
		select {
		case s.ch <- m:
			return nil
		default:
		}
		if how == deliverDrop && (s.policy == SlowBlock || s.pattern == DeadLetterSubject) {
			s.dropped.Add(1)
			if s.pattern != DeadLetterSubject {
				s.b.deadLetter(m.Msg, Ref{Name: m.Subject}, Ref{}, ErrSlowConsumer)
			}
			return nil
		}
		switch s.policy {
		case SlowDropOldest:
			for {
				select {
				case old := <-s.ch:
					s.dropped.Add(1)
					s.b.deadLetter(old.Msg, Ref{Name: old.Subject}, Ref{}, ErrSlowConsumer)
				default:
				}
				select {
				case s.ch <- m:
					return nil
				default:
				}
			}
		case SlowCut:
			cut = true
			s.dropped.Add(1)
			s.b.deadLetter(m.Msg, Ref{Name: m.Subject}, Ref{}, ErrSlowConsumer)
			return nil
		}
		if how == deliverTry {
			return errMustWait
		}
		select {
		case s.ch <- m:
			return nil
		case <-s.done:
			return nil
		case <-ctx.Done():
			return ctxError(ctx.Err())
		}
	}()
	s.mu.RUnlock()
	if cut {
		s.end(ErrSlowConsumer)
	}
	return err
}
