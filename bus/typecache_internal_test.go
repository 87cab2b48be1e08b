package bus

import (
	"reflect"
	"testing"
)

type staleTarget struct{ X int }

// A lookup that began before a registration may store its answer after
// the registration cleared the tables, and until it looks again at the
// maps that answer sits in the table: a lookup made after Register returned
// must not take it. The entry is stored here as that late lookup would.
func TestTypeLookupIgnoresAnswerOfOlderMaps(t *testing.T) {
	types := NewTypes()
	if err := types.Register("stale.target", staleTarget{}); err != nil {
		t.Fatal(err)
	}
	rt := reflect.TypeFor[*staleTarget]()
	before := types.maps.Load()
	old := before.nameOf(rt) // "*stale.target", as a lookup racing the registration found it
	if err := RegisterType[*staleTarget](types, "stale.pointer"); err != nil {
		t.Fatal(err)
	}
	types.recentTypes[typeSlot(rt)].Store(&typeEntry{name: old, rt: rt, maps: before})
	if got := types.NameOf(&staleTarget{}); got != "stale.pointer" {
		t.Fatalf("NameOf(*staleTarget) = %q after it was registered as %q", got, "stale.pointer")
	}
}

// Two names that share a slot, looked up in turns, allocate nothing: the
// one in the slot turns the other away, which must not make an entry it
// does not keep.
func TestTypeLookupTurnedAwayAllocatesNothing(t *testing.T) {
	types := NewTypes()
	type one struct{ A int }
	type two struct{ B int }
	if err := types.Register("t.aaz", one{}); err != nil { // one slot: same length, first and last byte
		t.Fatal(err)
	}
	if err := types.Register("t.bbz", two{}); err != nil {
		t.Fatal(err)
	}
	if nameSlot("t.aaz") != nameSlot("t.bbz") {
		t.Fatal("the two names no longer share a slot")
	}
	n := testing.AllocsPerRun(1000, func() {
		for _, name := range []string{"t.aaz", "t.bbz"} {
			if _, err := types.cachedTypeOf(name); err != nil {
				t.Fatal(err)
			}
		}
	})
	// The slot changes hands once every typeCacheMisses turned away.
	if max := 2.0 / typeCacheMisses; n > max {
		t.Fatalf("%v allocations per two lookups, want at most %v", n, max)
	}
}
