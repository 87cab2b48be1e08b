package bus

import (
	"context"
	"errors"
	"time"

	"github.com/xbus-dev/xbus/bus/placement"
)

// placingConfig is what New is told of placement.
type placingConfig struct {
	strategy   placement.Strategy
	perName    map[string]placement.Strategy
	health     placement.HealthPolicy
	retryRate  float64
	retryBurst int
}

// WithPlacement sets how a message sent by name chooses among the name's
// instances (see package placement, and WithPlacementFor for one name).
// Zero: placement.LeastConnections{}.
func WithPlacement(s placement.Strategy) Option {
	return func(c *config) { c.placing.strategy = s }
}

// WithPlacementFor sets the strategy of one name, over WithPlacement's.
// A strategy that keeps state per set of instances (ConsistentHash,
// WeightedRoundRobin) may be given to several names.
func WithPlacementFor(name string, s placement.Strategy) Option {
	return func(c *config) {
		if c.placing.perName == nil {
			c.placing.perName = map[string]placement.Strategy{}
		}
		c.placing.perName[name] = s
	}
}

// WithHealth sets when an instance is taken out of placement after
// failures and for how long. Zero: placement.HealthPolicy{} (5 failures in
// a row, a 1 s cool-down doubling up to 30 s).
func WithHealth(p placement.HealthPolicy) Option {
	return func(c *config) { c.placing.health = p }
}

// WithRetryBudget bounds how many failed asks the bus places again on
// another instance (see Ask): perSecond in the long run, burst at once.
// Zero: placement.DefaultRetryRate and DefaultRetryBurst; a negative rate
// turns re-placement off.
func WithRetryBudget(perSecond float64, burst int) Option {
	return func(c *config) { c.placing.retryRate, c.placing.retryBurst = perSecond, burst }
}

func (b *Bus) strategyFor(name string) placement.Strategy {
	if s, ok := b.placeFor[name]; ok && s != nil {
		return s
	}
	if b.placement != nil {
		return b.placement
	}
	return placement.LeastConnections{}
}

// callOptions are the options of one call, carried by its context.
type callOptions struct {
	key          string
	idempotent   bool
	headers      []Header
	codec        Codec     // WithCodec; nil: the link's
	replyHeaders *[]Header // where an Ask's reply headers go (WithReplyHeaders)
}

type callOptionsKey struct{}

func optionsOf(ctx context.Context) *callOptions {
	o, _ := ctx.Value(callOptionsKey{}).(*callOptions)
	return o
}

func withOptions(ctx context.Context, f func(*callOptions)) context.Context {
	o := callOptions{}
	if old := optionsOf(ctx); old != nil {
		o = *old
	}
	f(&o)
	return context.WithValue(ctx, callOptionsKey{}, &o)
}

// WithKey returns a context whose Ask or Send by name carries key for a
// name placed by placement.ConsistentHash: calls with one key go to one
// instance while the instances stay the same. Other strategies may read it
// too (placement.Call.Key).
func WithKey(ctx context.Context, key string) context.Context {
	return withOptions(ctx, func(o *callOptions) { o.key = key })
}

// WithIdempotent returns a context whose Ask by name may be sent again to
// another instance when the link to its instance dies after the ask was
// written: the caller says that running it twice does no harm. Without
// it, such an ask fails with ErrPeerGone, as it may have run.
func WithIdempotent(ctx context.Context) context.Context {
	return withOptions(ctx, func(o *callOptions) { o.idempotent = true })
}

// IsIdempotent reports whether ctx was made with WithIdempotent: for a
// caller that places its asks again itself (Place, AskPlaced).
func IsIdempotent(ctx context.Context) bool {
	o := optionsOf(ctx)
	return o != nil && o.idempotent
}

// WithHeaders returns a context whose Ask, or Tell and Send to another
// node, carries hs after the headers ctx already carries: on the envelope
// across a link, and beside the message in process. The receiving actor
// reads them with Context.Headers. A Tell in process carries none.
func WithHeaders(ctx context.Context, hs ...Header) context.Context {
	if len(hs) == 0 {
		return ctx
	}
	return withOptions(ctx, func(o *callOptions) {
		o.headers = append(o.headers[:len(o.headers):len(o.headers)], hs...)
	})
}

// WithReplyHeaders returns a context whose Ask stores the headers its reply
// carries (Context.SetReplyHeaders) in *dst, once it returns; *dst is left
// as it was when the reply carries none. The ask's actor may answer on
// this node or another; an Ask whose ctx ends first stores nothing.
func WithReplyHeaders(ctx context.Context, dst *[]Header) context.Context {
	return withOptions(ctx, func(o *callOptions) { o.replyHeaders = dst })
}

// takeReplyHeaders stores a reply's headers where ctx asks (WithReplyHeaders).
func takeReplyHeaders(ctx context.Context, hs []Header) {
	if o := optionsOf(ctx); o != nil && o.replyHeaders != nil {
		*o.replyHeaders = hs
	}
}

