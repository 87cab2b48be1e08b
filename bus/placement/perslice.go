package placement

import "sync/atomic"

// perSlice keeps what a strategy derives from a slice of instances (a hash
// ring, a table of weights) for its last few slices, so that it is built
// once per slice rather than per call. The bus replaces a name's slice when
// its instances change and never changes one in place, so a slice is known
// by its first element's address and its length. Safe for concurrent use; a
// racing put loses an entry, which is built again.
type perSlice[T any] struct {
	entries atomic.Pointer[[]sliceEntry[T]] // the most recent first
}

type sliceEntry[T any] struct {
	first *Instance
	n     int
	v     T
}

// keptSlices bounds the slices one strategy keeps what it derived from.
const keptSlices = 8

// get returns what was put for in, if it is one of the last slices.
func (c *perSlice[T]) get(in []Instance) (T, bool) {
	if es := c.entries.Load(); es != nil {
		for _, e := range *es {
			if e.first == &in[0] && e.n == len(in) {
				return e.v, true
			}
		}
	}
	var zero T
	return zero, false
}

// put keeps v for in, dropping the oldest slice beyond keptSlices.
func (c *perSlice[T]) put(in []Instance, v T) {
	es := []sliceEntry[T]{{first: &in[0], n: len(in), v: v}}
	if old := c.entries.Load(); old != nil {
		es = append(es, (*old)[:min(len(*old), keptSlices-1)]...)
	}
	c.entries.Store(&es)
}
