package netbus

import (
	"encoding/binary"
	"fmt"
	"time"

	"github.com/xbus-dev/xbus/bus"
)

// Settlement. A connection that ends without both close frames (section 2.5
// of docs/wire.md) leaves its ends unsure: each wrote data frames the other
// never acknowledged, and only the other knows how many it read. Each end
// keeps a record of such a connection: its own final read count, to tell
// the peer, and the tells and publishes in doubt, waiting for the peer's.
// When the two nodes link again, each sends its read counts in a settle
// frame, and the frames in doubt are handed back exactly: those past the
// peer's count. A record waits Config.SettleTimeout; then what it still
// holds in doubt is handed back in doubt (ErrInDoubt), as when the
// transport closes.

// connID names one connection on both of its ends: the link id the dialer
// drew and the connection's index in the link's pool.
type connID struct {
	link uint64
	conn uint8
}

// settleEntry is one entry of a settle frame: on connection id, its sender
// read and handed over read data frames, the last it ever will.
type settleEntry struct {
	id   connID
	read uint64
}

// settleEntryLen is an entry's length on the wire: link id, connection
// index, read count; maxSettleEntries bounds a frame's entries and the
// records kept per peer.
const (
	settleEntryLen   = 8 + 1 + 8
	maxSettleEntries = 64
)

func appendSettle(dst []byte, es []settleEntry) []byte {
	dst = appendFrameHeader(dst, frameSettle, 0, len(es)*settleEntryLen)
	for _, e := range es {
		dst = binary.BigEndian.AppendUint64(dst, e.id.link)
		dst = append(dst, e.id.conn)
		dst = binary.BigEndian.AppendUint64(dst, e.read)
	}
	return dst
}

// parseSettle decodes a settle frame's payload, its length already checked
// (parseFrameHeader).
func parseSettle(p []byte) []settleEntry {
	es := make([]settleEntry, 0, len(p)/settleEntryLen)
	for ; len(p) >= settleEntryLen; p = p[settleEntryLen:] {
		es = append(es, settleEntry{
			id:   connID{binary.BigEndian.Uint64(p), p[8]},
			read: binary.BigEndian.Uint64(p[9:]),
		})
	}
	return es
}

// record is what one connection that ended unsettled keeps. Its fields
// are fixed once kept, but from, which t.settleMu guards.
type record struct {
	id   connID
	read uint64 // data frames this end handed over on it; told to the peer
	// Tells and publishes in doubt: data frames from..to were written and
	// never acknowledged; frame base+i is a tell or publish if bit i of
	// bits is set.
	base, from, to uint64
	bits           []uint64
	l              *link // the connection's link, for Host.Undelivered
	err            error // why the link ended
	timer          *time.Timer
}

// newRecord records c, which ended unsettled: its read count and, if
// from < to, the data frames from..to in doubt. c's reader and writer are
// done.
func newRecord(c *conn, from, to uint64) *record {
	r := &record{id: c.id, read: c.dataIn.Load(), base: from, from: from, to: to, l: c.l, err: c.l.err}
	if to > from {
		r.bits = make([]uint64, (to-from+63)/64)
		for seq := from; seq < to; seq++ {
			if c.ring[(seq/64)%(ackRing/64)]&(1<<(seq%64)) != 0 {
				i := seq - from
				r.bits[i/64] |= 1 << (i % 64)
			}
		}
	}
	return r
}

// take empties r's range in doubt and returns it: with all, whatever it
// holds; otherwise only if the peer's count read lies within it.
// t.settleMu is held.
func (r *record) take(read uint64, all bool) (from, to uint64, ok bool) {
	if r.to <= r.from || !all && (read < r.from || read > r.to) {
		return 0, 0, false
	}
	from, to = r.from, r.to
	r.from = r.to
	return from, to, true
}

// handBack hands the host back each tell or publish among frames from..to
// of r, with reason.
func (r *record) handBack(h bus.Host, from, to uint64, reason error) {
	for seq := from; seq < to; seq++ {
		i := seq - r.base
		if r.bits[i/64]&(1<<(i%64)) != 0 {
			env := bus.Envelope{Kind: bus.KindTell}
			h.Undelivered(r.l, &env, reason)
		}
	}
}

// peerSettle is the settlement state of one peer.
type peerSettle struct {
	records []*record            // oldest first, at most maxSettleEntries
	told    map[connID]toldCount // counts the peer sent for connections not yet ended here
}

type toldCount struct {
	read uint64
	at   time.Time
}

// settleOf returns p's state, creating it. t.settleMu is held.
func (t *Transport) settleOf(p bus.NodeID) *peerSettle {
	ps := t.settle[p]
	if ps == nil {
		ps = &peerSettle{told: map[connID]toldCount{}}
		t.settle[p] = ps
	}
	return ps
}

// told takes the count the peer sent for connection id, if it did, and
// forgets it.
func (t *Transport) told(peer bus.NodeID, id connID) (read uint64, ok bool) {
	t.settleMu.Lock()
	defer t.settleMu.Unlock()
	if ps := t.settle[peer]; ps != nil {
		var tc toldCount
		if tc, ok = ps.told[id]; ok {
			delete(ps.told, id)
		}
		t.forget(peer, ps)
		return tc.read, ok
	}
	return 0, false
}

// forget drops peer's state once it holds nothing. t.settleMu is held.
func (t *Transport) forget(peer bus.NodeID, ps *peerSettle) {
	if len(ps.records) == 0 && len(ps.told) == 0 {
		delete(t.settle, peer)
	}
}

