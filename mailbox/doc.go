// Package mailbox provides the per-actor queue of xbus and the scheduling
// that runs an actor only while it has work.
//
// A Mailbox has two lanes: a bounded lock-free user lane (a ring of cells in
// the style of Vyukov's bounded queue, allocated on the first send) and an
// unbounded system lane for stop, restart, watch and failure notices, which
// is always served first and keeps running while the mailbox is suspended.
//
// An idle mailbox owns no goroutine. The send that finds it idle starts one
// (or hands the work to Options.Pool, goroutines the caller keeps, or to
// Options.Go), which runs up to Options.Throughput user messages per turn
// and then yields, so one busy actor cannot starve the rest; it lets go of
// the mailbox when both lanes are empty. With Options.Inline the send that
// finds the mailbox idle handles its own message on the sending goroutine
// instead, and hands
// only what arrives meanwhile to a goroutine. What happens when the user lane
// is full is the sender's choice per call, or the mailbox's default: Block until the sender's context ends,
// FailFast with ErrFull, or DropOldest. Every message the mailbox gives up on
// is reported to the Invoker's Dropped method with a reason; nothing is lost
// silently.
//
// The package imports nothing else of xbus: the bus wraps each actor in an
// Invoker and hands its messages to Send.
//
//	mb, err := mailbox.New[Msg](myInvoker, mailbox.Options{Capacity: 256, Policy: mailbox.FailFast})
//	err = mb.Send(ctx, Msg{...}, mailbox.Default)
package mailbox
