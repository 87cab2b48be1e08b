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
// each hit a comparison of its key and of its maps with the current ones.
// Registering a type may change an answer (a *T named after T until *T is
// registered itself), so an entry holds the maps it was read from and
// counts only while they are the current ones: a lookup that began before a
// registration and stored its answer after it is never taken. Registering
// clears both tables too, so that they do not keep replaced maps alive.
const (
	typeCacheBits  = 6
	typeCacheSlots = 1 << typeCacheBits
	// typeCacheMisses is how many lookups of other names (or types) an
	// entry turns away before one of them takes its slot: two types that
	// share a slot do not evict each other on every message.
	typeCacheMisses = 16
)

// typeEntry is one remembered lookup in maps; immutable but for misses.
type typeEntry struct {
	name   string
	rt     reflect.Type
	maps   *typeMaps
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
	p := uint64(uintptr((*eface)(unsafe.Pointer(&rt)).data)) // *rtype behind the interface
	return uint(p*0x9e3779b97f4a7c15>>(64-typeCacheBits)) & (typeCacheSlots - 1)
}

// remember puts the lookup of name and rt in m in slot s of c unless the
// entry there, of the same maps, has turned away fewer than
// typeCacheMisses other lookups. The entry is made only when it is put:
// a lookup turned away allocates nothing.
func remember(c *typeCache, s uint, name string, rt reflect.Type, m *typeMaps) {
	if old := c[s].Load(); old != nil && old.maps == m && old.misses.Add(1) < typeCacheMisses {
		return
	}
	c[s].Store(&typeEntry{name: name, rt: rt, maps: m})
}

// cachedTypeOf is typeOf through t.recentNames: the type registered as name.
func (t *Types) cachedTypeOf(name string) (reflect.Type, error) {
	if name == "" {
		return t.typeOf(name) // an error
	}
	m := t.maps.Load()
	s := nameSlot(name)
	if e := t.recentNames[s].Load(); e != nil && e.name == name && e.maps == m {
		return e.rt, nil
	}
	rt, err := m.typeOf(name)
	if err == nil {
		remember(&t.recentNames, s, name, rt, m)
	}
	return rt, err
}

// cachedNameOf is nameOf through t.recentTypes: the wire name of rt, not nil.
func (t *Types) cachedNameOf(rt reflect.Type) string {
	m := t.maps.Load()
	s := typeSlot(rt)
	if e := t.recentTypes[s].Load(); e != nil && e.rt == rt && e.maps == m {
		return e.name
	}
	name := m.nameOf(rt)
	remember(&t.recentTypes, s, name, rt, m)
	return name
}

// clear forgets every entry; Types.register calls it.
func (c *typeCache) clear() {
	for i := range c {
		c[i].Store(nil)
	}
}
