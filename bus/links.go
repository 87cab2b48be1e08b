package bus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/xbus-dev/xbus/bus/internal/backoff"
)

// The bus owns addresses: a transport declares the schemes it serves, and
// the bus dials an address through it and keeps it linked, one keeper
// goroutine per address, redialing with exponential backoff and jitter
// until the address is forgotten, refused for good or the bus closes.

// Default bounds of the delay between dials of a kept address.
const (
	DefaultBackoffMin = 50 * time.Millisecond
	DefaultBackoffMax = 5 * time.Second
)

// dialTimeout bounds one dial; transports bound their handshakes more tightly.
const dialTimeout = 30 * time.Second

// LinkState is where a link, or an address the bus keeps linked, stands.
type LinkState uint8

const (
	// LinkDialing: a kept address has no link up; the bus is dialing it or
	// waiting to dial it again.
	LinkDialing LinkState = iota + 1
	// LinkReady: the link is up.
	LinkReady
	// LinkClosed: the link went down (Err says why), or a kept address was
	// forgotten.
	LinkClosed
	// LinkRefused: the peer refused the link, or was refused, for a reason
	// retrying cannot heal (Err wraps ErrRefused); the bus stopped dialing.
	LinkRefused
)

func (s LinkState) String() string {
	switch s {
	case LinkDialing:
		return "dialing"
	case LinkReady:
		return "ready"
	case LinkClosed:
		return "closed"
	case LinkRefused:
		return "refused"
	}
	return fmt.Sprintf("LinkState(%d)", uint8(s))
}

// LinkInfo describes a link, or an address the bus keeps linked. Links
// returns them and WithLinkEvents reports each change.
type LinkInfo struct {
	// Addr is the address the bus keeps linked ("shm:///run/x.sock",
	// "unix:///run/x.sock", "tcp://host:7400"); empty for a link the peer
	// dialed, unless it took over an address from a retired duplicate.
	Addr string
	// Scheme is the link's scheme, or the address's: "shm", "unix", "tcp".
	Scheme string
	// Peer is the node at the other end; zero while a kept address has no
	// link up.
	Peer NodeID
	// State is where it stands, since Since.
	State LinkState
	Since time.Time
	// Attempts counts the dials of a kept address that failed since its
	// last link was up.
	Attempts int
	// Err is why the last link ended or the last dial failed; nil if none did.
	Err error
}

// WithPeers keeps each address linked from New on, as Connect does.
func WithPeers(addrs ...string) Option {
	return func(c *config) { c.peers = append(c.peers, addrs...) }
}

// WithLinkEvents calls fn with the new LinkInfo each time a link comes up
// or goes down, and each time a kept address fails to dial, is refused or
// is forgotten: the feed for metrics and tools. A link dialed for a kept
// address is reported twice as it comes up: once by the link (Addr empty,
// as the transport reports it before its dial returns) and once by the
// address (Addr set). fn runs on the goroutine that made the change, one
// call at a time; it must return promptly and must not call back into the
// bus's link methods.
func WithLinkEvents(fn func(LinkInfo)) Option {
	return func(c *config) { c.linkEvents = fn }
}

// WithBackoff bounds the delay between dials of a kept address: it starts
// at lo and doubles after each failure up to hi, with equal jitter (a random
// point in the upper half). Zero: DefaultBackoffMin and DefaultBackoffMax.
func WithBackoff(lo, hi time.Duration) Option {
	return func(c *config) { c.backoffLo, c.backoffHi = lo, hi }
}

// linkTable is the bus's part of link management. mu guards every field
// except dialers, lo, hi, rand and events, which are fixed once New returns.
// mu is a leaf lock: nothing is called with it held but the event function.
type linkTable struct {
	mu      sync.Mutex
	started bool     // New has started every transport
	pending []string // addresses given to Connect before that
	keepers map[string]*keeper
	live    map[Link]*liveLink // every link reported up, held ones too
	binds   map[NodeID]*binding
	closed  bool
	// Forget of a node a dial under way may lead to: epoch counts Forget
	// calls, forgot holds the epoch of each node's last one.
	epoch  uint64
	forgot map[NodeID]uint64
	// A link retired before the keeper that dialed it attached (its Dial
	// had not returned): handed leads it to the link kept in its place,
	// where the keeper attaches instead. seq orders dials and hand-offs.
	handed  map[Link]handoff
	seq     uint64
	held    atomic.Int32 // links waiting for their proof (see bind.go)
	holding atomic.Int32 // links holding what they receive (see switch.go)

	dialers map[string]Dialer // scheme → transport
	schemes []string          // sorted, for error messages
	lo, hi  time.Duration
	rand    func() float64
	events  func(LinkInfo)

	proofTimeout time.Duration

	wg sync.WaitGroup // keepers
}

