package bus

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/xbus-dev/xbus/bus/placement"
)

// service is every known instance of one name: local processes and actors
// on peers, and the strategy that places its calls. The view is replaced,
// never changed in place (under Bus.routesMu, or by a refresh that loses to
// any change), so placement reads it without a lock.
type service struct {
	name     string
	strategy placement.Strategy
	counted  bool          // the strategy may read Call.Seq: count calls in seq
	seq      atomic.Uint64 // calls placed: a round robin's position
	view     atomic.Pointer[routeView]
}

// routeView is a service's instances as placement sees them: cands[i]
// describes inst[i], with the localities of linkGen.
type routeView struct {
	inst    []*instance
	cands   []placement.Instance
	linkGen uint64
}

// instance is one place a name can be sent to.
type instance struct {
	ref    Ref
	proc   *process         // local; nil for a remote instance
	peer   *peer            // remote
	stats  *placement.Stats // the process's own for a local instance
	timed  bool             // its name's strategy may read round trips: asks to it are timed
	weight int              // WithWeight, as the instance's node announced it
}

// locality reads a remote instance's nearest link from the snapshot of
// peers, as the peer's own list of links changes under Bus.peersMu.
func (b *Bus) locality(i *instance) Locality {
	if i.proc != nil {
		return SameProcess
	}
	if _, l := b.linkTo(i.peer.id); l != nil {
		return l.Locality()
	}
	return Remote
}

// newView describes list for placement with the localities of now.
func (b *Bus) newView(list []*instance) *routeView {
	v := &routeView{inst: list, cands: make([]placement.Instance, len(list)), linkGen: b.linkGen.Load()}
	for i, in := range list {
		v.cands[i] = placement.Instance{
			ID:       placement.HashID(in.ref.Node, in.ref.ID),
			Locality: placement.Locality(b.locality(in)),
			Weight:   in.weight,
			Stats:    in.stats,
		}
	}
	return v
}

// current returns s's view, first describing it again if a link came or
// went since it was made (a peer's nearest link decides its locality).
func (b *Bus) current(s *service) *routeView {
	v := s.view.Load()
	if v.linkGen == b.linkGen.Load() {
		return v
	}
	nv := b.newView(v.inst)
	if s.view.CompareAndSwap(v, nv) {
		return nv
	}
	return s.view.Load() // changed meanwhile, by a change made with the new links
}

var emptyView = &routeView{}

// placed is where a message goes: a local process, or a Ref on a peer. in
// is the instance placement chose, nil for a message sent to a Ref.
type placed struct {
	p      *process
	remote Ref
	in     *instance
}

// place picks the instance of name a message goes to, with the name's
// strategy (least connections unless configured otherwise), skipping
// instances that health keeps out. ctx carries the call's options
// (WithKey); a call placed again (attempt > 0) avoids the instance it
// failed on, when there is another.
func (b *Bus) place(ctx context.Context, name string, attempt int, avoid *instance) (placed, error) {
	in, err := b.placeName(ctx, name, attempt, avoid)
	if err != nil {
		return placed{}, err
	}
	if in.proc != nil {
		return placed{p: in.proc, in: in}, nil
	}
	return placed{remote: in.ref, in: in}, nil
}

// placeName is place's choice: the instance of name a message goes to.
func (b *Bus) placeName(ctx context.Context, name string, attempt int, avoid *instance) (*instance, error) {
	if avoid == nil {
		if in := b.placeQuick(name); in != nil {
			return in, nil
		}
	}
	return b.placeNameSlow(ctx, name, attempt, avoid)
}

// placeQuick is placeName's common case, nil where it does not apply: name
// is the name placed last, and it has one instance or the default strategy
// chooses among several (placement.PickFast).
func (b *Bus) placeQuick(name string) *instance {
	s := b.lastService.Load()
	if s == nil || len(s.name) != len(name) ||
		unsafe.StringData(s.name) != unsafe.StringData(name) && s.name != name { // mostly the same string: no bytes to compare
		return nil
	}
	v := s.view.Load()
	switch {
	case len(v.inst) == 1:
		return v.inst[0]
	case len(v.inst) == 0 || v.linkGen != b.linkGen.Load():
		return nil
	}
	if i, ok := placement.PickFast(s.strategy, v.cands, nil); ok {
		return v.inst[i]
	}
	return nil
}

// placeNameSlow is placeName in every case: a name not placed last, a
// strategy of its own, an instance out, a call placed again.
func (b *Bus) placeNameSlow(ctx context.Context, name string, attempt int, avoid *instance) (*instance, error) {
	s, view := b.lastService.Load(), emptyView
	if s != nil && s.name == name {
		view = s.view.Load()
	}
	if len(view.inst) == 0 { // not the last name placed, or it was emptied: its service may be gone
		v, ok := b.names.Load(name)
		if !ok {
			return nil, fmt.Errorf("%w: %q", ErrNoRoute, name)
		}
		s = v.(*service)
		view = s.view.Load()
		b.lastService.Store(s)
	}
	switch len(view.inst) {
	case 0:
		return nil, fmt.Errorf("%w: %q", ErrNoRoute, name)
	case 1:
		return view.inst[0], nil
	}
	if view.linkGen != b.linkGen.Load() {
		view = b.current(s)
	}
	if i, ok := placement.PickFast(s.strategy, view.cands, nil); ok {
		if view.inst[i] == avoid {
			i = (i + 1) % len(view.inst)
		}
		return view.inst[i], nil
	}
	c := placement.Call{Rand: rand.Uint64(), Attempt: attempt}
	if s.counted {
		c.Seq = s.seq.Add(1) - 1
	}
	if o := optionsOf(ctx); o != nil {
		c.Key = o.key
	}
	i, _ := placement.Pick(s.strategy, view.cands, c, time.Now, b.health)
	if view.inst[i] == avoid {
		i = (i + 1) % len(view.inst)
	}
	return view.inst[i], nil
}

