package bus

import (
	"sync"
	"sync/atomic"
)

// procTable maps instance ids to live processes. Ids are handed out by a
// counter, so the table is two levels of arrays: a lookup is two atomic loads
// and no hashing, which keeps Tell to a Ref cheap. A chunk whose ids are all
// issued and all gone is freed, so a daemon that spawns and stops actors for
// months keeps only a pointer per 1,024 ids it ever issued.
type procTable struct {
	mu     sync.Mutex                       // serializes growth and freeing
	chunks atomic.Pointer[[]*procChunkSlot] // grown copy-on-write under mu
}

const chunkBits = 10
const chunkSize = 1 << chunkBits

type procChunkSlot struct{ c atomic.Pointer[procChunk] }

type procChunk struct {
	slots [chunkSize]atomic.Pointer[process]
	// counts packs the ids of this chunk ever stored (high 32 bits) with
	// those live (low 32 bits), so that a store counts both at once: had
	// it counted the id as stored first, a concurrent delete could see the
	// chunk complete and empty and free it under the new process.
	counts atomic.Uint64
}

const (
	chunkAdded = 1 << 32 // one id stored, in procChunk.counts
	chunkLive  = 1       // one id live
)

func (t *procTable) get(id uint64) *process {
	cs := t.chunks.Load()
	if cs == nil {
		return nil
	}
	i := id >> chunkBits
	if i >= uint64(len(*cs)) {
		return nil
	}
	c := (*cs)[i].c.Load()
	if c == nil {
		return nil
	}
	return c.slots[id&(chunkSize-1)].Load()
}

func (t *procTable) put(id uint64, p *process) {
	i := id >> chunkBits
	cs := t.chunks.Load()
	if cs == nil || i >= uint64(len(*cs)) || (*cs)[i].c.Load() == nil {
		t.mu.Lock()
		cs = t.chunks.Load()
		if cs == nil || i >= uint64(len(*cs)) {
			n := 0
			if cs != nil {
				n = len(*cs)
			}
			grown := make([]*procChunkSlot, max(int(i)+1, 2*n))
			if cs != nil {
				copy(grown, *cs)
			}
			for j := n; j < len(grown); j++ {
				grown[j] = new(procChunkSlot)
			}
			t.chunks.Store(&grown)
			cs = &grown
		}
		if (*cs)[i].c.Load() == nil {
			(*cs)[i].c.Store(new(procChunk))
		}
		t.mu.Unlock()
	}
	c := (*cs)[i].c.Load()
	c.slots[id&(chunkSize-1)].Store(p)
	c.counts.Add(chunkAdded + chunkLive)
}

func (t *procTable) delete(id uint64) {
	cs := t.chunks.Load()
	if cs == nil || id>>chunkBits >= uint64(len(*cs)) {
		return
	}
	slot := (*cs)[id>>chunkBits]
	c := slot.c.Load()
	if c == nil || c.slots[id&(chunkSize-1)].Swap(nil) == nil {
		return
	}
	if c.counts.Add(^uint64(0)) == chunkSize*chunkAdded { // one live fewer
		t.mu.Lock()
		if uint32(c.counts.Load()) == 0 {
			slot.c.CompareAndSwap(c, nil)
		}
		t.mu.Unlock()
	}
}

// each calls fn for every live process in id order, descending if rev.
func (t *procTable) each(rev bool, fn func(*process)) {
	cs := t.chunks.Load()
	if cs == nil {
		return
	}
	n := len(*cs) * chunkSize
	for k := range n {
		id := k
		if rev {
			id = n - 1 - k
		}
		c := (*cs)[id>>chunkBits].c.Load()
		if c == nil {
			continue
		}
		if p := c.slots[id&(chunkSize-1)].Load(); p != nil {
			fn(p)
		}
	}
}