// keep records r, a connection of l that ended unsettled, and tells the
// peer its read count on every link up to it. Past maxSettleEntries
// records for the peer, the oldest is let go (what it held in doubt handed
// back in doubt); after Config.SettleTimeout, r is.
func (t *Transport) keep(r *record) {
	peer := r.l.peer
	t.settleMu.Lock()
	if t.settleClosed || t.cfg.SettleTimeout < 0 {
		t.settleMu.Unlock()
		t.expire(r)
		return
	}
	ps := t.settleOf(peer)
	var old *record
	if len(ps.records) == maxSettleEntries {
		old = ps.records[0]
		ps.records = ps.records[1:]
	}
	ps.records = append(ps.records, r)
	r.timer = time.AfterFunc(t.cfg.SettleTimeout, func() { t.drop(peer, r) })
	t.settleMu.Unlock()
	if old != nil {
		old.timer.Stop()
		t.expire(old)
	}
	t.mu.Lock()
	var links []*link
	for l := range t.links {
		if l.peer == peer {
			links = append(links, l)
		}
	}
	t.mu.Unlock()
	for _, l := range links {
		l.conns[0].queueControl(appendSettle(nil, []settleEntry{{r.id, r.read}}))
	}
}

// drop lets r go when its time is up, if it is still kept.
func (t *Transport) drop(peer bus.NodeID, r *record) {
	t.settleMu.Lock()
	ps := t.settle[peer]
	found := false
	if ps != nil && !t.settleClosed {
		for i, x := range ps.records {
			if x == r {
				ps.records = append(ps.records[:i:i], ps.records[i+1:]...)
				found = true
				break
			}
		}
		t.forget(peer, ps)
	}
	if found {
		t.settleWG.Add(1) // closeSettle waits for this hand-back
	}
	t.settleMu.Unlock()
	if found {
		t.expire(r)
		t.settleWG.Done()
	}
}

// expire hands back what r still holds in doubt, in doubt.
func (t *Transport) expire(r *record) {
	t.settleMu.Lock()
	from, to, ok := r.take(0, true)
	t.settleMu.Unlock()
	if ok {
		r.handBack(t.host, from, to, fmt.Errorf("%w: written to the socket, never acknowledged, and the peer did not link again to say whether it read it: %w", ErrInDoubt, r.err))
	}
}

// closeSettle lets every record go at Close, in doubt: no peer links
// again. It returns once every hand-back is done.
func (t *Transport) closeSettle() {
	t.settleMu.Lock()
	t.settleClosed = true
	var rs []*record
	for _, ps := range t.settle {
		rs = append(rs, ps.records...)
	}
	clear(t.settle)
	t.settleMu.Unlock()
	for _, r := range rs {
		r.timer.Stop()
		t.expire(r)
	}
	t.settleWG.Wait()
}

// settleFrame is the settle frame a new link to peer starts with: this
// end's read count of each connection to peer it keeps a record of, or nil.
func (t *Transport) settleFrame(peer bus.NodeID) []byte {
	t.settleMu.Lock()
	defer t.settleMu.Unlock()
	ps := t.settle[peer]
	if ps == nil || len(ps.records) == 0 {
		return nil
	}
	es := make([]settleEntry, len(ps.records))
	for i, r := range ps.records {
		es[i] = settleEntry{r.id, r.read}
	}
	return appendSettle(nil, es)
}

// settled takes the entries of a settle frame from peer. A record's frames
// in doubt past the peer's count are handed back, exactly; those before it
// the peer processed. A count for a connection still up here means the
// peer saw it break: it is closed, and settles when it ends. A count this
// end cannot take (below what the peer acknowledged, past what was
// written) leaves the record in doubt.
func (t *Transport) settled(peer bus.NodeID, es []settleEntry) {
	for _, e := range es {
		t.settleMu.Lock()
		var r *record
		if ps := t.settle[peer]; ps != nil {
			for _, x := range ps.records {
				if x.id == e.id {
					r = x
					break
				}
			}
		}
		if r != nil {
			inDoubt := r.to > r.from
			_, to, ok := r.take(e.read, false)
			t.settleMu.Unlock()
			if ok {
				r.handBack(t.host, e.read, to, fmt.Errorf("netbus: the peer linked again and said it never read it: %w", r.err))
			} else if inDoubt {
				t.log.Warn("netbus: a peer's settle count does not fit the connection; its tells stay in doubt",
					"peer", peer.Short(), "read", e.read)
			}
			continue
		}
		t.settleMu.Unlock()
		if c := t.liveConn(peer, e.id); c != nil {
			if err := c.peerClosed(e.read); err != nil {
				t.log.Warn("netbus: a peer's settle count does not fit the connection", "peer", peer.Short(), "err", err)
			}
			c.l.close(errRelinked)
			continue
		}
		now := time.Now()
		t.settleMu.Lock()
		// Counts no connection took within the settle time are let go, for
		// every peer: settle frames are rare, and a peer that never links
		// again leaves none behind for good.
		for p, ps := range t.settle {
			for id, tc := range ps.told {
				if now.Sub(tc.at) > t.cfg.SettleTimeout {
					delete(ps.told, id)
				}
			}
			t.forget(p, ps)
		}
		ps := t.settleOf(peer)
		if len(ps.told) < maxSettleEntries {
			ps.told[e.id] = toldCount{e.read, now} // the connection is ending here: it takes it then
		}
		t.settleMu.Unlock()
	}
}

// liveConn returns the connection id to peer if its link is still up.
func (t *Transport) liveConn(peer bus.NodeID, id connID) *conn {
	t.mu.Lock()
	defer t.mu.Unlock()
	for l := range t.links {
		if l.peer != peer {
			continue
		}
		for _, c := range l.conns {
			if c.id == id {
				return c
			}
		}
	}
	return nil
}
