package rpc

import (
	"context"
	"errors"
	"time"

	"github.com/xbus-dev/xbus/bus"
	"github.com/xbus-dev/xbus/bus/placement"
)

// FailMode is what a call by name does when it fails for want of its
// instance (rpcx's fail modes). Whatever the mode, a call is sent again
// only while its ctx lasts, only when doing so cannot run it twice unless
// it is marked Idempotent, and only as the retry budget allows
// (RetryBudget).
type FailMode uint8

const (
	// ModeFailover sends a failed call to another instance of its name:
	// the default, with DefaultRetries.
	ModeFailover FailMode = iota
	// ModeFailfast returns the first failure as it is.
	ModeFailfast
	// ModeFailtry sends a failed call to the same instance again.
	ModeFailtry
	// ModeFailbackup hedges: when no reply came within a delay, a second
	// request goes to another instance; the first reply wins and the other
	// request is cancelled.
	ModeFailbackup
)

// DefaultRetries is how many times a call is sent again by default
// (ModeFailover), as many as the bus places a plain Ask again.
const DefaultRetries = 2

// Failfast makes the call return its first failure as it is: not even a
// call that provably never reached its instance goes to another.
func Failfast() CallOption {
	return func(o *callOptions) { o.mode, o.modeSet = ModeFailfast, true }
}

// Failover sends a call that failed for want of its instance to another
// instance of its name, up to retries times (each instance once): when the
// call provably never ran there (bus.NeverDelivered, or the instance
// answered CodeUnavailable, as a server shutting down does), or when it is
// Idempotent and its instance failed (its node went away with it). This is
// what a call by name does by default, with DefaultRetries.
func Failover(retries int) CallOption {
	return func(o *callOptions) { o.mode, o.retries, o.modeSet = ModeFailover, retries, true }
}

// Failtry sends a call that failed as Failover retries to the same
// instance again, up to retries times, after a pause that doubles from
// 1 ms up to 100 ms: for an instance that is busy (a full mailbox) or
// briefly unreachable, rather than gone.
func Failtry(retries int) CallOption {
	return func(o *callOptions) { o.mode, o.retries, o.modeSet = ModeFailtry, retries, true }
}

// Failbackup hedges the call: if no reply came within after, a second
// request goes to another instance of the name; the first reply wins and
// the other request is cancelled (its handler's ctx ends). A first request
// that fails before after as Failover would retry is followed by the second
// at once. The call may run on both instances: hedge only what may run
// twice.
func Failbackup(after time.Duration) CallOption {
	return func(o *callOptions) { o.mode, o.after, o.modeSet = ModeFailbackup, after, true }
}

// Idempotent marks the call as safe to run twice: a fail mode may then send
// it again after its instance failed while it may have run (its node went
// away, its actor failed), not only when it provably never ran. A ctx made
// with bus.WithIdempotent marks its calls alike.
func Idempotent() CallOption {
	return func(o *callOptions) { o.idempotent = true }
}

// RetryBudget makes the call's retries and hedges spend b instead of the
// bus's budget (bus.Bus.RetryBudget, set with bus.WithRetryBudget), which
// every retry of the node spends by default. A retry the budget does not
// allow is not made: the call returns its failure.
func RetryBudget(b *placement.Budget) CallOption {
	return func(o *callOptions) { o.budget = b }
}

// Options bundles opts into one option: a client's defaults, passed to
// each of its calls before the call's own.
//
//	client := rpc.Options(rpc.Failtry(3), rpc.RetryBudget(&budget))
//	sum, err := rpc.Call[Sum](ctx, b, "arith.add", req, client)
func Options(opts ...CallOption) CallOption {
	return func(o *callOptions) {
		for _, f := range opts {
			f(o)
		}
	}
}

