package bus

import (
	"bytes"
	"errors"
	"reflect"
	"sync"
	"sync/atomic"
	"unsafe"
)

// A []byte tell from a peer to an actor registered WithBorrowedBytes is
// lent to its Receive instead of given: DeliverBatch copies its bytes into
// a slab of its own (lentSlab), shared by the lent bodies of that batch,
// hands the actor an interface pointing at the body's record in the slab,
// and the slab goes back to the bus's free list once every body in it has
// been given back, when its Receive returned. A body decoded as usual is
// one allocation per message, and the collector's work on it costs more
// than the allocation (docs/performance.md, "Sockets (netbus) / What
// limits it"); a lent one costs a copy and an atomic add. An actor also
// WithInline that DeliverBatch runs on the link's reader (deliveryRun's
// direct) is lent the body in place, in the transport's buffer, with no
// copy and nothing to give back: its Receive returns before DeliverBatch
// does, and the transport reuses its buffer only after that.
//
// A lent body is given back only after Receive has returned on it
// (process.invokeOther): a tell that never reaches Receive (refused,
// dropped, drained when its actor stops) keeps its slab out of the free
// list, which is then just memory the collector frees once nothing holds
// it, never reused while something does. What outlives Receive on the
// bus's side, the dead letter and the Failure of a Receive that failed,
// and the value of a panic with the body, gets a copy (delivery.kept,
// delivery.keptErr).

// lentMax is the longest body lent: a longer one is decoded as usual, its
// allocation then outweighed by its copy.
const lentMax = 1024

const (
	lentRecs = 64      // bodies per slab, a batch's worth
	lentData = 4 << 10 // bytes per slab
	lentOpen = 1 << 32 // in lentSlab.refs while a batch fills the slab
)

// lentSlab holds the lent bodies of one batch. The batch's reader owns it
// until it seals it (seal); refs counts the bodies not given
// back yet, plus lentOpen until then. When refs reaches zero the slab is
// free: nothing refers to it but the free list.
type lentSlab struct {
	refs  atomic.Int64
	_     [56]byte // refs apart from what the reader writes
	recs  [lentRecs]lentRec
	data  [lentData]byte
	nrecs int // used by the reader
	ndata int
	from  *lentSlabs
}

// lentRec is a lent body's header, which its interface points at, and its
// slab (nil for a body lent in place, see deliveryRun.lendInPlace).
type lentRec struct {
	b    []byte
	slab *lentSlab
}

// lentSlabs is a bus's slabs: the one a batch left open for the next to
// fill on, and the free ones (a sync.Pool, so that the collector takes
// back what a burst left and nothing needs them any more).
type lentSlabs struct {
	open atomic.Pointer[lentSlab]
	free sync.Pool
	recs sync.Pool // of *lentRec, for bodies lent in place
}

// take returns the slab a batch left open, or nil: the batch that takes
// it owns it.
func (ls *lentSlabs) take() *lentSlab {
	if ls.open.Load() == nil {
		return nil
	}
	return ls.open.Swap(nil)
}

// leave ends a batch's filling of s: s stays open for the next batch, or
// is sealed when another batch left one open meanwhile.
func (ls *lentSlabs) leave(s *lentSlab) {
	if !ls.open.CompareAndSwap(nil, s) {
		s.seal()
	}
}

func (ls *lentSlabs) get() *lentSlab {
	s, _ := ls.free.Get().(*lentSlab)
	if s == nil {
		s = &lentSlab{from: ls}
	}
	s.refs.Store(lentOpen)
	s.nrecs, s.ndata = 0, 0
	return s
}

func (ls *lentSlabs) put(s *lentSlab) { ls.free.Put(s) }

// lend returns a copy of p, at most lentMax bytes, in *slab, as an
// interface holding a []byte of length and capacity len(p), taking a
// slab from ls when *slab is nil or full (sealing the full one).
func (ls *lentSlabs) lend(slab **lentSlab, p []byte) any {
	s := *slab
	if s == nil {
		s = ls.take()
		*slab = s
	}
	if s == nil || s.nrecs == lentRecs || s.ndata+len(p) > lentData {
		if s != nil {
			s.seal()
		}
		s = ls.get()
		*slab = s
	}
	r := &s.recs[s.nrecs]
	s.nrecs++
	r.b = s.data[s.ndata : s.ndata+len(p) : s.ndata+len(p)]
	s.ndata += len(p)
	copy(r.b, p)
	r.slab = s
	return r.value()
}

// value is the interface a Receive is lent r's body as: it points at r.
func (r *lentRec) value() any {
	return *(*any)(unsafe.Pointer(&eface{typ: bytesWord, data: unsafe.Pointer(&r.b)}))
}

// getRec and putRec pool the records of bodies lent in place, which have
// no slab (see deliveryRun.lendInPlace).
func (ls *lentSlabs) getRec() *lentRec {
	r, _ := ls.recs.Get().(*lentRec)
	if r == nil {
		r = new(lentRec)
	}
	return r
}

func (ls *lentSlabs) putRec(r *lentRec) {
	r.b = nil
	ls.recs.Put(r)
}

// seal ends the reader's filling of s: from now on the last body given
// back frees it.
func (s *lentSlab) seal() {
	if s.refs.Add(int64(s.nrecs)-lentOpen) == 0 {
		s.from.put(s)
	}
}

// giveBack gives back msg, a lent body whose Receive has returned (one
// lent in place, with no slab, has nothing to give back).
func giveBack(msg any) {
	r := (*lentRec)((*eface)(unsafe.Pointer(&msg)).data)
	if s := r.slab; s != nil && s.refs.Add(-1) == 0 {
		s.from.put(s)
	}
}

// bytesWord is the type word of an interface holding a []byte.
var bytesWord = func() unsafe.Pointer {
	var v any = []byte(nil)
	return (*eface)(unsafe.Pointer(&v)).typ
}()

var bytesType = reflect.TypeFor[[]byte]()

// BytesDecoder is an optional fast path of a Codec for []byte bodies.
// BytesOf returns the content of data, the encoding of one []byte, as a
// slice of data itself, or ok false when data is not one that it reads that
// way; the bus then decodes data as usual, and reports what does not
// decode. The bus copies the result before data is reused.
type BytesDecoder interface {
	BytesOf(data []byte) (p []byte, ok bool)
}

// lent reports whether d's message is a lent body.
func (d *delivery) lent() bool { return d.tag&(kindMask|lentBit) == fromLink|lentBit }

// kept is d's message as something may keep it after Receive: a copy of a
// lent body, or the message itself.
func (d *delivery) kept() any {
	if d.lent() {
		return bytes.Clone(d.msg.([]byte))
	}
	return d.msg
}

// keptErr is err, the failure of Receive on d, as something may keep it
// after Receive: a panic with a lent body, or a part of it, holds a copy.
func (d *delivery) keptErr(err error) error {
	var pe *PanicError
	if d.lent() && errors.As(err, &pe) {
		if v, ok := pe.Value.([]byte); ok {
			pe.Value = bytes.Clone(v)
		}
	}
	return err
}
