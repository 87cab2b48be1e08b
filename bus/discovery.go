package bus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"slices"
	"strings"
	"sync"
	"time"
)

// Discovery is a source of peers: a static list, the runtime directory of
// one host, DNS, NATS (packages under bus/discovery). The bus starts each
// source given with WithDiscovery once its transports listen, and links
// every node a source finds the nearest way it can (Connect), so that no
// mesh is configured by hand.
//
// Start begins the source's work and returns; the source reports through d
// from its own goroutines until Close. Close stops it and waits for its
// goroutines; the bus calls it first thing in its own Close. A source that
// announces this node reads what to announce from d.Self and re-reads it
// each time d.Changed fires.
type Discovery interface {
	Start(ctx context.Context, d Discovered) error
	Close() error
}

// Discovered is what a discovery source sees of the bus. *Bus implements it.
// Its methods are safe for concurrent use and never block on I/O.
type Discovered interface {
	// Found reports a node: the bus keeps it linked through the nearest
	// of its addresses it can dial (the next-nearest too when those keep
	// failing or are refused), and knows its names before the link
	// is up (an Ask to one of them waits for the link, bounded by its
	// ctx). Reporting a node again refreshes it: its addresses and names
	// are replaced and its TTL starts over.
	Found(n NodeInfo)
	// Lost reports that a node is gone: the one found with id n.ID, or
	// when n.ID is zero, each found by one of n.Addrs without an id. The
	// bus stops keeping it linked.
	Lost(n NodeInfo)
	// Self is what this node announces: its id, host, the addresses its
	// transports listen on and its registered names.
	Self() NodeInfo
	// Changed returns a channel closed at the next change of Self.
	Changed() <-chan struct{}
	// Logger is where the source logs.
	Logger() *slog.Logger
}

// NodeInfo describes a node as discovery knows it.
type NodeInfo struct {
	// ID is the node's id; zero when only an address is known (a static
	// list, a DNS answer): the link's handshake then tells it.
	ID NodeID
	// Host identifies the node's machine (HostID); empty when unknown. An
	// address that only reaches the same host (shm, unix) is dialed only
	// when Host is empty or equals this node's.
	Host string
	// Addrs are the node's listening addresses, in the form Connect takes
	// ("shm:///run/x.sock", "unix:///run/x.sock", "tcp://host:7400").
	Addrs []string
	// Names are the names the node hosts, known before it is linked.
	Names []string
	// TTL is how long the report holds unless it is reported again; zero:
	// until Lost.
	TTL time.Duration
}

// Listener is implemented by a transport that accepts links: Addrs lists
// its listening addresses, in the form Connect takes. Self announces them.
type Listener interface {
	Addrs() []string
}

// WithDiscovery adds discovery sources; see Discovery.
func WithDiscovery(sources ...Discovery) Option {
	return func(c *config) { c.discovery = append(c.discovery, sources...) }
}

// maxFound bounds the nodes the bus keeps from discovery, so a source that
// reports garbage cannot grow the table without end.
const maxFound = 4096

// discoveryTable is what the bus learned from its sources. mu guards every
// field; it is a leaf lock: Connect and Disconnect are called after it is
// released. apply, taken before mu, makes each Found, Lost and expiry
// decide and then connect or disconnect as one step, so that two of them
// (from two sources, or a report and an expiry) apply in the order they
// decided.
type discoveryTable struct {
	apply   sync.Mutex
	mu      sync.Mutex
	sources []Discovery
	nodes   map[string]*foundNode // by nodeKey
	known   map[string]int        // name → how many found nodes host it
	changed chan struct{}         // closed at the next change of Self; nil until asked for
	timer   *time.Timer           // fires by the earliest expiry
	next    time.Time             // when timer fires; zero: not set
	closed  bool
	host    string
}

// foundNode is one node a source reported. tiers are its addresses this
// bus can dial, grouped by scheme, nearest first; tiers[:tier+1] are linked
// (a tier is added when the one before fails, see dialFailed), and linked
// lists them.
type foundNode struct {
	info    NodeInfo
	tiers   [][]string
	tier    int
	linked  []string
	expires time.Time // zero: never
}

// fallbackAfter is how many dials of a found node's nearest addresses fail
// in a row before its next-nearest are linked as well.
const fallbackAfter = 3

