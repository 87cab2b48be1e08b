package cbor

import (
	"math/rand/v2"
	"sync/atomic"
	"unsafe"
)

// recentStrings are the recent values of one string field of a plan,
// handed out again when the same bytes come back: a stream of messages
// most often repeats a field's few values (a symbol, a venue, a status),
// and a string is immutable, so values may share one. A hit costs a
// comparison and no allocation. A miss takes the string's one allocation
// as usual, and one miss in keepEvery (or any into an empty slot) keeps
// its string instead, in a block that holds its header too (stringBlock):
// a field whose values never repeat pays little more than before, and a
// value that repeats is kept after a few messages. Its size is fixed whatever a
// peer sends: internMax bytes in each of recentSlots slots. Safe for
// concurrent use.
type recentStrings struct {
	slots [recentSlots]atomic.Pointer[string]
}

const (
	recentSlots = 8
	internMax   = 32 // the longest string kept
	keepEvery   = 8
)

// of returns a string holding b's bytes, one kept if its bytes are b's.
func (r *recentStrings) of(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	if len(b) > internMax {
		return string(b)
	}
	slot := &r.slots[(uint(len(b))*7+uint(b[0])*3+uint(b[len(b)-1]))&(recentSlots-1)]
	p := slot.Load()
	if p != nil && *p == string(b) { // the comparison does not allocate
		return *p
	}
	if p != nil && rand.Uint32()%keepEvery != 0 {
		return string(b)
	}
	p = stringBlock(b)
	slot.Store(p)
	return *p
}

// stringBlock returns a string holding b's bytes, at most internMax, as a
// pointer to its header, in one allocation: the header and, after it, the
// bytes (as boxString lays them out).
func stringBlock(b []byte) *string {
	if len(b) <= 16 {
		return stringBlockIn[[16]byte](b)
	}
	return stringBlockIn[[internMax]byte](b)
}

func stringBlockIn[A any](p []byte) *string {
	b := new(boxed[string, A])
	d := unsafe.Slice((*byte)(unsafe.Pointer(&b.d)), unsafe.Sizeof(b.d))
	copy(d, p)
	b.h = unsafe.String(&d[0], len(p))
	return &b.h
}