// placeLocal picks among this node's own instances of name only: what a
// message that arrived from a peer may go to, so that nothing is forwarded
// from node to node.
func (b *Bus) placeLocal(name string) *process {
	v, ok := b.names.Load(name)
	if !ok {
		return nil
	}
	var best *process
	for _, in := range v.(*service).view.Load().inst {
		if in.proc != nil && (best == nil || in.proc.stats.InFlight() < best.stats.InFlight()) {
			best = in.proc
		}
	}
	return best
}

func (b *Bus) serviceFor(name string) *service {
	v, ok := b.names.Load(name)
	if !ok {
		st := b.strategyFor(name)
		s := &service{name: name, strategy: st, counted: readsSeq(st)}
		s.view.Store(&routeView{linkGen: b.linkGen.Load()})
		v, _ = b.names.LoadOrStore(name, s)
	}
	return v.(*service)
}

// addInstance and removeInstances must be called with routesMu held.
func (b *Bus) addInstance(in *instance) { b.addInstances([]*instance{in}) }

// addInstances adds ins, instances of one name, with one new view: a peer
// announcing thousands at once costs time in their number, not its square.
// routesMu is held.
func (b *Bus) addInstances(ins []*instance) {
	s := b.serviceFor(ins[0].ref.Name)
	timed := readsRTT(s.strategy)
	old := s.view.Load().inst
	list := make([]*instance, len(old), len(old)+len(ins))
	copy(list, old)
	for _, in := range ins {
		in.timed = timed
		list = append(list, in)
	}
	s.view.Store(b.newView(list))
	if len(old) == 0 {
		b.nameIndex.Insert(ins[0].ref.Name)
	}
	if b.namesAdded != nil {
		close(b.namesAdded) // wake WaitFor
		b.namesAdded = nil
	}
}

// WaitFor blocks until name has at least one instance, here or on a linked
// node, or ctx ends (an error wrapping ErrDeadline or ErrCanceled). A client
// that starts with its services calls it before its first Ask: a peer's
// names arrive just after the link to it comes up.
func (b *Bus) WaitFor(ctx context.Context, name string) error {
	for {
		b.routesMu.Lock()
		if _, err := b.place(context.Background(), name, 0, nil); err == nil {
			b.routesMu.Unlock()
			return nil
		}
		if b.namesAdded == nil {
			b.namesAdded = make(chan struct{})
		}
		added := b.namesAdded
		b.routesMu.Unlock()
		select {
		case <-added:
		case <-ctx.Done():
			return ctxError(ctx.Err())
		case <-b.closed:
			return ErrClosed
		}
	}
}

// dropInstances removes the instances in gone, with one new view per name
// among them. routesMu is held.
func (b *Bus) dropInstances(gone map[*instance]struct{}) {
	names := map[string]bool{}
	for in := range gone {
		names[in.ref.Name] = true
	}
	for name := range names {
		b.removeInstances(name, func(x *instance) bool { _, ok := gone[x]; return ok })
	}
}

func (b *Bus) removeInstances(name string, drop func(*instance) bool) {
	v, ok := b.names.Load(name)
	if !ok {
		return
	}
	s := v.(*service)
	old := s.view.Load().inst
	list := make([]*instance, 0, len(old))
	for _, in := range old {
		if !drop(in) {
			list = append(list, in)
		}
	}
	if len(list) == len(old) {
		return
	}
	s.view.Store(b.newView(list))
	if len(list) == 0 {
		b.nameIndex.Delete(name)
		b.names.Delete(name)
	}
}

// addName makes a local process reachable by its name, here and on peers.
func (b *Bus) addName(p *process) {
	b.namesMu.Lock()
	defer b.namesMu.Unlock()
	b.routesMu.Lock()
	b.addInstance(&instance{ref: p.ref, proc: p, stats: &p.stats, weight: p.opts.weight})
	b.routesMu.Unlock()
	b.selfChanged()
	b.tellPeers(func(c *control) { c.name(p.nameEntry(), true) })
}

func (b *Bus) removeName(p *process) {
	b.namesMu.Lock()
	defer b.namesMu.Unlock()
	b.routesMu.Lock()
	b.removeInstances(p.ref.Name, func(in *instance) bool { return in.proc == p })
	b.routesMu.Unlock()
	b.selfChanged()
	b.tellPeers(func(c *control) { c.name(p.nameEntry(), false) })
}

// Names returns the names with at least one instance, local or remote,
// sorted.
func (b *Bus) Names() []string {
	b.routesMu.Lock()
	defer b.routesMu.Unlock()
	return b.nameIndex.Keys()
}

// Instances returns the Refs of every known instance of name.
func (b *Bus) Instances(name string) []Ref {
	v, ok := b.names.Load(name)
	if !ok {
		return nil
	}
	list := v.(*service).view.Load().inst
	refs := make([]Ref, len(list))
	for i, in := range list {
		refs[i] = in.ref
	}
	return refs
}
