package shmbus

import (
	"encoding/binary"
	"fmt"
)

// fragHdr is the head of a first fragment's payload: the message's total
// length (uint32) and 4 reserved bytes.
const fragHdr = 8

// reassemblyPrealloc bounds the room a first fragment makes for the
// length it announces: a peer may announce MaxMessage and send less.
const reassemblyPrealloc = 1 << 20

// reassembler rebuilds a message sent in fragments from its records:
// a first fragment, middles, and a last one, or an abort that drops the
// message begun (its sender stopped: see link.sendFragments). It takes
// the records of one ring in order, whole records left out; it holds no
// lock and does no I/O. Its buffer grows as fragments come, never past
// max, the largest message it accepts; it goes with the message when the
// last fragment comes, and is kept for the next one after an abort
// unless it grew past reassemblyPrealloc.
type reassembler struct {
	max  int
	buf  []byte // the message so far
	want int    // its total length; 0 when no message is begun
}

// take handles one fragment record of type typ (recordFirst,
// recordMiddle, recordLast or recordAbort) whose payload p it copies.
// It returns the whole message after its last fragment; the caller owns
// it. A record that does not fit the message begun, or none, is an
// error wrapping ErrCorrupt: the peer broke the protocol.
func (r *reassembler) take(typ uint32, p []byte) (msg []byte, err error) {
	switch typ {
	case recordFirst:
		if r.want != 0 || len(p) < fragHdr {
			return nil, fmt.Errorf("%w: unexpected first fragment", ErrCorrupt)
		}
		n := int(binary.LittleEndian.Uint32(p))
		if n <= len(p)-fragHdr || n > r.max {
			return nil, fmt.Errorf("%w: fragmented message of %d bytes (limit %d)", ErrCorrupt, n, r.max)
		}
		// Room for the announced length is made only up to
		// reassemblyPrealloc; past it the buffer grows as fragments come.
		r.want = n
		if c := min(n, reassemblyPrealloc); cap(r.buf) < c {
			r.buf = make([]byte, 0, c)
		}
		r.buf = append(r.buf[:0], p[fragHdr:]...)
	case recordMiddle, recordLast:
		if r.want == 0 || len(r.buf)+len(p) > r.want || (typ == recordMiddle) == (len(r.buf)+len(p) == r.want) {
			return nil, fmt.Errorf("%w: fragment does not fit the message being reassembled", ErrCorrupt)
		}
		if len(r.buf)+len(p) > cap(r.buf) { // doubling, never past the message
			b := make([]byte, len(r.buf), min(r.want, max(2*cap(r.buf), len(r.buf)+len(p))))
			copy(b, r.buf)
			r.buf = b
		}
		r.buf = append(r.buf, p...)
		if typ == recordLast {
			msg = r.buf
			r.buf, r.want = nil, 0 // msg is the caller's
		}
	case recordAbort:
		if r.want == 0 {
			return nil, fmt.Errorf("%w: abort with no message in fragments begun", ErrCorrupt)
		}
		// The sender's Send returned its error: nothing accepted is
		// dropped. A buffer within reassemblyPrealloc is kept for the
		// next message, so that a peer that begins and aborts messages
		// makes us allocate nothing each time.
		r.want = 0
		if cap(r.buf) > reassemblyPrealloc {
			r.buf = nil
		} else {
			r.buf = r.buf[:0]
		}
	default:
		return nil, fmt.Errorf("%w: record type %d is not a fragment", ErrCorrupt, typ)
	}
	return msg, nil
}

// begun reports whether a message in fragments is being rebuilt.
func (r *reassembler) begun() bool { return r.want != 0 }

// answer reports whether the message begun is a reply or an error, by
// the bytes of its first fragment copied.
func (r *reassembler) answer() bool { return r.want != 0 && isAnswer(r.buf) }

// unbegin takes back the first fragment just taken, so that the record
// is taken again (see link.handle).
func (r *reassembler) unbegin() { r.buf, r.want = r.buf[:0], 0 }
