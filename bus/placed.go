package bus

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/xbus-dev/xbus/bus/placement"
)

// Placement is one instance of a name chosen for an ask (Place), to be
// sent with AskPlaced: for a caller that decides itself what a failed ask
// does next (rpc's fail modes: another instance, the same one again, a
// hedged second ask), where Ask would place it again by its own rule.
type Placement struct{ pl placed }

// Ref is the instance chosen.
func (p Placement) Ref() Ref {
	if p.pl.p != nil {
		return p.pl.p.ref
	}
	return p.pl.remote
}

// Place chooses an instance of name as Ask by name does (the name's
// strategy, skipping those health keeps out, waiting for one that discovery
// reported), but never one of avoid: when every instance is avoided it
// fails with an error wrapping ErrNoRoute.
func (b *Bus) Place(ctx context.Context, name string, avoid ...Ref) (Placement, error) {
	if b.closing.Load() {
		return Placement{}, ErrClosed
	}
	pl, err := b.targetWait(ctx, name, len(avoid), nil)
	if err != nil {
		return Placement{}, err
	}
	if len(avoid) > 0 && slices.Contains(avoid, pl.in.ref) {
		in := b.otherInstance(name, pl.in, avoid)
		if in == nil {
			return Placement{}, fmt.Errorf("%w: every instance of %q was tried", ErrNoRoute, name)
		}
		pl = placed{p: in.proc, in: in}
		if in.proc == nil {
			pl.remote = in.ref
		}
	}
	return Placement{pl}, nil
}

// otherInstance returns the instance of name after from (in the order the
// service lists them) that is not in avoid, one that health keeps in
// first; nil if there is none.
func (b *Bus) otherInstance(name string, from *instance, avoid []Ref) *instance {
	v, ok := b.names.Load(name)
	if !ok {
		return nil
	}
	list := v.(*service).view.Load().inst
	start := max(slices.Index(list, from), 0)
	now := time.Now()
	var out *instance // not avoided, but kept out by health
	for k := 1; k <= len(list); k++ {
		in := list[(start+k)%len(list)]
		if slices.Contains(avoid, in.ref) {
			continue
		}
		if in.stats.Health.In(now) {
			return in
		}
		if out == nil {
			out = in
		}
	}
	return out
}

// AskPlaced sends msg to the instance p and waits for the reply, as Ask
// does, but never places it again: its caller decides what a failure does
// next. The same Placement may be asked again.
func (b *Bus) AskPlaced(ctx context.Context, p Placement, msg any) (any, error) {
	if b.closing.Load() {
		return nil, ErrClosed
	}
	if p.pl.p == nil && p.pl.remote.IsZero() {
		return nil, fmt.Errorf("%w: an empty Placement", ErrNoRoute)
	}
	return b.askOnce(ctx, p.pl, msg)
}

// RetryBudget is the budget every re-placement of this bus's asks spends
// (WithRetryBudget): a caller that retries on its own, as rpc's fail modes
// do, spends it too, so that retries cannot storm whoever makes them.
func (b *Bus) RetryBudget() *placement.Budget { return &b.retries }

// NeverDelivered reports whether err, the error of an ask as Ask or
// AskPlaced returned it, proves that the ask never reached its actor, so
// that sending it to another instance cannot run it twice: a refusal by
// the bus before delivery (no such instance there, a full mailbox, a
// stopped actor), or an ask its link did not take or handed back unsent.
// An actor's answer never does, whatever error it wraps.
func NeverDelivered(err error) bool { return neverDelivered(err) }
