package bus

import (
	"context"
	cryptorand "crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"
	"unicode"
	"unicode/utf8"
	"unsafe"

	"github.com/tidwall/btree"

	"github.com/xbus-dev/xbus/bus/internal/flow"
	"github.com/xbus-dev/xbus/bus/internal/subject"
	"github.com/xbus-dev/xbus/bus/placement"
	"github.com/xbus-dev/xbus/mailbox"
)

// Bus is one node: the actors registered in this process, the routes to
// actors elsewhere, and the transports that reach them.
//
// All methods are safe for concurrent use.
type Bus struct {
	id         NodeID
	name       string
	log        *slog.Logger
	types      *Types
	lent       lentSlabs // WithBorrowedBytes's slabs
	codecs     *codecSet // codecs known by name, beside each link's own
	transports []Transport
	mbDefaults mailbox.Options
	topOpts    spawnOpts // shared by the top-level actors spawned without options
	workers    *workers
	// sendTimeout bounds a send to a peer whose sender gave no deadline.
	sendTimeout time.Duration
	// peerHeld and nodeHeld bound the publishes held for one peer's
	// subscriptions and for all peers' (maxPeerHeld, maxNodeHeld;
	// smaller only in tests); heldAll counts those held (subheld.go).
	peerHeld, nodeHeld int
	heldAll            atomic.Int64
	// beforeGate runs in a send to a peer between its choice of the peer
	// and its read of the peer's link inside the peer's send gate
	// (enterPeer, control.send), with the kind of what it sends; tests
	// only, nil otherwise.
	beforeGate func(Kind)
	// replyWaiters counts replies waiting for room on their links (replyRemote).
	replyWaiters atomic.Int64

	nextID atomic.Uint64
	procs  procTable

	// Lock order: namesMu, then routesMu, then peersMu, then a peer's
	// control.mu; subMu after namesMu. None is held across I/O.
	namesMu  sync.Mutex // orders the changes of local names and subscriptions queued for peers
	routesMu sync.Mutex // serializes changes to names (never held across I/O)
	names    sync.Map   // string -> *service
	// nameIndex holds the names with an instance, in order, for Names;
	// guarded by routesMu.
	nameIndex btree.Set[string]
	// lastService is the service of the name last placed by a lookup in
	// names: a sender that sends to one name again and again skips the
	// lookup (about a tenth of a Tell). A service that was emptied may have
	// left names, so one with no instance is looked up again.
	lastService atomic.Pointer[service]
	namesAdded  chan struct{} // closed when an instance is added; guarded by routesMu

	calls    sync.Pool     // of *askCall for local asks; see getCall
	corr     atomic.Uint64 // counts streams opened; see nextCorr
	corrKey  [2]uint64     // random, mixed into stream ids
	spinners atomic.Int32  // askers polling for their reply (see wait)
	maxSpin  int32         // at most this many poll: GOMAXPROCS when the bus was made
	asks     askTable      // calls of asks to peers, in slots their ids name
	inbound  inboundMap    // asks from peers being served
	tellSrc  tellSources   // records of tells from peers, shared per sender (tellsource.go)

	peersMu sync.RWMutex
	peers   map[NodeID]*peer
	nearest atomic.Pointer[map[NodeID]nearLink] // each peer's nearest link; a snapshot of peers, replaced under peersMu
	linkGen atomic.Uint64                       // counts the snapshots of nearest: a routeView made before one is stale

	placement placement.Strategy            // names' default strategy
	placeFor  map[string]placement.Strategy // per-name strategies; read-only after New
	health    placement.HealthPolicy
	retries   placement.Budget // re-placements of failed asks

	subMu    sync.RWMutex                 // held for reading while publish looks up subs
	subs     subject.Index[*Subscription] // by pattern; guarded by subMu
	subSeq   atomic.Uint64                // the last subscription id given out
	subIDs   sync.Map                     // subscription id → *Subscription, for publishes from peers
	subEpoch atomic.Uint64                // the last credit epoch started with a peer (subflow.go)
	deadSubs atomic.Int32

	dead deadLetters

	streams      streamTable // open streams (stream.go)
	streamWindow int         // a stream end's window when its opener sets none

	lk   linkTable      // kept addresses and the links that are up
	disc discoveryTable // what discovery found

	closing   atomic.Bool
	closed    chan struct{}
	topEnded  chan struct{} // a token when a top-level actor ends while closing: what Close waits on
	closeOnce sync.Once
	closeErr  error
	tasks     tasks // the bus's own goroutines, which Close waits for

	starter *starter // runs new actors' first turns on workers
}

