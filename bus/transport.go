package bus

import (
	"context"
	"log/slog"
)

// Transport is a way of reaching other nodes: shared memory on one host
// (package shmbus), sockets across hosts (package netbus). The bus never
// imports a transport; one is plugged in with WithTransport.
//
// New calls Start once with the bus as Host. From then on the transport
// reports each link it establishes (accepted or dialed) with Host.LinkUp,
// hands every envelope it receives to Host.Deliver (or, in batches, to
// BatchHost.DeliverBatch when the Host implements it), hands back with
// Host.Undelivered what it accepted and could not deliver, and reports a
// link's end with Host.LinkDown. Close stops accepting, closes every link (each
// reported with LinkDown) and waits for the transport's goroutines.
type Transport interface {
	// Schemes lists the address schemes the transport serves: "shm" for
	// shared memory, "unix" and "tcp" for sockets. The bus dials an address
	// (Bus.Connect) through the transport that serves its scheme; when
	// several do, the first given with WithTransport dials it.
	Schemes() []string
	Start(h Host) error
	Close(ctx context.Context) error
}

// Dialer is implemented by transports that can connect to an address. The
// bus calls it to keep an address linked (Bus.Connect), redialing with
// backoff as it sees fit; a transport never redials on its own.
type Dialer interface {
	// Dial makes one attempt to connect to addr ("shm:///path",
	// "unix:///path", "tcp://host:port"), bounded by ctx: it completes the
	// handshake, reports the link with Host.LinkUp and returns it. An error
	// wrapping ErrRefused means retrying cannot help.
	Dial(ctx context.Context, addr string) (Link, error)
}

// Link is a connection from this node to one peer node through one
// transport. The bus keeps, per peer, the nearest link that is up.
type Link interface {
	// Peer is the node at the other end, learned in the link's handshake.
	Peer() NodeID
	// Locality is SameHost for shared memory and Unix sockets, Remote for TCP.
	Locality() Locality
	// Scheme is the address scheme of the link's transport: "shm", "unix"
	// or "tcp". Among several links to one peer the bus uses the first of
	// shm, unix, tcp (any other scheme after those), strictly.
	Scheme() string
	// Codec is the codec this link's handshake agreed on, from what each
	// end's transport is configured with (codec.Agree; codec.Binary() by
	// default). The bus encodes a body
	// with it unless the sender chose another (WithCodec), once per
	// distinct codec however many peers a message goes to.
	Codec() Codec
	// Send queues env, in order, for the peer. env.Type and env.Body are
	// already encoded by the bus (with Codec); the transport frames the
	// form AppendBinary gives and never looks at Msg. It may block while
	// the link applies backpressure, until ctx ends or the link closes; the
	// bus always passes a bounded ctx. A ctx that has already ended still
	// sends env if the link has room for it at once (the bus answers asks
	// that way, never waiting on a peer), and an envelope begun is finished.
	// The caller may reuse env and its Body once Send returns.
	Send(ctx context.Context, env *Envelope) error
	// Close closes the link; the transport then reports LinkDown with err.
	Close(err error)
}

// FencingLink is a Link that fences itself, so that a tell sent on it
// need not enter its peer's send gate, two atomic adds a message: the bus
// stops sending on a link it moves a peer away from (to a nearer link, or
// off a duplicate) with a fence message that must follow everything sent on
// the link before, and the gate lets it wait for the sends that chose the
// link before it did. A link that refuses such a send once fenced gives the
// same order: the send goes to the peer's new link instead.
type FencingLink interface {
	Link
	// SendUnfenced is Send for a send that chose the link without entering
	// its peer's send gate. Once Fence has begun it sends nothing and
	// returns an error matching ErrLinkFenced; the bus then sends env
	// elsewhere.
	SendUnfenced(ctx context.Context, env *Envelope) error
	// Fence sends env as Send does, after refusing every SendUnfenced from
	// now on: env follows every envelope a SendUnfenced took.
	Fence(ctx context.Context, env *Envelope) error
}

// LeadingLink is a Link whose envelopes may arrive in another order than
// sent (a pool of connections keeps only each sender's order) that can send
// one ahead of all sent after it: a switch's mark on the new link must
// reach the peer before any message sent on that link after it.
type LeadingLink interface {
	Link
	// Lead sends env as Send does; the peer is handed env before every
	// envelope sent on the link after Lead returned.
	Lead(ctx context.Context, env *Envelope) error
}