// nodeKey is how the table names a node: by id when known, else by its
// first address.
func nodeKey(n NodeInfo) string {
	if !n.ID.IsZero() {
		return "id:" + n.ID.String()
	}
	if len(n.Addrs) > 0 {
		return "addr:" + n.Addrs[0]
	}
	return ""
}

// startDiscovery starts the sources; New calls it after the transports.
func (b *Bus) startDiscovery(sources []Discovery) error {
	d := &b.disc
	d.mu.Lock()
	d.nodes, d.known, d.host = map[string]*foundNode{}, map[string]int{}, HostID()
	d.mu.Unlock()
	for i, s := range sources {
		if s == nil {
			return fmt.Errorf("bus: nil discovery source (the WithDiscovery source number %d of %d)", i+1, len(sources))
		}
	}
	for _, s := range sources {
		if err := s.Start(context.Background(), b); err != nil {
			b.closeDiscovery()
			return fmt.Errorf("bus: starting discovery source %T: %w", s, err)
		}
		d.mu.Lock()
		d.sources = append(d.sources, s)
		d.mu.Unlock()
	}
	return nil
}

// closeDiscovery closes the sources, newest first; Close calls it before
// anything else, so no source reports into a closing bus.
func (b *Bus) closeDiscovery() {
	d := &b.disc
	d.mu.Lock()
	d.closed = true
	srcs := d.sources
	d.sources = nil
	if d.timer != nil {
		d.timer.Stop()
	}
	d.mu.Unlock()
	for _, s := range slices.Backward(srcs) {
		if err := s.Close(); err != nil {
			b.log.Warn("closing discovery source", "source", fmt.Sprintf("%T", s), "err", err)
		}
	}
}

// Found implements Discovered.
func (b *Bus) Found(n NodeInfo) {
	if n.ID == b.id {
		return
	}
	self := b.listenAddrs()
	n.Addrs = slices.DeleteFunc(slices.Clone(n.Addrs), func(a string) bool { return slices.Contains(self, a) })
	key := nodeKey(n)
	if key == "" {
		return // nothing to link and nothing to name it by
	}
	d := &b.disc
	d.apply.Lock()
	defer d.apply.Unlock()
	d.mu.Lock()
	if d.closed || d.nodes == nil {
		d.mu.Unlock()
		return
	}
	f := d.nodes[key]
	if f == nil && len(d.nodes) >= maxFound {
		d.mu.Unlock()
		b.log.Warn("discovery: too many nodes; ignoring one more", "max", maxFound, "addrs", n.Addrs)
		return
	}
	var old []string
	if f == nil {
		f = &foundNode{}
		d.nodes[key] = f
	} else {
		old = f.linked
		for _, name := range f.info.Names {
			d.unknow(name)
		}
	}
	f.info = n
	f.info.Names = slices.Compact(slices.Sorted(slices.Values(n.Names)))
	for _, name := range f.info.Names {
		d.known[name]++
	}
	tiers := b.addrTiers(n, d.host)
	if !slices.EqualFunc(tiers, f.tiers, slices.Equal) {
		f.tiers, f.tier = tiers, 0 // new addresses: start again from the nearest
	}
	f.linked = slices.Concat(f.tiers[:min(f.tier+1, len(f.tiers))]...)
	if len(old) == 0 && b.linkedNear(n.ID, f.tiers) {
		// The node dialed this one as near as this one would dial it
		// (both found each other): a second link would only be retired.
		f.linked = nil
	}
	f.expires = time.Time{}
	if n.TTL > 0 {
		f.expires = time.Now().Add(n.TTL)
		d.arm(b, f.expires)
	}
	drop := d.unused(old, f.linked)
	add := f.linked
	d.mu.Unlock()
	b.linkFound(add, drop)
}

// Lost implements Discovered.
func (b *Bus) Lost(n NodeInfo) {
	d := &b.disc
	d.apply.Lock()
	defer d.apply.Unlock()
	d.mu.Lock()
	var gone []*foundNode
	keys := []string{nodeKey(NodeInfo{ID: n.ID})}
	if n.ID.IsZero() {
		keys = keys[:0]
		for _, a := range n.Addrs {
			keys = append(keys, nodeKey(NodeInfo{Addrs: []string{a}}))
		}
	}
	for _, k := range keys {
		if f := d.nodes[k]; f != nil {
			delete(d.nodes, k)
			gone = append(gone, f)
		}
	}
	drop := d.forget(gone)
	d.mu.Unlock()
	b.linkFound(nil, drop)
}

