package flow

import "fmt"

// MaxWindow is the largest window a receiver grants and the most credit a
// sender holds: every counter stays far from its type's bound.
const MaxWindow = 1 << 20

// Receiver is the reading end of one stream's credit. Its zero value is a
// closed receiver; make one with NewReceiver.
type Receiver struct {
	window   uint32 // what was granted at the open; the sum conserved
	credit   uint32 // granted, not yet used by the sender
	buffered uint32 // received, not yet consumed
	owed     uint32 // consumed, not yet granted back
	closed   bool
	err      error
}

// NewReceiver returns a receiver that granted window items: the caller
// tells the sender Window as the stream's first grant.
func NewReceiver(window int) (Receiver, error) {
	if window < 1 || window > MaxWindow {
		return Receiver{}, fmt.Errorf("%w, got %d", ErrWindow, window)
	}
	return Receiver{window: uint32(window), credit: uint32(window)}, nil
}

// Window is the stream's window: what the sender may have in flight and
// the receiver hold, together.
func (r *Receiver) Window() uint32 { return r.window }

// Credit is what the sender may still send on the grants it was given
// (some of it may be on its way here).
func (r *Receiver) Credit() uint32 { return r.credit }

// Buffered is how many items arrived and were not consumed yet.
func (r *Receiver) Buffered() uint32 { return r.buffered }

// Receive accounts for one arriving item. ErrOverflow: the sender had no
// credit for it (refuse it, end the stream). After Close, an error
// wrapping ErrClosed: drop the item and count it; it is no overflow, the
// sender sent it before it learned of the close.
func (r *Receiver) Receive() error {
	if r.Closed() {
		return closedErr(r.Err())
	}
	if r.credit == 0 {
		return fmt.Errorf("%w: window %d, %d items held", ErrOverflow, r.window, r.buffered)
	}
	r.credit--
	r.buffered++
	return nil
}

// Consume accounts for the reader taking one buffered item (or the
// receiver dropping one) and returns the credit to grant the sender now:
// 0 until half the window is owed back, then all that is owed. A closed
// receiver grants nothing. Consume with nothing buffered is the caller's
// bug; it changes nothing and returns 0.
func (r *Receiver) Consume() (grant uint32) {
	if r.buffered == 0 {
		return 0
	}
	r.buffered--
	if r.closed {
		return 0
	}
	r.owed++
	if r.owed < (r.window+1)/2 {
		return 0
	}
	grant, r.owed = r.owed, 0
	r.credit += grant
	return grant
}

// Close ends the receiving side for reason (ErrClosed when nil): it grants
// nothing more and refuses what still arrives; Buffered items can still be
// consumed. Only the first Close counts.
func (r *Receiver) Close(reason error) {
	if r.closed {
		return
	}
	r.closed, r.err = true, reasonOr(reason)
	r.credit, r.owed = 0, 0
}

// Closed says whether the receiver was closed (or never opened).
func (r *Receiver) Closed() bool { return r.closed || r.window == 0 }

// Err is why the receiver was closed; nil while it is open.
func (r *Receiver) Err() error {
	if r.window == 0 && !r.closed {
		return ErrClosed
	}
	return r.err
}

// closedErr wraps ErrClosed around reason, once.
func closedErr(reason error) error {
	if reason == ErrClosed {
		return ErrClosed
	}
	return fmt.Errorf("%w: %w", ErrClosed, reason)
}

// Sender is the writing end of one stream's credit. Its zero value is an
// open sender with no credit: it may send once the receiver's first grant
// arrives.
type Sender struct {
	credit uint32
	closed bool
	err    error
}

// Credit is how many items the sender may send now.
func (s *Sender) Credit() uint32 { return s.credit }

// Send takes one credit for an item about to be sent. ErrNoCredit: do not
// send it; hold or drop it by the caller's policy. After Close, an error
// wrapping ErrClosed.
func (s *Sender) Send() error {
	if s.closed {
		return closedErr(s.err)
	}
	if s.credit == 0 {
		return ErrNoCredit
	}
	s.credit--
	return nil
}

// Grant adds n credits the receiver granted. A grant that would take the
// credit above MaxWindow is refused with ErrGrantOverflow and changes
// nothing: the receiver lies (end the stream). A grant to a closed sender
// is ignored: the receiver sent it before it learned of the close.
func (s *Sender) Grant(n uint64) error {
	if s.closed {
		return nil
	}
	if n > uint64(MaxWindow-s.credit) {
		return fmt.Errorf("%w: %d more on %d", ErrGrantOverflow, n, s.credit)
	}
	s.credit += uint32(n)
	return nil
}

// Close ends the sending side for reason (ErrClosed when nil): it sends
// nothing more. Only the first Close counts.
func (s *Sender) Close(reason error) {
	if s.closed {
		return
	}
	s.closed, s.err, s.credit = true, reasonOr(reason), 0
}

// Closed says whether the sender was closed.
func (s *Sender) Closed() bool { return s.closed }

// Err is why the sender was closed; nil while it is open.
func (s *Sender) Err() error { return s.err }

func reasonOr(reason error) error {
	if reason == nil {
		return ErrClosed
	}
	return reason
}