// New creates a bus and starts its transports.
func New(opts ...Option) (*Bus, error) {
	cfg := config{name: "xbus"}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.logger == nil {
		cfg.logger = slog.Default()
	}
	if cfg.types == nil {
		cfg.types = NewTypes()
	}
	if _, err := mailbox.New[delivery](nil, cfg.mailbox); err != nil {
		return nil, err
	}
	for i, t := range cfg.transports {
		if t == nil {
			return nil, fmt.Errorf("bus: nil transport (the WithTransport option number %d of %d)", i+1, len(cfg.transports))
		}
	}
	codecs := newCodecSet()
	for _, c := range cfg.codecs {
		if err := codecs.register(c); err != nil {
			return nil, err
		}
	}
	b := &Bus{
		id:          cfg.nodeID,
		name:        cfg.name,
		types:       cfg.types,
		codecs:      codecs,
		transports:  cfg.transports,
		mbDefaults:  cfg.mailbox,
		peers:       map[NodeID]*peer{},
		closed:      make(chan struct{}),
		topEnded:    make(chan struct{}, 1),
		workers:     newWorkers(),
		sendTimeout: cfg.sendWait,
		peerHeld:    cfg.peerHeld,
		nodeHeld:    cfg.nodeHeld,
		beforeGate:  cfg.beforeGate,
		placement:   cfg.placing.strategy,
		placeFor:    cfg.placing.perName,
		health:      cfg.placing.health,
		retries:     placement.Budget{Rate: cfg.placing.retryRate, Burst: cfg.placing.retryBurst},
		// Read once: runtime.GOMAXPROCS takes the scheduler's lock, a
		// visible share of a remote ask's CPU if every ask read it. A later
		// change of GOMAXPROCS only moves this bound of a heuristic.
		maxSpin: int32(runtime.GOMAXPROCS(0)),
		inbound: newInboundMap(),
	}
	b.topOpts = spawnOpts{bus: b, shutdown: DefaultShutdownTimeout}
	b.starter = newStarter(b.workers)
	if b.id.IsZero() {
		b.id = NewNodeID()
	}
	var key [32]byte
	cryptorand.Read(key[:])
	b.corrKey = [2]uint64{binary.LittleEndian.Uint64(key[:8]), binary.LittleEndian.Uint64(key[8:])}
	b.asks.key = [2]uint64{binary.LittleEndian.Uint64(key[16:]), binary.LittleEndian.Uint64(key[24:])}
	if b.peerHeld <= 0 {
		b.peerHeld = maxPeerHeld
	}
	if b.nodeHeld <= 0 {
		b.nodeHeld = maxNodeHeld
	}
	if b.sendTimeout <= 0 {
		b.sendTimeout = DefaultSendTimeout
	}
	b.streamWindow = cfg.streamWindow
	if b.streamWindow == 0 {
		b.streamWindow = DefaultStreamWindow
	}
	if _, err := flow.NewReceiver(b.streamWindow); err != nil {
		return nil, fmt.Errorf("bus: WithStreamWindow: %w", err)
	}
	b.log = cfg.logger.With("node", b.id.Short())
	if err := registerSystemTypes(b.types); err != nil {
		return nil, err
	}
	if err := b.lk.init(&cfg, b.transports); err != nil {
		return nil, err
	}
	for i, t := range b.transports {
		if err := t.Start(b); err != nil {
			// The failing transport too: it may have listened on some
			// of its addresses before it failed.
			for _, s := range slices.Backward(b.transports[:i+1]) {
				_ = s.Close(context.Background())
			}
			b.workers.close()
			return nil, fmt.Errorf("bus: starting transport %T: %w", t, err)
		}
	}
	if err := b.lk.start(b, cfg.peers); err != nil {
		b.lk.closeLinks(b)
		for _, s := range b.transports {
			_ = s.Close(context.Background())
		}
		return nil, err
	}
	if err := b.startDiscovery(cfg.discovery); err != nil {
		b.lk.closeLinks(b)
		for _, s := range b.transports {
			_ = s.Close(context.Background())
		}
		b.workers.close()
		return nil, err
	}
	return b, nil
}

