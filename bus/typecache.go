package bus

import (
	"reflect"
	"sync/atomic"
	"unsafe"
)

// Every body that crosses a process names its type, and both ends look the
// name up: the receiver by name (a string hash and a map probe), the sender
// by Go type. A stream of messages names few types over and over, so Types
// keeps the answers of recent lookups in two small direct-mapped tables,
// each hit one comparison. Registering a type clears both, as it may change
// an answer (a *T named after T until *T is registered itself).
const (
	typeCacheBits  = 6
	typeCacheSlots = 1 << typeCacheBits
	// typeCacheMisses is how many lookups of other names (or types) an
	// entry turns away before one of them takes its slot: two types that
	// share a slot do not evict each other on every message.
	typeCacheMisses = 16
)

// typeEntry is one remembered lookup; immutable but for misses.
type typeEntry struct {
	name   string
	rt     reflect.Type
	misses atomic.Uint32
}

type typeCache [typeCacheSlots]atomic.Pointer[typeEntry]

// nameSlot is the slot of a type name: its length and end bytes, as
// EnvelopeDecoder indexes its names. name is not empty.
func nameSlot(name string) uint {
	return (uint(len(name))*7 + uint(name[0])*3 + uint(name[len(name)-1])) & (typeCacheSlots - 1)
}

// typeSlot is the slot of a Go type: the address of its descriptor.
func typeSlot(rt reflect.Type) uint {
	p := uintptr((*eface)(unsafe.Pointer(&rt)).data) // *rtype behind the interface
	return uint(p*0x9e3779b97f4a7c15>>(64-typeCacheBits)) & (typeCacheSlots - 1)
}

// remember puts e, found in m, in slot s unless the entry there has turned
// away fewer than typeCacheMisses other lookups. When a registration
// replaced m meanwhile, e may be stale and leaves at once: the registration
// published its maps before it cleared the table, so either its clearing
// came after e was stored, or this load sees its maps.
func (t *Types) remember(c *typeCache, s uint, e *typeEntry, m *typeMaps) {
	if old := c[s].Load(); old != nil && old.misses.Add(1) < typeCacheMisses {
		return
	}
	c[s].Store(e)
	if t.maps.Load() != m {
		c[s].CompareAndSwap(e, nil)
	}
}

// cachedTypeOf is typeOf through t.recentNames: the type registered as name.
func (t *Types) cachedTypeOf(name string) (reflect.Type, error) {
	if name == "" {
		return t.typeOf(name) // an error
	}
	s := nameSlot(name)
	if e := t.recentNames[s].Load(); e != nil && e.name == name {
		return e.rt, nil
	}
	m := t.maps.Load()
	rt, err := m.typeOf(name)
	if err == nil {
		t.remember(&t.recentNames, s, &typeEntry{name: name, rt: rt}, m)
	}
	return rt, err
}

// cachedNameOf is nameOf through t.recentTypes: the wire name of rt, not nil.
func (t *Types) cachedNameOf(rt reflect.Type) string {
	s := typeSlot(rt)
	if e := t.recentTypes[s].Load(); e != nil && e.rt == rt {
		return e.name
	}
	m := t.maps.Load()
	name := m.nameOf(rt)
	t.remember(&t.recentTypes, s, &typeEntry{name: name, rt: rt}, m)
	return name
}

// clear forgets every entry; Types.register calls it.
func (c *typeCache) clear() {
	for i := range c {
		c[i].Store(nil)
	}
}
