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
	// direct is set while p's mailbox is claimed (mailbox.Claim), p being
	// an actor WithInline: its tells and asks are invoked here, on the
	// link's reader, as they come, none queued in ds.
	direct bool
	rec    *lentRec // lends a tell invoked directly its body in place (lendInPlace)
	memo   tellMemo
}

// tellMemo is what DeliverBatch worked out for the last tell it took. The
// tells of a stream from one sender to one actor carry the same header
// (kind, addresses, codec, type; no correlation id, deadline or headers),
// and a tell whose decoded header is the same goes to the same process
// with the same record and decodes the same way: it skips finding its
// actor, checking its sender, the record's table and the lookups of its
// codec and type. A memo lasts one batch and names a process by id
// (which no other process ever has), never a name, which may be placed
// on another instance for each message.
type tellMemo struct {
	env *Envelope // the tell it was worked out for; nil: none
	p   *process
	in  *inbound // the shared record of its sender and target
	c   Codec
	bd  BytesDecoder // not nil: its body is a []byte that p borrows, read by bd
}

// sameTell reports whether env is a tell with the header of h, a tell with
// no correlation id, deadline or headers.
func sameTell(env, h *Envelope) bool {
	return env.Corr == 0 && env.Timeout == 0 && len(env.Headers) == 0 && SameHeader(h, env)
}

// DeliverBatch implements BatchHost: envs arrived on l, in this order. It
// handles each as Deliver would, except that consecutive tells and asks to
// one local actor go into its mailbox with one claim of room and one
// schedule (mailbox.SendBatch) instead of one each, and the tells and asks
// to an idle actor WithInline run here, one after the other, under one
// claim of its mailbox. Anything else (a reply, a system message, a refusal, a link
// whose envelopes are held) first queues the run collected so far, so the
// order is Deliver's.
func (b *Bus) DeliverBatch(l Link, envs []Envelope) {
	var run deliveryRun
	for i := range envs {
		env := &envs[i]
		if (env.Kind != KindTell && env.Kind != KindAsk) || b.lk.held.Load() != 0 || b.lk.holding.Load() != 0 {
			b.flushRun(&run)
			run.memo = tellMemo{}
			b.Deliver(l, env)
			env.Msg, env.Body = nil, nil
			continue
		}
		b.take(l, env, &run)
	}
	b.flushRun(&run)
	if run.slab != nil {
		b.lent.leave(run.slab)
	}
	if run.rec != nil {
		b.lent.putRec(run.rec)
	}
}

// take handles env, a tell or an ask from l, as Deliver would, adding it
// to run or, run being direct, invoking it.
func (b *Bus) take(l Link, env *Envelope, run *deliveryRun) {
	m := &run.memo
	again := m.env != nil && sameTell(env, m.env)
	var (
		p   *process
		c   Codec
		bd  BytesDecoder
		err error
	)
	if again {
		p, c, bd = m.p, m.c, m.bd
	} else {
		p = b.localTarget(env)
		c, bd, err = b.tellCodec(l, env, p)
	}
	var lend []byte // a body to lend, in the transport's buffer
	if err == nil {
		if bd != nil {
			if body, ok := bd.BytesOf(env.Body); ok && len(body) <= lentMax {
				lend = body
			}
		}
		if lend == nil {
			err = b.types.DecodeBody(c, env)
		}
	}
	env.Body = nil // it aliased the transport's buffer (as lend does, until this call returns)
	if err != nil {
		b.flushRun(run)
		b.undecodable(l, env, err)
		return
	}
	if !again && b.forged(l, env) {
		b.flushRun(run)
		env.Msg = nil
		return
	}
	if p == nil {
		b.flushRun(run)
		b.refuseMessage(l, env, errNoRouteTo(env.To))
		env.Msg = nil
		return
	}
	if p != run.p || run.n == runMax || run.direct && !p.mb.Open() {
		b.flushRun(run)
		run.p = p
		run.direct = p.mb.Inline() && p.mb.Claim()
	}
	in := m.in
	if !again {
		in = b.inboundOf(l, env, p)
	}
	var d delivery
	switch {
	case lend == nil:
		d = linkOf(env.Msg, in)
	case run.direct:
		d = lentOf(run.lendInPlace(b, lend), in)
	default:
		d = lentOf(b.lent.lend(&run.slab, lend), in)
	}
	env.Msg = nil
	if !again && in.shared && env.To.ID != 0 {
		*m = tellMemo{env: env, p: p, in: in, c: c, bd: bd}
	}
	if run.direct {
		p.Invoke(d)
		return
	}
	run.ds[run.n] = d
	run.n++
}

// tellCodec is the codec env's body decodes with, and for a []byte tell
// to an actor that borrows bytes, the codec's BytesDecoder.
func (b *Bus) tellCodec(l Link, env *Envelope, p *process) (Codec, BytesDecoder, error) {
	c, err := b.codecFor(l, env.Codec)
	if err != nil || p == nil || !p.opts.borrow || env.Kind != KindTell {
		return c, nil, err
	}
	if bd, ok := c.(BytesDecoder); ok {
		if rt, err := b.types.cachedTypeOf(env.Type); err == nil && rt == bytesType {
			return c, bd, nil
		}
	}
	return c, nil, nil
}

// lendInPlace returns body, which stays valid until DeliverBatch returns,
// as a lent body for a Receive that runs before then: no copy, and nothing
// to give back. One record serves the whole run, a tell at a time.
func (run *deliveryRun) lendInPlace(b *Bus, body []byte) any {
	if run.rec == nil {
		run.rec = b.lent.getRec()
	}
	run.rec.b = body
	return run.rec.value()
}

// flushRun queues the run on its process's mailbox, never waiting (see
// deliverMessage): each message the mailbox refuses is refused alone, and
// the messages after it are offered again, as Deliver would offer them. A
// direct run lets go of the mailbox instead.
func (b *Bus) flushRun(run *deliveryRun) {
	if run.direct {
		run.direct = false
		run.p.mb.Release()
		return
	}
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
