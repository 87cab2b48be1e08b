package cbor

import (
	"reflect"
	"sync/atomic"
	"unsafe"
)

// values hands out new zero values of one struct type, several taken from
// one allocation: a plan decodes into a value that is the message itself,
// and one allocation per message was most of what is left of a small
// struct's decoding. A value the receiver keeps keeps its chunk alive,
// never more than chunkBytes and what the chunk's values hold, each at
// most internMax bytes of a string or []byte field: a value decoded with
// more, or not decoded at all, leaves its chunk (release), so that a large
// body dropped by its receiver is not kept by a chunk's other values. No
// value is ever handed out twice, so a kept one never changes. Types over
// chunkBytes/minChunk bytes take one allocation each. Safe for concurrent
// use.
type values struct {
	rt   reflect.Type
	arr  reflect.Type // [n]rt; nil: one allocation per value
	size uintptr
	n    uint32
	cur  atomic.Pointer[valueChunk]
}

// valueChunk is one allocation of values and how many were handed out.
type valueChunk struct {
	base unsafe.Pointer // of an [n]rt
	next atomic.Uint32
}

const (
	chunkBytes = 512 // the most a chunk holds
	minChunk   = 4   // the fewest values worth a chunk
	maxChunk   = 16
)

func (v *values) init(rt reflect.Type) {
	v.rt, v.size = rt, rt.Size()
	if n := chunkBytes / max(v.size, 1); n >= minChunk {
		v.n = uint32(min(n, maxChunk))
		v.arr = reflect.ArrayOf(int(v.n), rt)
	}
}

// take returns a pointer to a new zero value.
func (v *values) take() unsafe.Pointer {
	if v.arr == nil {
		return reflect.New(v.rt).UnsafePointer()
	}
	for {
		c := v.cur.Load()
		if c != nil {
			if i := c.next.Add(1) - 1; i < v.n {
				return unsafe.Add(c.base, uintptr(i)*v.size)
			}
		}
		nc := &valueChunk{base: reflect.New(v.arr).UnsafePointer()}
		nc.next.Store(1)
		if v.cur.CompareAndSwap(c, nc) {
			return nc.base
		}
	}
}

// release takes the value at v, taken from v's chunk and filled, out of
// the chunk: it returns a copy of it in an allocation of its own (keep),
// or nil, and zeroes it in the chunk, which then holds nothing of it. A
// value allocated on its own is returned as it is (keep), or nil.
func (v *values) release(at unsafe.Pointer, keep bool) unsafe.Pointer {
	if v.arr == nil {
		if keep {
			return at
		}
		return nil
	}
	in := reflect.NewAt(v.rt, at).Elem()
	var out unsafe.Pointer
	if keep {
		c := reflect.New(v.rt)
		c.Elem().Set(in)
		out = c.UnsafePointer()
	}
	in.SetZero()
	return out
}