// SpinningLink is implemented by a link whose reader polls for incoming
// envelopes on a thread of its own for a while (shared memory) instead of
// waiting in the Go network poller. An Ask waiting on a reply through such a
// link polls for it before parking; through other links a lone Ask parks at
// once, because a goroutine that yields in a loop keeps its processor from
// checking the network poller, where a socket's reply arrives.
type SpinningLink interface {
	Link
	// ReaderSpins reports whether the reader polls now: the bus asks it at
	// each Ask, so a link whose reader has stopped spinning (on a machine
	// whose CPUs other processes keep busy, say) makes its askers park at
	// once too.
	ReaderSpins() bool
}

// PollingLink is a SpinningLink whose incoming replies an asker waiting
// for its reply may take itself, in the reader's stead: the reply then
// completes the ask on the asker's own goroutine, with no hand-off from
// the reader's.
type PollingLink interface {
	SpinningLink
	// Poll takes the replies and errors that have come on the link, unless
	// another goroutine (the reader) is taking what came now, and hands
	// them to the Host as the reader would (Deliver's rules hold: one at a
	// time, in order), on the caller's goroutine. It stops at the first
	// envelope of another kind and leaves it, and all after it, to the
	// reader: delivering a tell or an ask may run an actor (WithInline) on
	// the caller, which must not hold an asker. It reports whether it took
	// anything. It never waits.
	Poll() bool
}

// Host is what a transport sees of the bus. *Bus implements it.
type Host interface {
	// NodeID is the id this node presents in handshakes.
	NodeID() NodeID
	// Logger is where the transport logs.
	Logger() *slog.Logger
	// Connect asks the bus to keep addr linked (see Bus.Connect): a
	// transport's configured peers go through it, so the bus dials and
	// redials them as it does every address.
	Connect(addr string) error
	// LinkUp adds a link whose handshake has completed. The bus then sends
	// the peer the names and subscriptions it hosts, and keeps it current.
	LinkUp(l Link)
	// Deliver hands the bus one envelope received on l. env.Body is the raw
	// body, which may alias the transport's buffer: it is valid only until
	// Deliver returns, and the bus decodes it (with l's Codec), with one
	// policy for every transport: a body that does not decode is the
	// bus's to answer and count, never a reason to close the link.
	// Deliver never waits on an actor, a subscriber or a peer: a full
	// mailbox refuses an ask at once and dead-letters a tell. Envelopes of
	// one link are delivered one at a time, in the order received. Deliver
	// keeps no reference to env or its Body, so the transport may reuse
	// both, though not Headers' array, once Deliver returns.
	Deliver(l Link, env *Envelope)
	// Undelivered hands back one envelope that l's Send accepted and the
	// peer will never be handed, because the link ended first (err says
	// how). Only env's header is read (Kind, To, From); Body may be nil. The
	// bus counts a tell or a publish as a dead letter with a reason wrapping
	// ErrPeerGone and err; any other kind is already accounted for, as its
	// ask fails at LinkDown. A transport hands back every envelope it
	// accepted and neither delivered nor handed back, so that no message a
	// dead link swallowed goes uncounted; a tell or publish may come after
	// LinkDown (netbus hands back a broken connection's once the peer links
	// again, or its settle time is up). It never blocks. An ask handed
	// back before l's LinkDown is placed again on another instance, as it
	// provably never ran (see docs/routing.md, "Failover"); after it, its
	// asker already has ErrPeerGone, so a transport hands back the asks it
	// never sent before it reports LinkDown.
	Undelivered(l Link, env *Envelope, err error)
	// LinkDown removes l. Every ask waiting on its peer through it fails
	// with an error wrapping ErrPeerGone and err.
	LinkDown(l Link, err error)
}

// BatchHost is a Host that also takes envelopes in batches. *Bus
// implements it; a transport that reads several envelopes at once (a
// ring's worth of records, a socket buffer's worth of frames) hands them
// over with one DeliverBatch call when its Host is one, and with one
// Deliver each otherwise.
type BatchHost interface {
	Host
	// DeliverBatch hands the bus envs, received on l in this order: the
	// same as a Deliver of each in turn, with Deliver's promises (it never
	// waits on an actor, a subscriber or a peer; a body that does not
	// decode is the bus's to answer and count), but consecutive tells and
	// asks to one actor go into its mailbox together, with one claim of
	// room and one wake-up of the actor. Bodies may alias the transport's
	// buffer until DeliverBatch returns. It changes the envelopes (it
	// decodes into Msg and leaves Msg and Body nil) and keeps no reference
	// to envs or their Bodies, so the transport may reuse both, though not
	// Headers' arrays, once it returns.
	DeliverBatch(l Link, envs []Envelope)
}

// schemeRank orders link schemes, nearest first.
func schemeRank(scheme string) int {
	switch scheme {
	case "shm":
		return 0
	case "unix":
		return 1
	case "tcp":
		return 2
	}
	return 3
}