// liveLink is a link that is up.
type liveLink struct {
	info LinkInfo
	ks   []*keeper     // keepers of addresses it serves (dialed, or inherited from a duplicate)
	down chan struct{} // closed by LinkDown
	ours bool          // this node closed it: its end is no warning

	// A held link (see bind.go): nonce is the challenge it must answer,
	// nil once it is admitted; timer refuses it when no proof comes.
	nonce   []byte
	timer   *time.Timer
	refused error       // why this node refused it
	early   []*Envelope // what the peer sent on it before this node admitted it
	peerKey []byte      // a key the peer sent on it: the peer took it for its first link

	// Duplicates (see dup.go): each end's random token for the link, and
	// for a link retired in favour of another of the same scheme, that one.
	tok, theirTok uint64
	added         bool // among its peer's links (addLink returned)
	retiring      bool // to be retired
	fenced        bool // this node sent its fence on it
	gotFence      bool // the peer's fence arrived on it
	gotAck        bool // the peer acked this node's fence
	retiredTo     Link

	// A switch of the peer's sends to this link (see switch.go): what
	// arrives here is held until the fence on waitFor; moved records a
	// fence that came before the mark naming this link.
	waitFor  Link
	flushing bool
	queue    []*Envelope
	queued   int // bytes in queue, counted as hold does
	moved    bool
}

// keeper keeps one address linked. info and link are guarded by
// linkTable.mu; the rest is fixed.
type keeper struct {
	addr   string
	d      Dialer
	cancel context.CancelFunc
	done   chan struct{} // closed when the keeper's goroutine returns
	info   LinkInfo
	link   Link  // the link up now, or nil
	why    error // why the keeper was stopped: the reason its link closes with
	// blind is the epoch since which Forget may have missed the keeper
	// (its last link was attached, or its peer became unknown): a Forget
	// after it of the node its next dial reaches stops the keeper as that
	// dial returns.
	blind uint64
	// dialing is t.seq when the keeper's dial under way began; 0 when
	// none is.
	dialing uint64
}

// handoff is where a retired link's keeper goes: the link kept, and t.seq
// when the retired link went down.
type handoff struct {
	to  Link
	seq uint64
}

func (t *linkTable) init(c *config, transports []Transport) error {
	t.keepers, t.live, t.dialers = map[string]*keeper{}, map[Link]*liveLink{}, map[string]Dialer{}
	t.binds, t.handed = map[NodeID]*binding{}, map[Link]handoff{}
	t.lo, t.hi, t.events = c.backoffLo, c.backoffHi, c.linkEvents
	t.proofTimeout = c.proofTimeout
	if t.proofTimeout <= 0 {
		t.proofTimeout = DefaultProofTimeout
	}
	if t.lo <= 0 {
		t.lo = DefaultBackoffMin
	}
	if t.hi <= 0 {
		t.hi = max(DefaultBackoffMax, t.lo)
	}
	if t.lo > t.hi {
		return fmt.Errorf("bus: backoff minimum %v exceeds its maximum %v", t.lo, t.hi)
	}
	if t.rand == nil {
		t.rand = rand.Float64
	}
	owner := map[string]Transport{}
	for _, tr := range transports {
		d, _ := tr.(Dialer)
		for _, s := range tr.Schemes() {
			if _, ok := owner[s]; ok {
				continue // the first transport given dials the scheme
			}
			owner[s] = tr
			if d != nil {
				t.dialers[s] = d
				t.schemes = append(t.schemes, s)
			}
		}
	}
	slices.Sort(t.schemes)
	return nil
}

// schemeOf returns the scheme of addr: what precedes its first colon when a
// transport serves it or "//" follows; "tcp" for a bare "host:port".
func (t *linkTable) schemeOf(addr string) (string, error) {
	s, rest, ok := strings.Cut(addr, ":")
	switch {
	case ok && t.dialers[s] != nil:
		return s, nil
	case ok && strings.HasPrefix(rest, "//"):
		return "", fmt.Errorf("bus: no transport dials scheme %q of address %q (this bus dials: %s)", s, addr, strings.Join(t.schemes, ", "))
	}
	if _, _, err := net.SplitHostPort(addr); err == nil && t.dialers["tcp"] != nil {
		return "tcp", nil
	}
	return "", fmt.Errorf("bus: address %q names no scheme this bus dials (%s)", addr, strings.Join(t.schemes, ", "))
}