// forget removes the names of gone and returns the addresses no other
// found node still needs; d.mu must be held.
func (d *discoveryTable) forget(gone []*foundNode) []string {
	var drop []string
	for _, f := range gone {
		for _, name := range f.info.Names {
			d.unknow(name)
		}
		drop = append(drop, d.unused(f.linked, nil)...)
	}
	return drop
}

func (d *discoveryTable) unknow(name string) {
	if d.known[name]--; d.known[name] <= 0 {
		delete(d.known, name)
	}
}

// unused returns the addresses of old that neither keep nor any found node
// links; d.mu must be held.
func (d *discoveryTable) unused(old, keep []string) []string {
	var out []string
	for _, a := range old {
		if slices.Contains(keep, a) {
			continue
		}
		used := false
		for _, f := range d.nodes {
			if slices.Contains(f.linked, a) {
				used = true
				break
			}
		}
		if !used {
			out = append(out, a)
		}
	}
	return out
}

// linkFound connects add and disconnects drop, outside every lock of the
// discovery table.
func (b *Bus) linkFound(add, drop []string) {
	for _, a := range drop {
		b.Disconnect(a)
	}
	for _, a := range add {
		if err := b.Connect(a); err != nil && !errors.Is(err, ErrClosed) {
			b.log.Warn("discovery: cannot link a found node", "addr", a, "err", err)
		}
	}
}

// addrTiers groups the addresses of n this bus can dial by scheme,
// nearest first, leaving out same-host schemes when n is on another host.
func (b *Bus) addrTiers(n NodeInfo, host string) [][]string {
	byRank := map[int][]string{}
	for _, a := range n.Addrs {
		s, err := b.lk.schemeOf(a)
		if err != nil {
			continue
		}
		if (s == "shm" || s == "unix") && n.Host != "" && n.Host != host {
			continue
		}
		if r := schemeRank(s); !slices.Contains(byRank[r], a) {
			byRank[r] = append(byRank[r], a)
		}
	}
	var tiers [][]string
	for _, r := range slices.Sorted(maps.Keys(byRank)) {
		tiers = append(tiers, byRank[r])
	}
	return tiers
}

// linkedNear reports whether a link to node is up whose scheme is as near
// as the nearest of tiers. It asks the link table, not the peers' links: a
// link the transport reported up is shown ready (Links) a moment before it
// joins its peer's links, and a report in that moment must not dial.
func (b *Bus) linkedNear(node NodeID, tiers [][]string) bool {
	if node.IsZero() || len(tiers) == 0 {
		return false
	}
	s, err := b.lk.schemeOf(tiers[0][0])
	if err != nil {
		return false
	}
	t := &b.lk
	t.mu.Lock()
	defer t.mu.Unlock()
	for l, ll := range t.live {
		if l.Peer() == node && ll.nonce == nil && !ll.retiring && schemeRank(l.Scheme()) <= schemeRank(s) {
			return true
		}
	}
	return false
}

// dialFailed hears from a keeper that addr failed to dial attempts times in
// a row, or was refused: a found node whose nearest linked addresses fail
// so gets its next-nearest linked as well (a shm address of another user's
// process, a Unix socket in a namespace of its own). The near ones stay
// kept: the bus prefers them again once they link.
func (b *Bus) dialFailed(addr string, attempts int, refused bool) {
	if attempts < fallbackAfter && !refused {
		return
	}
	d := &b.disc
	d.apply.Lock()
	defer d.apply.Unlock()
	d.mu.Lock()
	var add []string
	for _, f := range d.nodes {
		if f.tier+1 < len(f.tiers) && slices.Contains(f.tiers[f.tier], addr) {
			f.tier++
			f.linked = append(f.linked, f.tiers[f.tier]...)
			add = append(add, f.tiers[f.tier]...)
		}
	}
	d.mu.Unlock()
	if len(add) > 0 {
		b.log.Info("discovery: a found node's nearest address fails; linking the next", "addr", addr, "attempts", attempts, "refused", refused, "next", add)
		b.linkFound(add, nil)
	}
}

