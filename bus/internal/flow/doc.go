// Package flow is per-stream credit flow control: the receiver grants a
// window of items, the sender never has more than the granted credit in
// flight, and the receiver grants again as its reader consumes, so a slow
// reader costs bounded memory on both ends. It is pure: no goroutines, no
// I/O, no clock. Subscribe across links and rpc streams both drive it; the
// caller owns the messages that carry items and grants.
//
// One stream has a [Receiver] at the end that reads and a [Sender] at the
// end that writes. The receiver opens with its whole window granted: the
// stream's open message (or a first grant) carries [Receiver.Window], which
// the sender adds with [Sender.Grant]. Then:
//
//   - the sender calls [Sender.Send] before each item; [ErrNoCredit] means
//     it must hold or drop the item (its own policy), not send it;
//   - the receiver calls [Receiver.Receive] for each item that arrives;
//     an item beyond the credit it granted is refused with [ErrOverflow]
//     (the sender lies: end the stream);
//   - the receiver calls [Receiver.Consume] as its reader takes an item
//     (or the receiver drops one); when it returns a grant above zero, the
//     caller sends that grant to the sender. Grants are batched: one goes
//     out when half the window has been consumed, not one per item;
//   - the sender adds each grant with [Sender.Grant]; a grant that would
//     take its credit above [MaxWindow] is refused with [ErrGrantOverflow]
//     (the receiver lies) and changes nothing.
//
// Either end may Close with a reason. A closed sender sends nothing more;
// grants that arrive after it closed are ignored. A closed receiver refuses
// what still arrives (the caller drops and counts it) and grants nothing
// more, while the items it buffered can still be consumed.
//
// While a stream is open the credit is conserved: the sender's credit, the
// items in flight, the items the receiver holds and the consumption it has
// not granted back yet, and the grants in flight always add up to the
// window. Every counter is a uint32 bounded by MaxWindow, whatever values a
// peer sends (FuzzCredit checks both).
//
// A Receiver and a Sender are values with no locks: one goroutine owns
// each, or a lock the caller holds guards it.
//
//	r, _ := flow.NewReceiver(64)
//	var s flow.Sender
//	_ = s.Grant(uint64(r.Window())) // carried by the stream's open message
//	for s.Send() == nil {           // the sender sends until its credit is used
//		_ = r.Receive()             // each item arrives
//	}
//	for r.Buffered() > 0 {
//		if g := r.Consume(); g > 0 { // the reader takes items; half the window back
//			_ = s.Grant(uint64(g))
//		}
//	}
package flow
