package bus

import "context"

// runMax bounds a run of deliveries queued on one mailbox with one call.
const runMax = 64

// deliveryRun is the run of tells and asks from one link to one local
// process that DeliverBatch collects before it queues them together. It
// lives on DeliverBatch's stack.
type deliveryRun struct {
	p    *process
	n    int
	ds   [runMax]delivery
	slab *lentSlab // of the bodies lent in this batch (see lend)
}

// DeliverBatch implements BatchHost: envs arrived on l, in this order. It
// handles each as Deliver would, except that consecutive tells and asks to
// one local actor go into its mailbox with one claim of room and one
// schedule (mailbox.SendBatch) instead of one each. Anything else (a reply,
// a system message, a refusal, a link whose envelopes are held) first
// queues the run collected so far, so the order is Deliver's.
func (b *Bus) DeliverBatch(l Link, envs []Envelope) {
	var run deliveryRun
	for i := range envs {
		env := &envs[i]
		if (env.Kind != KindTell && env.Kind != KindAsk) || b.lk.held.Load() != 0 || b.lk.holding.Load() != 0 {
			b.flushRun(&run)
			b.Deliver(l, env)
			env.Msg, env.Body = nil, nil
			continue
		}
		p := b.localTarget(env)
		lent, err := b.decodeTell(l, env, p, &run.slab)
		env.Body = nil // it aliased the transport's buffer
		if err != nil {
			b.flushRun(&run)
			b.undecodable(l, env, err)
			continue
		}
		if b.forged(l, env) {
			b.flushRun(&run)
			env.Msg = nil
			continue
		}
		if p == nil {
			b.flushRun(&run)
			b.refuseMessage(l, env, errNoRouteTo(env.To))
			env.Msg = nil
			continue
		}
		if p != run.p || run.n == runMax {
			b.flushRun(&run)
			run.p = p
		}
		if lent {
			run.ds[run.n] = lentOf(env.Msg, b.inboundOf(l, env, p))
		} else {
			run.ds[run.n] = linkOf(env.Msg, b.inboundOf(l, env, p))
		}
		run.n++
		env.Msg = nil
	}
	b.flushRun(&run)
	if run.slab != nil {
		b.lent.leave(run.slab)
	}
}

// flushRun queues the run on its process's mailbox, never waiting (see
// deliverMessage): each message the mailbox refuses is refused alone, and
// the messages after it are offered again, as Deliver would offer them.
func (b *Bus) flushRun(run *deliveryRun) {
	if run.n == 0 {
		return
	}
	all := run.ds[:run.n]
	run.n = 0
	ds := all
	pol := linkPolicy(run.p)
	for len(ds) > 0 {
		n, err := run.p.mb.SendBatch(context.Background(), ds, pol)
		if err == nil {
			break
		}
		b.unqueued(run.p, ds[n], mailboxError(err))
		ds = ds[n+1:]
	}
	clear(all) // the messages are the mailbox's now
}
