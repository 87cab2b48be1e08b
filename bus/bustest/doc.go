// Package bustest is the conformance kit for xbus transports: an in-memory
// transport that injects faults, and a suite of tests that every transport
// runs to show it keeps the bus's promises.
//
// # The suite
//
// TestTransport runs the suite over any transport. The transport's test
// supplies a Maker: it starts two buses, A and B, with the options the suite
// gives it plus its transport, makes A link to B, and tells the suite how to
// partition them (Break: the links between them go down and stay down) and
// how to end the partition (Heal). Tap wraps a real transport so that the
// package's Break and Heal can do that to it:
//
//	func TestConformance(t *testing.T) {
//		bustest.TestTransport(t, func(t *testing.T, a, b []bus.Option) bustest.Pair {
//			trB := netbus.New(netbus.Config{Listen: []string{"tcp://127.0.0.1:0"}})
//			tapB := bustest.NewTap(trB)
//			B, _ := bus.New(append(b, bus.WithTransport(tapB))...)
//			tapA := bustest.NewTap(netbus.New(netbus.Config{Peers: trB.Addrs()}))
//			A, _ := bus.New(append(a, bus.WithTransport(tapA))...)
//			t.Cleanup(func() { A.Close(context.Background()); B.Close(context.Background()) })
//			return bustest.Pair{A: A, B: B,
//				Break: func() { bustest.Break(errBroken, tapA, tapB) },
//				Heal:  func() { bustest.Heal(tapA, tapB) },
//			}
//		})
//	}
//
// Each case is a subtest with a fresh Pair; every wait is bounded, so a
// transport that breaks a promise fails rather than hangs. The cases:
//
//   - Order: the tells of one sender to one actor arrive in the order sent,
//     for two senders at once (a goroutine and an actor), none lost.
//   - AskReply: asks by name and by Ref, with a struct body, and 200 at once,
//     each get their own reply.
//   - LargeBody: four 1 MiB bodies at once, larger than a frame, a ring
//     record or a socket buffer, cross intact both ways.
//   - ErrorsCross: an error an actor answers with matches, with errors.Is
//     on the asking side, the bus's sentinel it wraps, or the application
//     error both buses registered (Types.RegisterError, here
//     ErrInsufficientFunds); one nobody registered arrives with its text and
//     CodeApplication; a failing actor is ErrActorFailed; an ask to a
//     stopped actor's Ref is ErrNoRoute.
//   - Deadline: an ask that gets no reply in time fails with ErrDeadline;
//     the actor working on it sees the asker give up (Context.Canceled)
//     and, across a link, the deadline (Context.Deadline).
//   - UnknownType: a body B cannot decode, of a type it has not registered
//     or with bytes its type does not take, fails its ask at once with
//     ErrUnknownType or ErrBadEnvelope; tell or ask, it is a dead letter on
//     B with that reason; the link stays up.
//   - FullMailbox: with an actor of B stuck in Receive and its mailbox full
//     (the default Block policy), a remote ask to it fails at once with
//     ErrMailboxFull while asks to another actor of B keep succeeding; the
//     ledger is exact: what the mailbox held is processed once the actor
//     moves on, and every tell it could not take, and the ask, is a dead
//     letter on B.
//   - SlowSubscriber: a SlowDropOldest subscriber of B that never reads
//     does not stall the link: A's publishes return, another subscriber of
//     B gets them all in order, asks to B succeed; once it reads, it gets
//     the newest message last and in order, and every message it did not
//     get is a dead letter on A or B (ErrSlowConsumer). A SlowBlock one
//     makes A's publisher wait, up to its ctx (ErrDeadline), while asks to
//     B keep succeeding.
//   - CloseDrains: B's graceful Close processes every tell queued on B,
//     and an ask its actor is working on returns to the asker with the
//     reply or ErrPeerGone, never by its deadline.
//   - LinkDeathAndRelink: an ask in flight when the link breaks fails with
//     ErrPeerGone; after Heal, once the buses link again, asks by name and
//     by the old Ref work.
//   - WatchPeerDeath: a watcher of a remote actor gets Terminated, with a
//     reason matching ErrPeerGone, when Break cuts its node off.
//   - WatchStop: a watcher gets Terminated when the actor it watches stops
//     while its node lives on, with a reason other than ErrPeerGone.
//
// In one process (two actors of one bus) Order, AskReply, LargeBody,
// ErrorsCross, Deadline and WatchStop apply and run (package bustest's own test); the
// others need a link.
//
// Message bodies the suite sends are strings, ints and Msg, and the error
// ErrInsufficientFunds, registered on both buses through the options the
// Maker passes on (bus.WithTypes).
//
// # The in-memory transport
//
// A Network is a set of nodes in one process, one per Transport, joined by
// links that are pairs of queues. The test controls it: SetDelay, SetLoss,
// Partition and Heal, Pause and Resume, Kill. Envelopes cross in their binary
// form, as on a real transport.
//
//	net := bustest.NewNetwork()
//	b, _ := bus.New(bus.WithTransport(net.Transport(bustest.Config{Addr: "b"})))
//	a, _ := bus.New(bus.WithTransport(net.Transport(bustest.Config{Addr: "a", Peers: []string{"b"}})))
//	net.Partition("a", "b") // both see their link go down; dials fail
//	net.Heal("a", "b")      // a links to b again
//
// A Transport's Close, and a bus's Link.Close, end a link gracefully: each
// end delivers what was sent before, as a socket's close does. Faults end
// links at once.
//
// No fault is silent to the bus. A lost envelope breaks its link, as a gap
// breaks a reliable stream: the envelopes before it arrive, it and the ones
// after it do not, and both buses see LinkDown wrapping ErrLost, so every
// ask in flight on the link fails with ErrPeerGone. A partition and a kill
// likewise take links down at once, as a heartbeat timeout would without the
// wait. What the bus then owes for the messages a dead link swallowed is the
// bus's promise to keep, and this transport is how a test shows it does: a
// link that dies hands every envelope it swallowed back to the sending bus
// with Host.Undelivered (the bus counts a tell or a publish as a dead
// letter), so a test balances its ledger exactly (sent = processed +
// refused + dead letters). Network.Undelivered counts, by kind, the
// envelopes a link accepted that no bus has been handed either way: once
// the network is quiet it is zero.
//
// The transport uses the time package only, so under testing/synctest its
// delays, like the bus's redials and send timeouts, run on the bubble's fake
// clock, and loss is drawn from a
// generator with a fixed seed: one sequence of sends loses the same
// envelopes on every run.
//
// # Hand-back before LinkDown
//
// WatchHandBacks wraps a real transport to count, per link, the asks it
// handed back to the bus (Host.Undelivered) before the link's LinkDown and
// after it. A transport hands back every ask it never sent before it
// reports the link down, so that the bus places it again; an ask handed
// back after LinkDown fails instead. A transport's test kills a peer with
// asks queued and asserts none came after.
package bustest
