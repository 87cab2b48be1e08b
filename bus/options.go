package bus

import (
	"log/slog"
	"time"

	"github.com/xbus-dev/xbus/mailbox"
)

// Option configures a Bus in New.
type Option func(*config)

type config struct {
	name       string
	logger     *slog.Logger
	transports []Transport
	types      *Types
	codecs     []Codec
	mailbox    mailbox.Options

	peers                []string
	discovery            []Discovery
	linkEvents           func(LinkInfo)
	backoffLo, backoffHi time.Duration
	proofTimeout         time.Duration
	nodeID               NodeID     // tests only: see export_test.go
	beforeGate           func(Kind) // tests only: see export_test.go
	peerHeld, nodeHeld   int        // tests only: see export_test.go
	sendWait             time.Duration
	placing              placingConfig
	streamWindow         int
}

// Options makes one option of several, applied in order: what a package
// that configures a bus in one step returns (samehost.Enable gives a
// transport and a discovery source).
func Options(opts ...Option) Option {
	return func(c *config) {
		for _, o := range opts {
			if o != nil {
				o(c)
			}
		}
	}
}

// WithName names the node in logs and in what it tells its peers. Zero: "xbus".
func WithName(name string) Option { return func(c *config) { c.name = name } }

// WithLogger sets the logger. Zero: slog.Default().
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.logger = l } }

// WithTransport plugs in a transport (shmbus, netbus). Several may be given;
// per peer the bus uses the nearest link that is up.
func WithTransport(t Transport) Option {
	return func(c *config) { c.transports = append(c.transports, t) }
}

// WithTypes sets the registry of message types used to decode bodies that
// arrive from other processes. Zero: a fresh registry from NewTypes.
func WithTypes(t *Types) Option { return func(c *config) { c.types = t } }

// WithMailboxDefaults sets the mailbox options used when an actor is
// registered without WithMailbox. Zero: mailbox.Options{} (capacity 1024,
// Block, throughput 256).
func WithMailboxDefaults(o mailbox.Options) Option { return func(c *config) { c.mailbox = o } }

// DefaultSendTimeout bounds how long a message to another node waits for
// room on its link when its sender set no deadline.
const DefaultSendTimeout = 5 * time.Second

// WithSendTimeout bounds how long a message to another node waits for room
// on its link (the link's queue or ring is full: the peer reads slowly, or
// not at all) when its sender gave no deadline: a remote Tell, a Publish to
// subscribers on other nodes, an Ask whose ctx has none. Past it the send
// fails with an error matching ErrDeadline; nothing waits forever on a
// peer. A send with a deadline is bounded by it instead. Zero:
// DefaultSendTimeout.
func WithSendTimeout(d time.Duration) Option { return func(c *config) { c.sendWait = d } }

// ActorOption configures one actor in Register, Spawn and Context.Spawn.
type ActorOption func(*actorConfig)

type actorConfig struct {
	mailbox    mailbox.Options
	mbSet      bool
	inline     bool
	borrow     bool
	factory    func() Actor
	shutdown   time.Duration
	replyCodec Codec
	weight     int
}

// configure returns base with opts applied. The options take a pointer, so
// the config they write escapes: it is allocated only when there are
// options, not on every spawn of a million.
func configure(base actorConfig, opts []ActorOption) actorConfig {
	if len(opts) == 0 {
		return base
	}
	c := new(actorConfig)
	*c = base
	for _, o := range opts {
		o(c)
	}
	return *c
}

// DefaultShutdownTimeout is how long a parent waits for a child to stop
// before it abandons it and goes on.
const DefaultShutdownTimeout = 5 * time.Second

// WithMailbox sets the actor's mailbox options: capacity, overflow policy
// and throughput.
func WithMailbox(o mailbox.Options) ActorOption {
	return func(c *actorConfig) { c.mailbox, c.mbSet = o, true }
}

// WithInline runs the actor on the goroutine that sends to it when the
// message finds it idle: Tell and Ask invoke Receive before they return, as
// a function call would, instead of waking a goroutine for it (see
// docs/performance.md for what it saves). Messages that find the actor
// busy queue and run on the bus's goroutines as usual; the actor still
// handles one message at a time, and lifecycle messages never run inline.
//
// It is for actors whose Receive is short and never blocks, as the sender
// waits for it. It buys latency, not throughput: a stream of messages from
// one sender is handled on that sender instead of beside it.
//
// A message from another process runs on the transport's reader (never on
// an asker taking its reply from the link: PollingLink takes replies
// only), which saves the serving side's goroutine hand-off; the tells of
// one batch that find the actor idle run one after the other without
// entering its mailbox, and WithBorrowedBytes then lends their bodies in
// the transport's buffer, without a copy. Nothing else is
// delivered from that link meanwhile: an Ask from such a Receive through
// the same link would wait for the very delivery it holds up, until its
// context ends.
func WithInline() ActorOption { return func(c *actorConfig) { c.inline = true } }

// WithBorrowedBytes lends the actor each []byte tell from another process
// instead of giving it: the bytes are the actor's until its Receive
// returns, after which the bus reuses their memory for a later tell. A
// Receive that keeps such a body, or any part of it, beyond its return
// (stores it, sends it to another actor, hands it to a goroutine) must
// keep a copy (bytes.Clone). It saves each such tell's allocation and
// the collector's work on it, most of what a []byte tell costs its
// receiving process (docs/performance.md).
//
// Lent are tells of []byte bodies of at most 1 KiB, from a transport that
// delivers in batches (BatchHost: netbus and shmbus do), in a codec that
// reads them without a copy (BytesDecoder: codec/cbor, the default, and
// Raw); asks, other types and tells in process are given as usual. A lent
// body that outlives Receive on the bus's side (the dead letter and the
// Failure of a Receive that failed, a panic's value) is a copy.
func WithBorrowedBytes() ActorOption { return func(c *actorConfig) { c.borrow = true } }

// WithFactory gives the bus a way to build a fresh instance of the actor,
// used when a supervisor restarts it without supplying one.
func WithFactory(f func() Actor) ActorOption { return func(c *actorConfig) { c.factory = f } }

// MaxWeight is the largest weight an instance may have (WithWeight).
const MaxWeight = 1 << 16

// WithWeight gives a named instance weight n among its name's instances:
// placement.WeightedRoundRobin sends it n calls for every one it sends an
// instance of weight 1, and any strategy may read it
// (placement.Instance.Weight). It reaches the name's other nodes with the
// name. Zero: 1. Register fails on a weight below zero or above MaxWeight.
func WithWeight(n int) ActorOption { return func(c *actorConfig) { c.weight = n } }

// WithShutdownTimeout bounds how long the actor's parent waits for it to stop.
// Zero: DefaultShutdownTimeout.
func WithShutdownTimeout(d time.Duration) ActorOption {
	return func(c *actorConfig) { c.shutdown = d }
}