// NodeID is this node's id.
func (b *Bus) NodeID() NodeID { return b.id }

// Name is the node name given with WithName.
func (b *Bus) Name() string { return b.name }

// Types is the registry of message types this bus decodes.
func (b *Bus) Types() *Types { return b.types }

// Logger is the bus's logger.
func (b *Bus) Logger() *slog.Logger { return b.log }

// Register starts actor a under name and returns its Ref. Several actors may
// share a name, on this node and on others: a message sent to the name goes
// to the instance with the fewest asks in flight, the nearest on a tie.
func (b *Bus) Register(name string, a Actor, opts ...ActorOption) (Ref, error) {
	if name == "" {
		return Ref{}, fmt.Errorf("%w: empty name", ErrInvalidName)
	}
	p, err := b.spawn(name, a, nil, opts)
	if err != nil {
		return Ref{}, err
	}
	return p.ref, nil
}

// Spawn starts an anonymous actor, reachable only by its Ref.
func (b *Bus) Spawn(a Actor, opts ...ActorOption) (Ref, error) {
	p, err := b.spawn("", a, nil, opts)
	if err != nil {
		return Ref{}, err
	}
	return p.ref, nil
}

// Stop stops the actor at ref (and its children) and waits for it up to its
// shutdown timeout. Messages still queued become dead letters; asks among
// them fail with ErrActorStopped. An actor still running a message at the
// timeout is abandoned: ended all the same, its Receive left to return
// (see "Stopping an actor that is running an ask" in the package doc).
func (b *Bus) Stop(ref Ref) error {
	p := b.lookup(ref)
	if p == nil {
		return fmt.Errorf("%w: %s", ErrNoRoute, ref)
	}
	p.stopAndWait(nil)
	return nil
}

// Done returns a channel closed when the actor at ref has stopped (closed at
// once if it is not a live local actor).
func (b *Bus) Done(ref Ref) <-chan struct{} {
	if p := b.lookup(ref); p != nil {
		return p.doneChan()
	}
	return closedDone
}

func validName(name string) error {
	if name == "" || len(name) > MaxNameLen {
		return fmt.Errorf("%w: %q must be 1..%d bytes", ErrInvalidName, name, MaxNameLen)
	}
	if name[0] == '$' {
		return fmt.Errorf("%w: %q: names starting with $ are reserved", ErrInvalidName, name)
	}
	for _, r := range name {
		if r == utf8.RuneError || unicode.IsSpace(r) || unicode.IsControl(r) || r == '*' || r == '>' {
			return fmt.Errorf("%w: %q contains %q", ErrInvalidName, name, r)
		}
	}
	return nil
}

func isNil(a Actor) bool {
	if a == nil {
		return true
	}
	v := reflect.ValueOf(a)
	switch v.Kind() {
	case reflect.Pointer, reflect.Func, reflect.Map, reflect.Chan, reflect.Interface, reflect.Slice:
		return v.IsNil()
	}
	return false
}

