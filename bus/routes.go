package bus

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync/atomic"
)

// service is every known instance of one name: local processes and actors on
// peers. The slice is replaced, never changed in place (under Bus.routesMu),
// so placement reads it without a lock.
type service struct {
	inst atomic.Pointer[[]*instance]
}

// instance is one place a name can be sent to.
type instance struct {
	ref  Ref
	proc *process // local; nil for a remote instance
	peer *peer    // remote
}

func (i *instance) load() int64 {
	if i.proc != nil {
		return i.proc.inflight.Load()
	}
	return i.peer.inflight.Load()
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

// place picks the instance of name a message goes to: fewest asks in flight,
// then nearest, then at random.
func (b *Bus) place(name string) (*process, Ref, error) {
	v, ok := b.names.Load(name)
	if !ok {
		return nil, Ref{}, fmt.Errorf("%w: %q", ErrNoRoute, name)
	}
	list := *v.(*service).inst.Load()
	var best *instance
	switch len(list) {
	case 0:
		return nil, Ref{}, fmt.Errorf("%w: %q", ErrNoRoute, name)
	case 1:
		best = list[0]
	default:
		start := rand.IntN(len(list))
		var bestLoad int64
		var bestLoc Locality
		for k := range list {
			in := list[(start+k)%len(list)]
			l, loc := in.load(), b.locality(in)
			if best == nil || l < bestLoad || (l == bestLoad && loc < bestLoc) {
				best, bestLoad, bestLoc = in, l, loc
			}
		}
	}
	if best.proc != nil {
		return best.proc, Ref{}, nil
	}
	return nil, best.ref, nil
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
	for _, in := range *v.(*service).inst.Load() {
		if in.proc != nil && (best == nil || in.proc.inflight.Load() < best.inflight.Load()) {
			best = in.proc
		}
	}
	return best
}

func (b *Bus) serviceFor(name string) *service {
	v, ok := b.names.Load(name)
	if !ok {
		s := &service{}
		s.inst.Store(&[]*instance{})
		v, _ = b.names.LoadOrStore(name, s)
	}
	return v.(*service)
}

// addInstance and removeInstances must be called with routesMu held.
func (b *Bus) addInstance(in *instance) {
	s := b.serviceFor(in.ref.Name)
	old := *s.inst.Load()
	list := make([]*instance, len(old), len(old)+1)
	copy(list, old)
	list = append(list, in)
	s.inst.Store(&list)
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
		if _, _, err := b.place(name); err == nil {
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

func (b *Bus) removeInstances(name string, drop func(*instance) bool) {
	v, ok := b.names.Load(name)
	if !ok {
		return
	}
	s := v.(*service)
	old := *s.inst.Load()
	list := make([]*instance, 0, len(old))
	for _, in := range old {
		if !drop(in) {
			list = append(list, in)
		}
	}
	if len(list) == len(old) {
		return
	}
	s.inst.Store(&list)
	if len(list) == 0 {
		b.names.Delete(name)
	}
}

// addName makes a local process reachable by its name, here and on peers.
func (b *Bus) addName(p *process) {
	b.namesMu.Lock()
	defer b.namesMu.Unlock()
	b.routesMu.Lock()
	b.addInstance(&instance{ref: p.ref, proc: p})
	b.routesMu.Unlock()
	b.selfChanged()
	b.tellPeers(func(c *control) { c.name(nameEntry{p.ref.Name, p.ref.ID}, true) })
}

func (b *Bus) removeName(p *process) {
	b.namesMu.Lock()
	defer b.namesMu.Unlock()
	b.routesMu.Lock()
	b.removeInstances(p.ref.Name, func(in *instance) bool { return in.proc == p })
	b.routesMu.Unlock()
	b.selfChanged()
	b.tellPeers(func(c *control) { c.name(nameEntry{p.ref.Name, p.ref.ID}, false) })
}

// Names returns the names with at least one instance, local or remote.
func (b *Bus) Names() []string {
	var names []string
	b.names.Range(func(k, v any) bool {
		if len(*v.(*service).inst.Load()) > 0 {
			names = append(names, k.(string))
		}
		return true
	})
	return names
}

// Instances returns the Refs of every known instance of name.
func (b *Bus) Instances(name string) []Ref {
	v, ok := b.names.Load(name)
	if !ok {
		return nil
	}
	list := *v.(*service).inst.Load()
	refs := make([]Ref, len(list))
	for i, in := range list {
		refs[i] = in.ref
	}
	return refs
}