// invoke sends req to to as one call under o's fail mode (o may be nil:
// the defaults). A call to a Ref of one instance is sent again only by
// Failtry.
func invoke(ctx context.Context, b *bus.Bus, to any, req any, o *callOptions) (any, error) {
	var name string
	switch t := to.(type) {
	case string:
		name = t
	case bus.Ref:
		if t.ID != 0 {
			return invokeRef(ctx, b, t, req, o)
		}
		name = t.Name
	default:
		return b.Ask(ctx, to, req)
	}
	mode, retries := ModeFailover, DefaultRetries
	if o != nil && o.modeSet {
		mode, retries = o.mode, o.retries
	}
	pl, err := b.Place(ctx, name)
	if err != nil {
		return nil, err
	}
	switch mode {
	case ModeFailfast:
		return b.AskPlaced(ctx, pl, req)
	case ModeFailtry:
		return failtry(ctx, b, func() (any, error) { return b.AskPlaced(ctx, pl, req) }, retries, o)
	case ModeFailbackup:
		return failbackup(ctx, b, name, pl, req, o)
	}
	var tried []bus.Ref
	for attempt := 0; ; attempt++ {
		reply, err := b.AskPlaced(ctx, pl, req)
		if err == nil || attempt >= retries || !retryable(ctx, err, o) || ctx.Err() != nil {
			return reply, err
		}
		tried = append(tried, pl.Ref())
		next, perr := b.Place(ctx, name, tried...)
		if perr != nil || !spend(b, o) {
			return reply, err
		}
		pl = next
	}
}

// invokeRef is a call to one instance: sent again only by Failtry.
func invokeRef(ctx context.Context, b *bus.Bus, to bus.Ref, req any, o *callOptions) (any, error) {
	ask := func() (any, error) { return b.Ask(ctx, to, req) }
	if o == nil || o.mode != ModeFailtry {
		return ask()
	}
	return failtry(ctx, b, ask, o.retries, o)
}

// failtry makes ask, and makes it again while it fails as a retry allows,
// up to retries times, pausing before each.
func failtry(ctx context.Context, b *bus.Bus, ask func() (any, error), retries int, o *callOptions) (any, error) {
	reply, err := ask()
	for attempt := 0; err != nil && attempt < retries && retryable(ctx, err, o) && pause(ctx, attempt) && spend(b, o); attempt++ {
		reply, err = ask()
	}
	return reply, err
}

// outcome is what one request of a hedged call got.
type outcome struct {
	reply any
	err   error
}

func failbackup(ctx context.Context, b *bus.Bus, name string, first bus.Placement, req any, o *callOptions) (any, error) {
	results := make(chan outcome, 2)
	send := func(pl bus.Placement) context.CancelFunc {
		ctx, cancel := context.WithCancel(ctx)
		go func() {
			r, err := b.AskPlaced(ctx, pl, req)
			results <- outcome{r, err}
		}()
		return cancel
	}
	cancel1 := send(first)
	defer cancel1()
	timer := time.NewTimer(o.after)
	defer timer.Stop()
	var firstOut outcome
	select {
	case firstOut = <-results:
		if firstOut.err == nil || !retryable(ctx, firstOut.err, o) {
			return firstOut.reply, firstOut.err
		}
	case <-timer.C:
	case <-ctx.Done():
		// The first request ends with ctx too: its outcome says how.
		out := <-results
		return out.reply, out.err
	}
	pending := 1
	if firstOut.err != nil {
		pending = 0 // it came back failed: only the second is awaited
	}
	second, err := b.Place(ctx, name, first.Ref())
	if err != nil || !spend(b, o) {
		if pending == 0 {
			return firstOut.reply, firstOut.err
		}
		out := <-results
		return out.reply, out.err
	}
	cancel2 := send(second)
	defer cancel2()
	pending++
	last := firstOut
	for ; pending > 0; pending-- {
		out := <-results
		if out.err == nil {
			return out.reply, nil // the deferred cancels end the loser
		}
		last = out
	}
	return last.reply, last.err
}

// retryable reports whether a call that failed with err may be sent again:
// it provably never ran, or it is idempotent and its instance, or the way
// to it, failed.
func retryable(ctx context.Context, err error, o *callOptions) bool {
	if bus.NeverDelivered(err) || errors.Is(err, ErrUnavailable) {
		return true
	}
	if (o == nil || !o.idempotent) && !bus.IsIdempotent(ctx) {
		return false
	}
	return errors.Is(err, bus.ErrPeerGone) || errors.Is(err, bus.ErrActorFailed)
}

// spend takes one retry from the call's budget.
func spend(b *bus.Bus, o *callOptions) bool {
	budget := b.RetryBudget()
	if o != nil && o.budget != nil {
		budget = o.budget
	}
	return budget.Allow(time.Now())
}

// pause waits before the same instance is tried again: 1 ms doubling up
// to 100 ms; false if ctx ends first.
func pause(ctx context.Context, attempt int) bool {
	d := min(time.Millisecond<<min(attempt, 7), 100*time.Millisecond)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