func (b *Bus) spawn(name string, a Actor, parent *process, opts []ActorOption) (*process, error) {
	if isNil(a) {
		return nil, ErrNilActor
	}
	if name != "" {
		if err := validName(name); err != nil {
			return nil, err
		}
	}
	if b.closing.Load() && parent == nil {
		return nil, ErrClosed
	}
	cfg := configure(actorConfig{mailbox: b.mbDefaults, shutdown: DefaultShutdownTimeout}, opts)
	if cfg.shutdown <= 0 {
		cfg.shutdown = DefaultShutdownTimeout
	}
	if cfg.weight < 0 || cfg.weight > MaxWeight {
		return nil, fmt.Errorf("bus: instance weight must be between 0 and %d, got %d", MaxWeight, cfg.weight)
	}
	if cfg.replyCodec != nil {
		if err := b.codecs.register(cfg.replyCodec); err != nil {
			return nil, err
		}
	}
	so := &b.topOpts
	if parent != nil || cfg.factory != nil || cfg.shutdown != so.shutdown || cfg.replyCodec != nil || cfg.weight != 0 || cfg.borrow {
		so = &spawnOpts{bus: b, parent: parent, factory: cfg.factory, shutdown: cfg.shutdown, replyTo: cfg.replyCodec, weight: cfg.weight, borrow: cfg.borrow}
	}
	p := &process{opts: so, actor: a}
	p.ctx.p = p
	pooled := cfg.mailbox.Go == nil && cfg.mailbox.Pool == nil
	if pooled {
		cfg.mailbox.Pool = b.workers
	}
	if cfg.inline {
		cfg.mailbox.Inline = true
	}
	if err := p.mb.Init(p, cfg.mailbox); err != nil {
		return nil, err
	}
	// Held before anyone can reach p, so that nothing runs before Started.
	first, _ := p.mb.Hold()
	p.ref = Ref{Node: b.id, Name: name, ID: b.nextID.Add(1)}
	if parent != nil {
		parent.mu.Lock()
		if parent.stopped {
			parent.mu.Unlock()
			return nil, ErrActorStopped
		}
		k := parent.kinLocked()
		k.children = append(k.children, p)
		parent.mu.Unlock()
	}
	b.procs.put(p.ref.ID, p)
	if name != "" {
		b.addName(p)
	}
	if parent == nil && b.closing.Load() {
		// Close began after the check above, and its walk of the table
		// may have missed p: p ends here, never started.
		p.end(ErrClosed)
		return nil, ErrClosed
	}
	switch {
	case pooled && parent == nil:
		b.starter.start(p, first)
	case cfg.mailbox.Pool != nil:
		// A child's Started runs on a worker of its own: its parent's
		// turn may wait for it (a supervisor's does), and that turn may
		// be running on the starter.
		_ = p.mb.SendSystem(delivery{msg: sysStart{}}) // queued behind the hold
		cfg.mailbox.Pool.Go(first)
	default:
		_ = p.mb.SendSystem(delivery{msg: sysStart{}})
		cfg.mailbox.Go(first.Run)
	}
	return p, nil
}

type sysStart struct{}

// unregister removes a stopped process from the tables.
func (b *Bus) unregister(p *process) {
	b.procs.delete(p.ref.ID)
	if p.ref.Name != "" {
		b.removeName(p)
	}
}

// lookup returns the live local process at ref, or nil.
func (b *Bus) lookup(ref Ref) *process {
	if ref.Node != b.id || ref.ID == 0 {
		return nil
	}
	return b.procs.get(ref.ID)
}

// Tell sends msg to a Ref or a name without waiting for it to be handled. It
// returns an error, never drops silently, when msg cannot be queued: unknown
// name (ErrNoRoute), stopped actor (ErrActorStopped), full mailbox under
// FailFast (ErrMailboxFull), closed bus (ErrClosed). Under the actor's Block
// policy it waits for room. To an actor on another node it waits only for
// room on the link, at most the bus's send timeout (WithSendTimeout,
// DefaultSendTimeout), then fails with an error matching ErrDeadline; there
// the receiving node, which never waits on one actor, dead-letters a tell
// its actor's full mailbox cannot take. A name that discovery reported on a
// node not linked yet is waited for, as long as the send timeout.
func (b *Bus) Tell(to any, msg any) error {
	if p := b.localRef(to); p != nil && !b.closing.Load() {
		return p.send(context.Background(), delivery{msg: msg}, mailbox.Default)
	}
	if name, ok := to.(string); ok && !b.closing.Load() {
		if in := b.placeQuick(name); in != nil {
			if in.proc != nil {
				return in.proc.send(context.Background(), delivery{msg: msg}, mailbox.Default)
			}
			return b.tellRemote(context.Background(), in.peer, &in.ref, &Ref{}, msg)
		}
	}
	return b.send(context.Background(), to, msg, nil, mailbox.Default)
}

// Send is Tell with a context bounding any wait for room and an overflow
// policy for this message (mailbox.Default: the actor's own).
func (b *Bus) Send(ctx context.Context, to any, msg any, p mailbox.Policy) error {
	return b.send(ctx, to, msg, nil, p)
}

var errBadAddress = fmt.Errorf("%w: an address must be a bus.Ref or a name string", ErrInvalidName)

