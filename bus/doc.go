// Package bus is the core of xbus: actors with mailboxes, addressed
// messages between them, request/reply and publish/subscribe, in one
// process and, through pluggable transports, across processes and hosts.
//
// # Mental model
//
// A *Bus is one node. Actors live on it: values with a Receive method (or
// functions wrapped in ActorFunc) that handle one message at a time, on a
// goroutine the bus provides only while the actor has work. Each actor has a
// Ref (node, name, instance id), a small comparable value that is its
// address. An actor registered under a name is also reachable by that name;
// several instances may share one name, and a message sent to the name goes
// to the instance its placement strategy chooses: by default the one with
// the fewest asks in flight, nearer ones preferred (WithPlacement,
// WithPlacementFor, package placement, docs/routing.md). An ask by name that
// provably never reached its instance is placed again on another one.
//
// Everything is one thing underneath: an addressed message.
//
//   - Tell queues a message in the actor's mailbox and returns at once.
//   - Ask sends a message and waits for the reply, bounded by a context.
//     AskAs does the same and checks the reply's type.
//   - Publish sends a message to every subscription whose pattern matches
//     the subject; Subscribe returns a flow-controlled stream. Patterns use
//     NATS wildcards: "*" matches one token, ">" the rest ("prices.>").
//     The subscription's window holds across links: its node grants each
//     publishing node credit, and a publishing node out of credit applies
//     the subscription's slow policy itself (SlowBlock waits, up to the
//     publisher's ctx), so a reader that stops costs bounded memory on
//     both sides; a publishing node holds at most 65,536 publishes for
//     all of one peer's subscriptions and 262,144 for all peers', taken
//     from the subscription that holds the most beyond that.
//
// In one process a message is a Go value handed over by pointer: nothing is
// encoded and a steady-state Tell allocates nothing. A transport
// (WithTransport: shared memory on one host, sockets across hosts) carries
// the same messages as envelopes with an encoded body, and the caller cannot
// tell the difference except by speed.
//
// An actor runs on goroutines the bus keeps, woken when a message arrives.
// For an actor whose Receive is short and never blocks, WithInline runs it
// on the sender instead, when the message finds it idle: an in-process Ask
// then costs about as much as a channel round trip. An actor that takes a
// stream of []byte tells from other processes and keeps none of them past
// its Receive can borrow them (WithBorrowedBytes): the bus then reuses
// their memory instead of allocating each.
//
// # The caller's duties
//
//   - Close the bus when done (Close drains: queued messages are handled,
//     actors stop in reverse start order, every pending Ask returns). The
//     process-wide Default bus, used by the package-level Register, Tell,
//     Ask, Subscribe and Publish, is never closed.
//   - Give every Ask a context with a deadline you can live with; Ask
//     always returns, with the reply or an error, but only the context bounds
//     how long an actor may take.
//   - Treat a message as given away once sent: the receiver may read it on
//     another goroutine. Send values, or pointers you no longer change.
//   - Inside Receive, use the *Context (Reply, Tell, a non-blocking Ask, Spawn,
//     Watch, Stop) and never keep it after Receive returns. Do not block in
//     Receive on another actor's reply: use Context.Ask, whose callback runs
//     on the actor's own goroutine.
//   - Check errors: a message that cannot be queued is an error for its
//     sender (ErrNoRoute, ErrMailboxFull, ErrActorStopped, ErrClosed), never a
//     silent drop. Match errors with errors.Is; the bus's keep their
//     identity across processes, and so do an application's once registered
//     under the same name on both nodes (Types.RegisterError).
//   - Read subscriptions promptly, or choose what a slow consumer costs:
//     WithSlowPolicy (block the publisher, drop the oldest, or cut the
//     subscriber off).
//
// # Linking nodes
//
// A transport plugged in with WithTransport serves address schemes: package
// shmbus "shm" (shared memory between processes of one host), package
// netbus "unix" and "tcp". The bus dials: Connect (or WithPeers) keeps an
// address linked, redialing with exponential backoff and jitter (WithBackoff)
// whenever the link drops or a dial fails, so a client may start before its
// server and a restarted server is linked again. A refusal retrying cannot
// heal (ErrRefused: a wrong secret or uid, a codec or version mismatch) stops
// the dialing. Disconnect and Forget stop it too and close the links. Links
// lists the links and kept addresses and WithLinkEvents reports each change;
// the log has a link up at Info, down at Warn (Info when this node closed
// it), refused at Warn. Among several links to one peer the bus uses shared
// memory, then a Unix socket, then TCP; moving to a nearer link keeps each
// sender's messages in order, and two nodes that dial each other at once
// end with one link. A node id is bound to the peer that
// linked with it first: a later link claiming it must prove it leads to the
// same node, or it is refused (docs/wire.md gives the trust model).
//
//	b, err := bus.New(bus.WithTransport(netbus.New(netbus.Config{Secret: secret})),
//		bus.WithPeers("tcp://orders.internal:7400"))
//	err = b.WaitFor(ctx, "orders") // names on the peer arrive once the link is up
//
// Discovery sources (WithDiscovery; packages under bus/discovery: a static
// list, the runtime directory of one host, DNS, NATS) find the nodes
// instead: the bus keeps each found node linked through its nearest
// address, and knows its names before the link is up, so an Ask to one
// waits for the link, bounded by its ctx (docs/routing.md).
//
// # Failure
//
// A panic or an error returned by Receive fails the actor. The bus recovers
// it: the message that failed goes to dead letters with the reason (wrapping
// ErrActorFailed, and a *PanicError for a panic), an Ask waiting on it gets
// that error, and the actor's queued messages stay queued. If the actor's
// parent is a Supervisor, the actor is suspended and the parent decides
// (restart, resume, stop, or fail in turn). Otherwise the default applies:
// the failure is logged and the actor goes on with its next message, state
// intact. The bus never crashes because an actor did.
//
// # Stopping an actor that is running an ask
//
// Stop (and a parent's stop, and Close once its ctx ends) asks the actor to
// stop and waits up to its shutdown timeout (WithShutdownTimeout). From the
// moment the stop is asked, the ask the actor is running counts as
// canceled: Context.Canceled is true and AfterCancel hooks run, so a
// handler waiting on them (an rpc handler on its ctx) can answer and
// return; and the actor's StopContext ends, whatever it runs (a tell, or
// an ask whose asker can never give up), and IsStopping, its poll, turns
// true; an actor stopped otherwise
// (Context.Stop, its supervisor after a failure) ends it as it ends. If the actor still has not
// stopped when the timeout passes, the stop abandons it and answers that
// ask with ErrActorStopped, which says the ask may have run
// (NeverDelivered is false); a reply the actor makes later is dropped,
// never a second answer. An abandoned actor is ended for all but the
// goroutine stuck in its Receive: its children are stopped, what is queued
// for it fails (asks with ErrActorStopped, never delivered; tells are dead
// letters), its name routes only to its other instances and its Ref to
// nothing (ErrNoRoute), its watchers get Terminated and Done closes. When
// Receive returns, nothing more of it runs.
//
// # Dead letters
//
// Every message the bus gives up on — an actor failed on it, it was queued
// when the actor stopped, it was dropped as the oldest of a full mailbox or
// subscription, its asker gave up — is a dead letter: counted by reason
// (DeadLetters, DeadLetterCount) and published to subscribers of
// DeadLetterSubject.
//
// # Flow control between nodes
//
// A message to another node waits only for room on the link to it (the
// link's queue or ring): at most until its ctx ends or, when it has no
// deadline, the bus's send timeout (WithSendTimeout; a remote Tell and
// Publish included), then it fails with an error matching ErrDeadline.
// The receiving node never waits: a link's reader hands each message on
// without blocking, so one slow actor or subscriber cannot stall the others
// behind the same link. When an actor's mailbox is full and its policy is
// to block, an ask from another node is refused at once with ErrMailboxFull
// and a tell becomes a dead letter with that reason (DropOldest and
// FailFast act as in process). A SlowBlock subscription whose window is
// full loses a message from another node, counted in Dropped and
// dead-lettered with ErrSlowConsumer; the remote publisher does not wait.
// A body the node cannot decode refuses its ask with ErrUnknownType or
// ErrBadEnvelope and is a dead letter. So every message sent to another
// node is processed, refused to its sender, or a dead letter on one of the
// two nodes, also when the sender closes its bus or link (what its links
// accepted is flushed first). When a link breaks (the peer dies, the link
// times out), a tell or publish it had accepted and the peer did not take is
// a dead letter with ErrPeerGone: exactly when either node closes the link
// or shuts down, and on a broken socket once the two nodes link again; one
// the peer never acknowledged and never came back to settle is counted in
// doubt (it may have been processed). A sender that must know its message
// was taken uses Ask.
//
// # Example
//
// A complete program: an actor with state, asked by name, told in order, a
// wildcard subscription, and a clean shutdown.
//
//	package main
//
//	import (
//		"context"
//		"fmt"
//		"time"
//
//		"github.com/xbus-dev/xbus/bus"
//	)
//
//	type Deposit struct{ Amount int }
//	type Balance struct{}
//
//	func main() {
//		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
//		defer cancel()
//		b, err := bus.New(bus.WithName("bank"))
//		if err != nil {
//			panic(err)
//		}
//		defer b.Close(ctx)
//
//		total := 0 // owned by the actor: Receive runs one message at a time
//		b.Register("account", bus.ActorFunc(func(c *bus.Context, msg any) error {
//			switch m := msg.(type) {
//			case Deposit:
//				total += m.Amount
//				return c.Bus().Publish("account.deposits", m)
//			case Balance:
//				return c.Reply(total)
//			}
//			return nil
//		}))
//
//		sub, _ := b.Subscribe(ctx, "account.>")
//		for _, n := range []int{10, 20, 12} {
//			b.Tell("account", Deposit{n}) // in order from one sender
//		}
//		balance, err := bus.AskAs[int](ctx, b, "account", Balance{})
//		fmt.Println(balance, err) // 42 <nil>
//		m, _ := sub.Next(ctx)
//		fmt.Println(m.Subject, m.Msg) // account.deposits {10}
//	}
//
// The runnable examples of this package and the program in
// examples/quickstart show more; docs/architecture.md shows how the pieces
// fit together.
package bus
