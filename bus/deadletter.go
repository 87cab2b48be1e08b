package bus

import (
	"context"
	"errors"
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
	code := codeOfDeadLetter(reason)
	b.dead.byCode[code].Add(1)
	b.dead.total.Add(1)
	if b.deadSubs.Load() > 0 {
		_ = b.publish(context.Background(), DeadLetterSubject, DeadLetter{Msg: msg, To: to, From: from, Reason: reason}, true)
	}
}

// codeOfDeadLetter classifies by the outermost bus sentinel, so that a
// failure whose cause happens to wrap another sentinel counts as a failure.
func codeOfDeadLetter(err error) Code {
	for e := err; e != nil; {
		for c := CodeClosed; c < codeMax; c++ {
			if e == codeErrors[c] {
				return c
			}
		}
		if m, ok := e.(interface{ Unwrap() []error }); ok {
			if errs := m.Unwrap(); len(errs) > 0 {
				e = errs[0]
				continue
			}
		}
		e = errors.Unwrap(e)
	}
	return CodeOf(err)
}

// DeadLetters returns how many dead letters there have been in all.
func (b *Bus) DeadLetters() uint64 { return b.dead.total.Load() }

// DeadLetterCount returns how many dead letters had a reason matching the
// sentinel reason (ErrActorFailed, ErrActorStopped, ErrMailboxFull for the
// oldest dropped, ErrDeadline, ErrCanceled, ErrNoRoute, ErrSlowConsumer...).
func (b *Bus) DeadLetterCount(reason error) uint64 {
	return b.dead.byCode[CodeOf(reason)].Load()
}