// headersOf returns the headers ctx carries (WithHeaders), or nil.
func headersOf(ctx context.Context) []Header {
	if o := optionsOf(ctx); o != nil {
		return o.headers
	}
	return nil
}

// wireOptionsOf returns the headers (WithHeaders) and the codec
// (WithCodec) ctx carries, with one lookup.
func wireOptionsOf(ctx context.Context) ([]Header, Codec) {
	if o := optionsOf(ctx); o != nil {
		return o.headers, o.codec
	}
	return nil, nil
}

// maxReplacements bounds how many times one Ask is placed again.
const maxReplacements = 2

// undelivered is the error of an ask that provably never reached its
// actor, so that it may go to another instance: a refusal before delivery
// (no such instance there any more, a full mailbox, a stopped actor), or an
// ask a link did not take or handed back unsent. Only the bus makes one,
// where it refuses; across a link a refusal says so in a header
// (neverRanKey). The error an actor answers with is never one, whatever it
// wraps: a handler that passes on its own call's refusal did run.
type undelivered struct{ err error }

func (e *undelivered) Error() string { return e.err.Error() + " (never delivered)" }
func (e *undelivered) Unwrap() error { return e.err }

// neverRan marks err, the failure of an ask, as a proof that it never ran.
func neverRan(err error) error {
	if _, ok := err.(*undelivered); ok || err == nil {
		return err
	}
	return &undelivered{err}
}

// neverDelivered reports whether err, as an ask returned it, proves the ask
// never ran. Only the error itself counts, not one it wraps: an actor's
// error that wraps the refusal of a call it made itself proves nothing of
// the ask it was answering.
func neverDelivered(err error) bool {
	_, ok := err.(*undelivered)
	return ok
}

// ranError is what an actor answers an ask with: err, unless it is a proof
// of a call of its own that never ran, which says nothing of this ask.
func ranError(err error) error {
	if u, ok := err.(*undelivered); ok {
		return u.err
	}
	return err
}

// neverRanKey is the header of an error answer that refuses an ask before
// it ran (see undelivered); the asker's node takes it off.
const neverRanKey = "xbus-nd"

// mayReplace reports whether an ask placed on pl that failed with err may
// go to another instance: it was placed by name, it never ran or its caller
// marked it idempotent and its peer went, it has not been placed too
// often, and its caller still waits. (Ask then checks that there is
// another instance and that the retry budget allows it.)
func (b *Bus) mayReplace(ctx context.Context, pl placed, err error, attempt int) bool {
	if err == nil || pl.in == nil || attempt >= maxReplacements || b.closing.Load() {
		return false
	}
	if !neverDelivered(err) {
		if o := optionsOf(ctx); o == nil || !o.idempotent || !errors.Is(err, ErrPeerGone) {
			return false
		}
	}
	return ctx.Err() == nil
}

// observe feeds an instance's health with the outcome of one ask to it:
// a failure of the instance or of the way to it counts against it; a reply,
// even an application's error, proves it well.
func (b *Bus) observe(in *instance, err error) {
	if errors.Is(err, ErrCanceled) || errors.Is(err, ErrClosed) {
		return // the caller's doing, not the instance's
	}
	if err == nil || !instanceFailure(err) {
		in.stats.Health.Success()
		return
	}
	in.stats.Health.Failure(time.Now(), b.health)
}

func instanceFailure(err error) bool {
	return errors.Is(err, ErrPeerGone) || errors.Is(err, ErrDeadline) || errors.Is(err, ErrMailboxFull) ||
		errors.Is(err, ErrActorFailed) || errors.Is(err, ErrActorStopped) || errors.Is(err, ErrNoRoute)
}

// unsent notes that l handed back the ask corr unsent, before its end:
// LinkDown then fails it as never delivered, so it may be placed again
// (Host.Undelivered hands back only what the peer will never be handed).
func (b *Bus) unsent(l Link, corr uint64, _ error) {
	if c, seq, ok := b.answer(l, corr); ok {
		c.unsent.Store(seq)
	}
}

// readsSeq reports whether strategy s may read placement.Call.Seq: every
// strategy but the built-in ones known not to, whose calls then skip a
// counter every sender of the name would write.
func readsSeq(s placement.Strategy) bool {
	switch s.(type) {
	case placement.LeastConnections, placement.Random, placement.Latency, *placement.ConsistentHash:
		return false
	}
	return true
}

// readsRTT reports whether strategy s may read round trips
// (placement.Stats.RTT): every strategy but the built-in ones known not
// to, whose asks then skip two readings of the clock.
func readsRTT(s placement.Strategy) bool {
	switch s.(type) {
	case placement.LeastConnections, placement.RoundRobin, placement.Random, *placement.WeightedRoundRobin, *placement.ConsistentHash:
		return false
	}
	return true
}
