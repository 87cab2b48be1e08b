// Package shmbus is a bus.Transport for processes on one host: envelopes
// travel through lock-free rings in shared memory instead of a socket.
//
// A link is set up over a Unix socket. Both sides check that the peer runs
// as the same user (SO_PEERCRED); each creates a memfd segment holding the
// ring it writes, seals it against writes by anyone else and passes a
// read-only fd (SCM_RIGHTS) to the other, which maps it read-only. Then
// the socket stays open and silent: its EOF is the peer's death notice, and
// the link goes down at once, failing the asks waiting on that peer with
// bus.ErrPeerGone (as a send on the dead link fails too). Before it goes
// down, the reader delivers what the peer left in its ring and hands the
// bus back (Host.Undelivered) what the peer's reader never took, so every
// tell a Send accepted is processed or a dead letter, and an ask the peer
// never took is placed again on another instance of its name instead of
// failing (docs/shmbus.md, "The ledger at a link's end").
//
// A stopped or wedged peer keeps its socket open, so each reader also bumps
// a heartbeat in its own segment whenever it runs, idle or busy (a parked
// reader wakes to beat), and each side watches the other's: a heartbeat
// still for longer than Config.PeerTimeout (default 5 s) closes the link
// with an error wrapping bus.ErrPeerGone, which fails the peer's asks and
// every sender waiting on its ring.
//
// Send never blocks forever: while the ring is full it waits until the
// peer's reader frees room and wakes it, its ctx ends, the link closes or
// the peer is declared gone, whichever comes first. A peer that lives but does not read holds a sender until its ctx
// ends; the bus passes a bounded ctx (bus.WithSendTimeout).
//
// Each ring is many-to-one in the style of Aeron's ManyToOneRingBuffer: any
// goroutine of the writing process claims space by a CAS on the tail and
// publishes its record by storing a stamp last; one reader goroutine per
// link polls, spins for an adaptive budget (up to 100 µs while records
// keep coming, down to 5 µs when they come only after it parked), then
// parks on a futex that a producer wakes only when the reader said it
// parked: a busy link makes no syscalls, an idle one uses no CPU.
// Messages larger than a record are fragmented and reassembled up to
// Config.MaxMessage; a sender whose ctx ends in the middle of one aborts
// it, and the reader drops the part it has. The reader validates
// everything it reads from shared memory: a peer that breaks the protocol
// gets its link closed with ErrCorrupt.
//
// The byte layout and the protocol are specified in docs/shmbus.md.
//
// The transport serves the "shm" scheme. The bus dials: bus.Connect (or
// bus.WithPeers, or Config.Dial, which the transport hands to the bus) keeps
// an address such as "shm:///run/user/1000/svc.sock" linked, dialing it
// through Dial and again with backoff and jitter when the link drops or the
// server is not up yet; the transport itself never redials.
//
//	t := shmbus.New(shmbus.Config{Listen: "/run/user/1000/svc.sock"})
//	b, err := bus.New(bus.WithName("svc"), bus.WithTransport(t))
//	...
//	// in another process:
//	b, err := bus.New(bus.WithName("client"), bus.WithTransport(shmbus.New(shmbus.Config{})),
//		bus.WithPeers("shm:///run/user/1000/svc.sock"))
//	b.WaitFor(ctx, "some-actor")
//	reply, err := b.Ask(ctx, "some-actor", msg)
//
// `xbus bench shm` measures the transport between two processes
// (docs/performance.md).
//
// The link's codec is agreed from the codec names in the hellos (Config.Codec
// of each end): the same name, else the acceptor's when it is built in
// (cbor, json, raw), else the dialer's when it is (docs/codecs.md).
//
// A peer of another user, protocol version or ring size, or whose codec
// and this end's are both its own and differ, is refused
// with an error wrapping ErrPeerRefused and bus.ErrRefused: retrying cannot
// help. The listener logs it at Warn; the bus logs a dial's refusal at Warn
// and stops dialing.
//
// Linux only; elsewhere Start and Dial return ErrUnsupported, which wraps
// bus.ErrUnsupported.
package shmbus
