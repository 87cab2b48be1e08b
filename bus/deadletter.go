package bus

import (
	"context"
	"sync/atomic"
)

// DeadLetterSubject is the subject dead letters are published on, in this
// process only: b.Subscribe(ctx, bus.DeadLetterSubject) observes them.
// Publishing them never blocks: a full dead-letter subscription drops the
// newest and counts it in Subscription.Dropped.
const DeadLetterSubject = "$deadletters"

// DeadLetter is a message the bus could not deliver or process, and why.
type DeadLetter struct {
	Msg    any
	To     Ref
	From   Ref
	Reason error // wraps one of the bus's sentinels
}

// deadLetters counts dead letters by the code of their reason.
type deadLetters struct {
	total  atomic.Uint64
	byCode [codeMax]atomic.Uint64
}

// deadLetter records one dead letter. reason must wrap a bus sentinel.
func (b *Bus) deadLetter(msg any, to, from Ref, reason error) {
	b.dead.byCode[deadBucket(reason)].Add(1)
	b.dead.total.Add(1)
	if b.deadSubs.Load() > 0 {
		b.publish(context.Background(), DeadLetterSubject, DeadLetter{Msg: msg, To: to, From: from, Reason: reason}, deliverDrop, nil)
	}
}

// deadBucket classifies a reason as CodeOf does; codes the bus does not
// know (an application's, a newer peer's) count as CodeApplication.
func deadBucket(reason error) Code {
	if c := CodeOf(reason); c < codeMax {
		return c
	}
	return CodeApplication
}

// DeadLetters returns how many dead letters there have been in all.
func (b *Bus) DeadLetters() uint64 { return b.dead.total.Load() }

// DeadLetterCount returns how many dead letters had a reason matching the
// sentinel reason (ErrActorFailed, ErrActorStopped, ErrMailboxFull for the
// oldest dropped, ErrDeadline, ErrCanceled, ErrNoRoute, ErrSlowConsumer...).
func (b *Bus) DeadLetterCount(reason error) uint64 {
	return b.dead.byCode[deadBucket(reason)].Load()
}

// Undelivered implements Host: env was accepted by l and swallowed by its
// end. A tell or a publish is a dead letter; an ask, and the answer to one,
// fail the ask at LinkDown, and control is the bus's own, so they are not
// counted twice.
func (b *Bus) Undelivered(l Link, env *Envelope, err error) {
	if env.Kind == KindAsk {
		b.unsent(l, env.Corr, err)
		return
	}
	if env.Kind != KindTell && env.Kind != KindPublish {
		return
	}
	b.deadLetter(nil, env.To, env.From, peerGone(err))
}
