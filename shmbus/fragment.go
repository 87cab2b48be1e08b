package shmbus

import (
	"encoding/binary"
	"fmt"
)

// fragHdr is the head of a first fragment's payload: the message's total
// length (uint32) and 4 reserved bytes.
const fragHdr = 8

// reassembler rebuilds a message sent in fragments from its records:
// a first fragment, middles, and a last one, or an abort that drops the
// message begun (its sender stopped: see link.sendFragments). It takes
// the records of one ring in order, whole records left out; it holds no
// lock and does no I/O. Its buffer never grows past max, the largest
// message it accepts, and is released when the message ends.
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
		r.want = n
		r.buf = append(make([]byte, 0, n), p[fragHdr:]...)
	case recordMiddle, recordLast:
		if r.want == 0 || len(r.buf)+len(p) > r.want || (typ == recordMiddle) == (len(r.buf)+len(p) == r.want) {
			return nil, fmt.Errorf("%w: fragment does not fit the message being reassembled", ErrCorrupt)
		}
		r.buf = append(r.buf, p...)
		if typ == recordLast {
			msg = r.buf
			r.buf, r.want = nil, 0
		}
	case recordAbort:
		if r.want == 0 {
			return nil, fmt.Errorf("%w: abort with no message in fragments begun", ErrCorrupt)
		}
		r.buf, r.want = nil, 0 // the sender's Send returned its error: nothing accepted is dropped
	default:
		return nil, fmt.Errorf("%w: record type %d is not a fragment", ErrCorrupt, typ)
	}
	return msg, nil
}
