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