// target resolves an address to a local process or a remote Ref; a name is
// placed, with the options ctx carries.
func (b *Bus) target(ctx context.Context, to any, attempt int, avoid *instance) (placed, error) {
	switch t := to.(type) {
	case Ref:
		if t.ID == 0 {
			return b.place(ctx, t.Name, attempt, avoid)
		}
		if t.Node == b.id {
			if p := b.procs.get(t.ID); p != nil {
				return placed{p: p}, nil
			}
			return placed{}, fmt.Errorf("%w: %s", ErrNoRoute, t)
		}
		return placed{remote: t}, nil
	case string:
		return b.place(ctx, t, attempt, avoid)
	}
	return placed{}, errBadAddress
}

// localRef returns the live local process to names when to is a Ref to one
// of this node's instances, or nil. It reads the Ref in place through the
// interface's data word: copying the 40-byte Ref out of the interface (as a
// type switch does) stalled the processor's store forwarding on every Tell.
func (b *Bus) localRef(to any) *process {
	if _, ok := to.(Ref); !ok {
		return nil
	}
	r := (*Ref)((*[2]unsafe.Pointer)(unsafe.Pointer(&to))[1])
	if r.ID == 0 || r.Node != b.id {
		return nil
	}
	return b.procs.get(r.ID)
}

func (b *Bus) send(ctx context.Context, to any, msg any, from *process, pol mailbox.Policy) error {
	if from == nil && b.closing.Load() {
		return ErrClosed
	}
	if p := b.localRef(to); p != nil {
		return p.send(ctx, tellOf(msg, from), pol)
	}
	if name, ok := to.(string); ok {
		// Placed here rather than through target, whose result carries a
		// Ref: copying it out cost more than placing (see localRef).
		if in, err := b.placeName(ctx, name, 0, nil); err == nil {
			if in.proc != nil {
				return in.proc.send(ctx, tellOf(msg, from), pol)
			}
			fr := from.refOrZero()
			return b.tellRemote(ctx, in.peer, &in.ref, &fr, msg)
		}
	}
	pl, err := b.targetWait(ctx, to, 0, nil)
	if err != nil {
		return err
	}
	if pl.p != nil {
		return pl.p.send(ctx, tellOf(msg, from), pol)
	}
	var fromRef Ref
	if from != nil {
		fromRef = from.ref
	}
	var pr *peer
	if pl.in != nil {
		pr = pl.in.peer
	}
	return b.tellRemote(ctx, pr, &pl.remote, &fromRef, msg)
}

// Ask sends msg to a Ref or a name and waits for the reply. It always
// returns: with the reply, or with an error when ctx ends (ErrDeadline,
// ErrCanceled), the actor fails on the message (ErrActorFailed) or stops
// (ErrActorStopped), its mailbox is full under FailFast (ErrMailboxFull),
// its node goes away (ErrPeerGone), or the bus closes (ErrClosed). A name
// that discovery reported on a node not linked yet is waited for, within
// ctx (the send timeout when ctx has no deadline); an unknown name fails
// at once (ErrNoRoute).
func (b *Bus) Ask(ctx context.Context, to any, msg any) (any, error) {
	if b.closing.Load() {
		return nil, ErrClosed
	}
	if p := b.localRef(to); p != nil {
		return b.askOnce(ctx, placed{p: p}, msg)
	}
	pl, err := b.targetWait(ctx, to, 0, nil)
	if err != nil {
		return nil, err
	}
	for attempt := 0; ; attempt++ {
		reply, err := b.askOnce(ctx, pl, msg)
		if !b.mayReplace(ctx, pl, err, attempt) {
			return reply, err
		}
		// Placed again on another instance, if there is one and the
		// retry budget allows; else the failure stands.
		next, perr := b.target(ctx, to, attempt+1, pl.in)
		if perr != nil || next.in == pl.in || !b.retries.Allow(time.Now()) {
			return nil, err
		}
		pl = next
	}
}

// askOnce sends one ask to where pl says and waits for its outcome.
func (b *Bus) askOnce(ctx context.Context, pl placed, msg any) (any, error) {
	if p := pl.p; p != nil {
		call, seq := b.getCall()
		call.inst = pl.in
		call.arm(ctx)
		if pl.in != nil && pl.in.timed {
			call.start = time.Now()
		}
		p.stats.Add(1)
		if err := p.send(ctx, askOf(msg, call, seq, nil), mailbox.Default); err != nil {
			p.stats.Add(-1)
			b.putCall(call)
			if pl.in != nil {
				b.observe(pl.in, err)
			}
			return nil, neverRan(err)
		}
		return b.wait(ctx, call, seq)
	}
	call, seq := b.remoteCall()
	if call == nil {
		return nil, neverRan(errTooManyAsks)
	}
	call.inst = pl.in
	if err := b.askRemote(ctx, pl.remote, msg, Ref{Node: b.id}, call, seq); err != nil {
		return nil, err
	}
	return b.wait(ctx, call, seq)
}