// arm makes the expiry timer fire by t; d.mu must be held. A refresh
// only moves a node's expiry later, so the timer is reset only when t is
// earlier than it is set for; when it fires, expireFound sets it for the
// earliest expiry left.
func (d *discoveryTable) arm(b *Bus, t time.Time) {
	switch {
	case d.timer == nil:
		d.timer = time.AfterFunc(time.Until(t), b.expireFound)
	case d.next.IsZero() || t.Before(d.next):
		d.timer.Reset(time.Until(t))
	default:
		return
	}
	d.next = t
}

// expireFound drops the nodes whose TTL ran out and rearms the timer.
func (b *Bus) expireFound() {
	d := &b.disc
	d.apply.Lock()
	defer d.apply.Unlock()
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return
	}
	now := time.Now()
	var gone []*foundNode
	var next time.Time
	for k, f := range d.nodes {
		switch {
		case f.expires.IsZero():
		case !f.expires.After(now):
			delete(d.nodes, k)
			gone = append(gone, f)
			b.log.Info("discovery: node expired", "node", f.info.ID.Short(), "addrs", f.info.Addrs)
		case next.IsZero() || f.expires.Before(next):
			next = f.expires
		}
	}
	drop := d.forget(gone)
	d.next = next
	if !next.IsZero() {
		d.timer.Reset(time.Until(next))
	}
	d.mu.Unlock()
	b.linkFound(nil, drop)
}

// knows reports whether discovery names a node hosting name.
func (b *Bus) knows(name string) bool {
	d := &b.disc
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.known[name] > 0
}

// Self implements Discovered.
func (b *Bus) Self() NodeInfo {
	n := NodeInfo{ID: b.id, Host: HostID(), Addrs: b.listenAddrs()}
	b.names.Range(func(k, v any) bool {
		for _, in := range v.(*service).view.Load().inst {
			if in.proc != nil {
				n.Names = append(n.Names, k.(string))
				break
			}
		}
		return true
	})
	slices.Sort(n.Names)
	return n
}

// Changed implements Discovered.
func (b *Bus) Changed() <-chan struct{} {
	d := &b.disc
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.changed == nil {
		d.changed = make(chan struct{})
	}
	return d.changed
}

// selfChanged wakes whoever waits on Changed.
func (b *Bus) selfChanged() {
	d := &b.disc
	d.mu.Lock()
	if d.changed != nil {
		close(d.changed)
		d.changed = nil
	}
	d.mu.Unlock()
}

// listenAddrs lists the addresses this node's transports listen on.
func (b *Bus) listenAddrs() []string {
	var out []string
	for _, t := range b.transports {
		if l, ok := t.(Listener); ok {
			out = append(out, l.Addrs()...)
		}
	}
	return out
}

// targetWait is target for a name that discovery knows before its node is
// linked: it waits, bounded by ctx (or the send timeout when ctx has no
// deadline), for an instance to be linked.
func (b *Bus) targetWait(ctx context.Context, to any, attempt int, avoid *instance) (placed, error) {
	pl, err := b.target(ctx, to, attempt, avoid)
	if err == nil || !errors.Is(err, ErrNoRoute) {
		return pl, err
	}
	name, ok := to.(string)
	if rf, isRef := to.(Ref); isRef && rf.ID == 0 {
		name, ok = rf.Name, true
	}
	if !ok || !b.knows(name) {
		return pl, err
	}
	if _, has := ctx.Deadline(); !has {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, b.sendTimeout)
		defer cancel()
	}
	if werr := b.WaitFor(ctx, name); werr != nil {
		return placed{}, fmt.Errorf("%w: %q is known through discovery but no instance was linked: %w", ErrNoRoute, name, werr)
	}
	return b.target(ctx, to, attempt, avoid)
}

var hostID = sync.OnceValue(func() string {
	var id string
	for _, f := range []string{"/proc/sys/kernel/random/boot_id", "/etc/machine-id"} {
		if data, err := os.ReadFile(f); err == nil {
			if s := strings.TrimSpace(string(data)); s != "" && len(s) <= 64 {
				id = s
				break
			}
		}
	}
	h, _ := os.Hostname()
	return id + "/" + h
})

// HostID identifies this machine as far as shared memory and Unix sockets
// reach: its boot id (else its machine id) and its host name. Processes of
// one host share it; containers on one kernel with host names of their
// own, which do not share socket paths, do not.
func HostID() string { return hostID() }
