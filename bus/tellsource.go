package bus

import (
	"encoding/binary"
	"sync/atomic"
)

// A tell from a peer that carries nothing but its sender and its target
// (no headers, no deadline) needs a record of them for the actor's turn
// (Context.Sender, a reply told back), and that record never changes: the
// bus keeps one per sender, target and link in a small table and hands
// every such tell the same one, instead of a pooled record per message,
// which was taken on the reader's processor and put back on the actor's.
const (
	tellSourceBits  = 8
	tellSourceSlots = 1 << tellSourceBits // the table's size
	// tellSourceMisses is how many tells of other senders a slot's record
	// turns away, each taking a pooled record, before one of them takes
	// its place: a few senders that share a slot do not evict each other
	// on every message.
	tellSourceMisses = 16
)

// tellSources is the table: a direct-mapped cache whose records are
// immutable but for their misses, and never recycled.
type tellSources [tellSourceSlots]atomic.Pointer[inbound]

// tellSource returns the shared record of a tell on l from env.From to
// env.To, or nil when env needs a record of its own (headers, a deadline)
// or the slot keeps another sender's.
func (b *Bus) tellSource(l Link, env *Envelope) *inbound {
	if env.Kind != KindTell || env.Timeout != 0 || len(env.Headers) != 0 {
		return nil
	}
	h := env.From.ID ^ binary.LittleEndian.Uint64(env.From.Node[:8]) ^ env.To.ID*0x9e3779b97f4a7c15 ^ uint64(len(env.To.Name))
	h *= 0xbf58476d1ce4e5b9
	s := &b.tellSrc[h>>(64-tellSourceBits)]
	in := s.Load()
	if in != nil {
		if in.link == l && in.env.From == env.From && in.env.To == env.To {
			return in
		}
		if in.misses.Add(1) < tellSourceMisses {
			return nil
		}
	}
	in = &inbound{env: Envelope{Kind: KindTell, From: env.From, To: env.To}, link: l, shared: true}
	s.Store(in)
	return in
}

// forgetTellSources drops the records of l, which is down, so that the
// table does not keep it.
func (b *Bus) forgetTellSources(l Link) {
	for i := range b.tellSrc {
		if in := b.tellSrc[i].Load(); in != nil && in.link == l {
			b.tellSrc[i].CompareAndSwap(in, nil)
		}
	}
}