// AskAs is Ask with the reply converted to T; a reply of another type is an
// error wrapping ErrWrongType.
func AskAs[T any](ctx context.Context, b *Bus, to any, msg any) (T, error) {
	var zero T
	r, err := b.Ask(ctx, to, msg)
	if err != nil {
		return zero, err
	}
	v, ok := r.(T)
	if !ok {
		return zero, fmt.Errorf("%w: got %T, want %T", ErrWrongType, r, zero)
	}
	return v, nil
}

// askAsync is Context.Ask: the outcome runs fn on the asking actor.
func (b *Bus) askAsync(ctx context.Context, to any, msg any, owner *process, fn func(any, error)) {
	pl, err := b.target(ctx, to, 0, nil)
	if err != nil {
		_ = owner.mb.SendSystem(delivery{msg: sysCallback{fn: fn, err: err}})
		return
	}
	b.askAsyncOn(ctx, to, msg, owner, fn, pl, 0)
}

// askAsyncOn sends an actor's ask to where pl says. An ask placed by name
// that fails as Ask's may be placed again (see Ask): its outcome, on the
// actor's goroutine, sends it again instead of running fn.
func (b *Bus) askAsyncOn(ctx context.Context, to any, msg any, owner *process, fn func(any, error), pl placed, attempt int) {
	if pl.in != nil {
		done := fn
		fn = func(reply any, err error) {
			if b.mayReplace(ctx, pl, err, attempt) {
				next, perr := b.target(ctx, to, attempt+1, pl.in)
				if perr == nil && next.in != pl.in && b.retries.Allow(time.Now()) {
					b.askAsyncOn(ctx, to, msg, owner, done, next, attempt+1)
					return
				}
			}
			done(reply, err)
		}
	}
	fail := func(err error) {
		_ = owner.mb.SendSystem(delivery{msg: sysCallback{fn: fn, err: err}})
	}
	var call *askCall
	var seq uint64
	if pl.p != nil {
		call, seq = b.getCall()
	} else if call, seq = b.remoteCall(); call == nil {
		fail(neverRan(errTooManyAsks))
		return
	}
	call.cb, call.owner, call.inst = fn, owner, pl.in
	if p := pl.p; p != nil {
		call.arm(ctx)
		if pl.in != nil && pl.in.timed {
			call.start = time.Now()
		}
		p.stats.Add(1)
		if err := p.send(ctx, askOf(msg, call, seq, owner), mailbox.Default); err != nil {
			p.stats.Add(-1)
			b.putCall(call)
			if pl.in != nil {
				b.observe(pl.in, err)
			}
			fail(neverRan(err))
			return
		}
	} else if err := b.askRemote(ctx, pl.remote, msg, owner.ref, call, seq); err != nil {
		fail(err)
		return
	}
	if ctx.Done() != nil {
		context.AfterFunc(ctx, func() {
			if call.abandon(seq, ctxError(ctx.Err())) {
				b.forgetRemote(call)
				fail(ctxError(ctx.Err()))
				if call.slot != 0 {
					// A remote call's slot is the bus's to reuse: a late
					// reply finds its arming ended (answer).
					b.putCall(call)
				}
				// A local one is not recycled: its actor may still read it.
			}
		})
	}
}

func (b *Bus) watch(w *process, ref Ref) {
	if !w.watchingRef(ref) {
		return
	}
	if ref.Node != b.id {
		b.watchRemote(w, ref)
	} else if t := b.procs.get(ref.ID); t == nil {
		w.notifyTerminated(Terminated{Ref: ref, Reason: fmt.Errorf("%w: %s", ErrNoRoute, ref)})
	} else {
		t.watch(w)
	}
	if w.isEnding() { // its end ran meanwhile (abandoned while in Receive) and missed this watch
		b.unwatch(w, ref)
	}
}