// emit reports info to the event function; t.mu must be held, which keeps
// the calls one at a time and in the order of the changes.
func (t *linkTable) emit(info LinkInfo) {
	if t.events != nil {
		t.events(info)
	}
}

// Connect keeps addr linked from now on: the bus dials it through the
// transport that serves its scheme ("shm:///run/x.sock",
// "unix:///run/x.sock", "tcp://host:7400"; a bare "host:port" is TCP) and,
// whenever the link goes down or a dial fails, dials again with exponential
// backoff and jitter (WithBackoff), until Disconnect, Forget or Close. A
// client may so start before its server, and a restarted server is linked
// again. A refusal that retrying cannot heal (an error wrapping ErrRefused:
// a wrong secret or uid, a codec or version mismatch, a node id another
// peer holds) stops the dialing; it is logged at Warn and reported by Links
// and WithLinkEvents.
//
// Connect returns at once: an error only for an address no transport of
// this bus dials, or a closed bus. Connecting an address already kept only
// marks it wanted again: a Forget before that no longer stops its dial
// under way. Use WaitFor to wait for a name the peer hosts.
func (b *Bus) Connect(addr string) error {
	t := &b.lk
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed || b.closing.Load() {
		return ErrClosed
	}
	if !t.started {
		t.pending = append(t.pending, addr)
		return nil
	}
	scheme, err := t.schemeOf(addr)
	if err != nil {
		return err
	}
	if k := t.keepers[addr]; k != nil {
		k.blind = t.epoch // wanted again: a Forget before this no longer applies
		return nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	k := &keeper{addr: addr, d: t.dialers[scheme], cancel: cancel, done: make(chan struct{}),
		info: LinkInfo{Addr: addr, Scheme: scheme, State: LinkDialing, Since: time.Now()}, blind: t.epoch}
	t.keepers[addr] = k
	t.wg.Go(func() { b.keep(ctx, k) })
	return nil
}

// start begins keeping the addresses given before the transports started.
func (t *linkTable) start(b *Bus, peers []string) error {
	t.mu.Lock()
	t.started = true
	pending := append(peers, t.pending...)
	t.pending = nil
	t.mu.Unlock()
	for _, a := range pending {
		if err := b.Connect(a); err != nil {
			return err
		}
	}
	return nil
}

// Disconnect stops keeping addr linked and closes its link, if one is up.
// It waits for the address's keeper to stop. Unknown addresses are ignored.
func (b *Bus) Disconnect(addr string) {
	t := &b.lk
	t.mu.Lock()
	k := t.keepers[addr]
	t.mu.Unlock()
	if k != nil {
		b.stopKeepers([]*keeper{k}, errForgotten)
	}
}

// Forget stops keeping linked every address whose link leads to node and
// closes every link to node. A dial under way (or an address waiting to be
// dialed again) whose link turns out to lead to node is forgotten too: its
// link is closed as its dial returns and the address is not dialed again.
// The node may link again by dialing this one, or when an address leading
// to it is connected again after Forget.
func (b *Bus) Forget(node NodeID) {
	t := &b.lk
	t.mu.Lock()
	t.epoch++
	if t.forgot == nil {
		t.forgot = map[NodeID]uint64{}
	}
	t.forgot[node] = t.epoch
	oldest := t.epoch
	var ks []*keeper
	for _, k := range t.keepers {
		if k.info.Peer == node {
			ks = append(ks, k)
		} else {
			oldest = min(oldest, k.blind)
		}
	}
	for n, e := range t.forgot {
		if e <= oldest && n != node {
			delete(t.forgot, n) // no keeper blind since before it: it can match none
		}
	}
	var ls []Link
	for l, ll := range t.live {
		if l.Peer() == node {
			ll.ours = true
			ls = append(ls, l)
		}
	}
	t.mu.Unlock()
	b.stopKeepers(ks, errForgotten)
	for _, l := range ls {
		l.Close(errForgotten)
	}
}

// stopKeepers forgets ks: each stops dialing and closes its link.
func (b *Bus) stopKeepers(ks []*keeper, why error) {
	t := &b.lk
	t.mu.Lock()
	for _, k := range ks {
		if t.keepers[k.addr] == k {
			delete(t.keepers, k.addr)
		}
		if k.link != nil {
			if ll := t.live[k.link]; ll != nil {
				ll.ours = true
			}
		}
		k.why = why
		k.cancel()
	}
	t.mu.Unlock()
	for _, k := range ks {
		<-k.done
	}
	t.mu.Lock()
	for _, k := range ks {
		k.info.State, k.info.Since, k.info.Err = LinkClosed, time.Now(), why
		t.emit(k.info)
	}
	t.mu.Unlock()
}

// closeLinks stops every keeper; Close calls it before closing the
// transports, so nothing dials while they close.
func (t *linkTable) closeLinks(b *Bus) {
	t.mu.Lock()
	t.closed = true
	ks := make([]*keeper, 0, len(t.keepers))
	for _, k := range t.keepers {
		ks = append(ks, k)
	}
	for _, ll := range t.live {
		ll.ours = true
	}
	t.mu.Unlock()
	b.stopKeepers(ks, ErrClosed)
	t.wg.Wait()
}

// Links returns every link that is up and every kept address that has no
// link up, ordered by address, then peer and scheme.
func (b *Bus) Links() []LinkInfo {
	t := &b.lk
	t.mu.Lock()
	out := make([]LinkInfo, 0, len(t.live)+len(t.keepers))
	for _, ll := range t.live {
		if ll.nonce == nil {
			out = append(out, ll.info)
		}
	}
	for _, k := range t.keepers {
		if k.link == nil {
			out = append(out, k.info)
		}
	}
	t.mu.Unlock()
	slices.SortFunc(out, func(x, y LinkInfo) int {
		if c := strings.Compare(x.Addr, y.Addr); c != 0 {
			return c
		}
		if c := strings.Compare(x.Peer.String(), y.Peer.String()); c != 0 {
			return c
		}
		return schemeRank(x.Scheme) - schemeRank(y.Scheme)
	})
	return out
}

// keep is the goroutine of one kept address: dial, wait for the link to go
// down, back off, dial again, until ctx ends or a refusal.
func (b *Bus) keep(ctx context.Context, k *keeper) {
	t := &b.lk
	defer close(k.done)
	failures := 0
	for {
		t.mu.Lock()
		t.seq++
		k.dialing = t.seq
		t.mu.Unlock()
		dctx, cancel := context.WithTimeout(ctx, dialTimeout)
		l, err := k.d.Dial(dctx, k.addr)
		cancel()
		if err == nil {
			failures = 0
			down, forgotten := t.attach(k, l)
			if forgotten {
				l.Close(errForgotten)
				b.log.Info("link to a forgotten node closed as its dial returned", "addr", k.addr, "peer", l.Peer().Short())
				return
			}
			for down != nil {
				select {
				case <-down:
				case <-ctx.Done():
					t.mu.Lock()
					why, cur := k.why, k.link
					t.mu.Unlock()
					if cur != nil && cur != l {
						t.closeOurs(cur, why) // the link it inherited from a retired duplicate
					}
					l.Close(why)
					return
				}
				down = t.next(k) // a retired duplicate hands its address to the link kept
			}
			t.mu.Lock()
			err := k.info.Err
			if errors.Is(err, ErrRefused) {
				k.info.State, k.info.Since = LinkRefused, time.Now()
				t.emit(k.info)
			}
			t.mu.Unlock()
			if errors.Is(err, ErrRefused) {
				t.wg.Go(func() { b.dialFailed(k.addr, 0, true) })
				b.log.Warn("link refused; not dialing again", "addr", k.addr, "err", err)
				return
			}
		} else {
			if ctx.Err() != nil {
				return
			}
			failures++
			refused := errors.Is(err, ErrRefused)
			t.mu.Lock()
			t.dialed(k)
			if !k.info.Peer.IsZero() {
				k.blind = t.epoch
			}
			k.info.Attempts, k.info.Err, k.info.Peer = failures, err, NodeID{}
			if refused {
				k.info.State, k.info.Since = LinkRefused, time.Now()
			}
			t.emit(k.info)
			t.mu.Unlock()
			if failures >= fallbackAfter || refused {
				n := failures
				t.wg.Go(func() { b.dialFailed(k.addr, n, refused) }) // not here: Found may be waiting for this keeper
			}
			if refused {
				b.log.Warn("link refused; not dialing again", "addr", k.addr, "err", err)
				return
			}
			level := slog.LevelDebug
			if failures == 1 {
				level = slog.LevelInfo
			}
			b.log.Log(ctx, level, "dial failed; retrying", "addr", k.addr, "attempts", failures, "err", err)
		}
		timer := time.NewTimer(backoff.Delay(failures-1, t.lo, t.hi, t.rand()))
		select {
		case <-timer.C:
		case <-ctx.Done():
			timer.Stop()
			return
		}
	}
}

// attach makes l the link of k and returns a channel closed when it goes
// down (already closed if it went down before its Dial returned). A link
// retired before its Dial returned hands k to the link kept, as linkDown
// does for a keeper attached. When l's node was forgotten since k last
// knew where it leads, it stops k instead and reports forgotten: the
// caller closes l.
func (t *linkTable) attach(k *keeper, l Link) (down <-chan struct{}, forgotten bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	ll := t.live[l]
	h, handed := t.handed[l]
	t.dialed(k) // after the look-up: it forgets what no other dial needs
	if e, ok := t.forgot[l.Peer()]; ok && e > k.blind {
		if t.keepers[k.addr] == k {
			delete(t.keepers, k.addr)
		}
		if ll != nil {
			ll.ours = true
		}
		k.why = errForgotten
		k.info.Peer, k.info.State, k.info.Since, k.info.Err = l.Peer(), LinkClosed, time.Now(), errForgotten
		t.emit(k.info)
		return nil, true
	}
	if ll == nil && handed {
		delete(t.handed, l)
		l, ll = h.to, t.live[h.to]
	}
	if ll == nil {
		c := make(chan struct{})
		close(c)
		return c, false
	}
	ll.ks, ll.info.Addr = append(ll.ks, k), k.addr
	k.link, k.blind = l, t.epoch
	k.info.Peer, k.info.Err, k.info.Attempts, k.info.Scheme = l.Peer(), nil, 0, l.Scheme()
	if ll.nonce == nil {
		t.ready(k, ll)
	}
	return ll.down, false
}

// dialed notes that k's dial returned, and forgets the hand-offs no dial
// under way may need: those of links that went down before every such
// dial began. t.mu must be held.
func (t *linkTable) dialed(k *keeper) {
	k.dialing = 0
	if len(t.handed) == 0 {
		return
	}
	oldest := t.seq + 1
	for _, x := range t.keepers {
		if x.dialing != 0 {
			oldest = min(oldest, x.dialing)
		}
	}
	for l, h := range t.handed {
		if h.seq < oldest {
			delete(t.handed, l)
		}
	}
}

// handOn records that l went down and, if retired, the link it was
// retired in favour of (to; nil if none), for a keeper whose dial of l has
// not returned yet; the hand-offs to l move on with it. t.mu must be held.
func (t *linkTable) handOn(l, to Link) {
	for x, h := range t.handed {
		if h.to == l {
			if to == nil {
				delete(t.handed, x)
			} else {
				t.handed[x] = handoff{to, h.seq}
			}
		}
	}
	if to == nil {
		return
	}
	for _, k := range t.keepers {
		if k.dialing != 0 {
			t.seq++
			t.handed[l] = handoff{to, t.seq}
			return
		}
	}
}

// next returns the down channel of the link k now rides on, when the link
// it waited on was retired in favour of a duplicate; nil otherwise.
func (t *linkTable) next(k *keeper) <-chan struct{} {
	t.mu.Lock()
	defer t.mu.Unlock()
	if k.link == nil {
		return nil
	}
	if ll := t.live[k.link]; ll != nil {
		return ll.down
	}
	return nil
}

// ready reports k's link ll admitted; t.mu must be held.
func (t *linkTable) ready(k *keeper, ll *liveLink) {
	k.info.State, k.info.Since = LinkReady, ll.info.Since
	t.emit(k.info)
}

// linkDown records a link that went down; LinkDown calls it.
func (t *linkTable) linkDown(b *Bus, l Link, err error) {
	t.mu.Lock()
	ll := t.live[l]
	if ll == nil {
		t.mu.Unlock()
		return
	}
	delete(t.live, l)
	close(ll.down)
	release := t.waiters(l) // the fence they wait for will not come
	if ll.waitFor != nil {
		if release == nil {
			release = map[Link]*liveLink{}
		}
		release[l] = ll // what it held arrived: deliver it
	}
	held := ll.nonce != nil
	var orphans []Link // held links of a peer whose last admitted link this was
	var heir Link      // the one of them the peer took for its first link
	var heirKey []byte
	var hl *liveLink         // the heir's
	var drain bool           // the heir holds what it reads behind what it held
	var unproven []*Envelope // what it kept, which nobody will deliver
	if held {
		ll.timer.Stop()
		t.held.Add(-1)
		unproven, ll.early = ll.early, nil
	} else if bd := t.binds[l.Peer()]; bd != nil {
		if bd.links--; bd.links <= 0 {
			delete(t.binds, l.Peer())
			for x, xl := range t.live {
				if xl.nonce == nil || x.Peer() != l.Peer() {
					continue
				}
				if heir == nil && xl.peerKey != nil {
					heir = x
					continue
				}
				orphans = append(orphans, x)
			}
		}
	}
	if heir != nil {
		// The peer dropped its last link to this node and linked again
		// before this node saw the old one go: the new link is its first,
		// and now this node's too.
		hl = t.live[heir]
		bd := &binding{mine: randomKey(), theirs: hl.peerKey}
		t.binds[l.Peer()] = bd
		heirKey = bd.mine
		// Counted before promote lets the heir's reader past isHeld, so
		// that it finds the heir holding (hold) once the lock is free.
		t.holding.Add(1)
		if drain = t.keepEarly(hl, t.promote(bd, heir, hl)); !drain {
			t.holding.Add(-1)
		}
	}
	if ll.refused != nil {
		err = ll.refused
	}
	ll.info.State, ll.info.Since, ll.info.Err = LinkClosed, time.Now(), err
	if ll.refused != nil {
		ll.info.State = LinkRefused
	}
	t.emit(ll.info)
	ours := ll.ours || b.closing.Load()
	kept := t.live[ll.retiredTo]
	if kept == nil && ll.retiring {
		for x, xl := range t.live {
			if x.Peer() == l.Peer() && x.Scheme() == l.Scheme() && xl.added && !xl.retiring {
				ll.retiredTo, kept = x, xl
				break
			}
		}
	}
	var to Link
	if kept != nil {
		to = ll.retiredTo
	}
	t.handOn(l, to)
	for _, k := range ll.ks {
		if k.link != l {
			continue
		}
		if kept != nil {
			k.link, kept.ks, kept.info.Addr = ll.retiredTo, append(kept.ks, k), k.addr // the address stays linked
			continue
		}
		k.link = nil
		k.info.State, k.info.Since, k.info.Err = LinkDialing, ll.info.Since, err
		if !ours {
			t.emit(k.info)
		}
	}
	t.mu.Unlock()
	for _, e := range unproven {
		if e.Kind == KindTell || e.Kind == KindPublish { // an ask fails at its asker's LinkDown
			b.deadLetter(nil, e.To, e.From, fmt.Errorf("%w: kept on a link that went down before it proved its node id: %w", ErrPeerGone, err))
		}
	}
	for x, xl := range release {
		b.release(x, xl)
	}
	for _, x := range orphans {
		x.Close(fmt.Errorf("%w: the node's proven link went down before this one proved itself", ErrPeerGone))
	}
	if heir != nil {
		b.log.Info("link up", "peer", heir.Peer().Short(), "scheme", heir.Scheme(), "after", "the peer linked again")
		b.sendLinkMsg(heir, &sysLink{Key: heirKey})
		b.addLink(heir)
		b.added(heir)
		if drain {
			b.drain(heir, hl)
		}
	}
	switch {
	case ll.refused != nil:
		b.log.Warn("link refused", "peer", l.Peer().Short(), "scheme", l.Scheme(), "err", err)
	case held:
		b.log.Debug("link down before it proved its node id", "peer", l.Peer().Short(), "scheme", l.Scheme(), "err", err)
	case ours:
		b.log.Info("link down", "peer", l.Peer().Short(), "scheme", l.Scheme(), "addr", ll.info.Addr, "err", err)
	default:
		b.log.Warn("link down", "peer", l.Peer().Short(), "scheme", l.Scheme(), "addr", ll.info.Addr, "err", err)
	}
}

// closeOurs closes l as this node's choice: its end is logged at Info.
func (t *linkTable) closeOurs(l Link, why error) {
	t.mu.Lock()
	if ll := t.live[l]; ll != nil {
		ll.ours = true
	}
	t.mu.Unlock()
	l.Close(why)
}

var errForgotten = errors.New("bus: address forgotten")