// unwatch forgets w as a watcher of ref, an actor here or on a peer.
func (b *Bus) unwatch(w *process, ref Ref) {
	if ref.Node != b.id {
		b.unwatchRemote(w, ref)
	} else if t := b.lookup(ref); t != nil {
		t.unwatch(w)
	}
}

// Close shuts the bus down gracefully. It stops intake (Tell, Ask, Register
// from outside actors return ErrClosed), lets every top-level actor finish
// the messages queued before Close, stops them in reverse start order (each
// stopping its children first), then closes the transports. When ctx ends
// first, the remaining actors are stopped at once: their queued messages
// become dead letters and their asks fail. Every pending Ask returns.
// Close is idempotent; later calls return the first call's result.
func (b *Bus) Close(ctx context.Context) error {
	b.closeOnce.Do(func() { b.closeErr = b.shutdown(ctx) })
	return b.closeErr
}

func (b *Bus) shutdown(ctx context.Context) error {
	b.closing.Store(true)
	b.closeDiscovery()
	var tops []*process // newest first: ids are handed out in start order
	b.procs.each(true, func(p *process) {
		if p.opts.parent == nil {
			tops = append(tops, p)
		}
	})
	var err error
	for _, p := range tops {
		if ctx.Err() == nil {
			if p.mb.Len() == 0 {
				// Nothing queued: stop through the system lane, so that an
				// idle actor's ring is never allocated just to carry the
				// stop (a million idle actors would otherwise cost a ring
				// each here).
				_ = p.mb.SendSystem(delivery{msg: sysStop{}})
			} else {
				_ = p.mb.Send(ctx, delivery{msg: poison{}}, mailbox.Block)
			}
			if b.awaitTop(ctx, p) {
				continue
			}
		}
		if err == nil {
			err = fmt.Errorf("bus: close: %w; stopping the remaining actors at once", ctx.Err())
		}
		if p.mb.SendSystem(delivery{msg: sysStop{reason: ErrClosed}}) == nil {
			p.cancelServing() // a Receive waiting on its ask can return
			if p.isFinished() {
				continue
			}
		}
		p.mb.Close() // an actor stuck in Receive: its queued messages are reported now
	}
	b.closeStreams()
	close(b.closed)
	b.lk.closeLinks(b) // no dialing while the transports close
	for _, t := range b.transports {
		if e := t.Close(ctx); e != nil && err == nil {
			err = e
		}
	}
	b.asks.forEach(func(c *askCall) {
		if seq, _, ok := c.sent(); ok {
			c.complete(seq, nil, ErrClosed)
		}
	})
	b.closeSubscriptions()
	// The peers' control queues end with their last link; a transport that
	// did not report every link down must not keep Close waiting on them.
	b.peersMu.RLock()
	for _, pr := range b.peers {
		pr.ctl.stop()
	}
	b.peersMu.RUnlock()
	b.tasks.wait()
	b.workers.close()
	return err
}

// awaitTop waits until the top-level actor p has stopped (true) or ctx
// ends (false). It waits on topEnded rather than on p's done channel, which
// would be made for each of a million actors only to be closed once.
// Another top-level actor ending meanwhile only makes it look again.
func (b *Bus) awaitTop(ctx context.Context, p *process) bool {
	for !p.isFinished() {
		select {
		case <-b.topEnded:
		case <-ctx.Done():
			return p.isFinished()
		}
	}
	return true
}

// Closed reports whether Close has begun.
func (b *Bus) Closed() bool { return b.closing.Load() }

var _ BatchHost = (*Bus)(nil)

var errNoLink = errors.New("no link to that node")

// tasks tracks the bus's own goroutines (a cancel or reply sent when the
// link has room, a retired link's fence, a subscription's pump). Close
// waits for them; one asked for once that wait began is not started, as
// what it would do (send on a link, pump a subscription) is torn down by
// then. A bare WaitGroup would let a late Go race Close's Wait.
type tasks struct {
	mu   sync.RWMutex
	done bool
	wg   sync.WaitGroup
}

// Go runs f in a goroutine of its own unless the bus has finished closing,
// and reports whether it did.
func (t *tasks) Go(f func()) bool {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if t.done {
		return false
	}
	t.wg.Go(f)
	return true
}

// wait refuses every later Go and waits for those started.
func (t *tasks) wait() {
	t.mu.Lock()
	t.done = true
	t.mu.Unlock()
	t.wg.Wait()
}
