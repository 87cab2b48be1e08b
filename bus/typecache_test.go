package bus_test

import (
	"fmt"
	"reflect"
	"sync"
	"testing"

	"github.com/xbus-dev/xbus/bus"
)

type (
	cachePoint struct{ X int }
	cacheOther struct{ Y int }
)

// decodeAs decodes an empty-struct body named name and returns the type
// of what it decoded into, or the error.
func decodeAs(types *bus.Types, name string, body []byte) (reflect.Type, error) {
	env := &bus.Envelope{Kind: bus.KindTell, Type: name, Body: body}
	if err := types.DecodeBody(bus.JSON, env); err != nil {
		return nil, err
	}
	return reflect.TypeOf(env.Msg), nil
}

// A name or a Go type looked up once is remembered; registering a type
// afterwards must still change the answers it changes: a *T sent before
// *T has a name of its own travels under T's name with a "*", after it
// under its own, and a name "*x" means *x's type until "*x" is registered.
func TestTypeLookupsFollowRegistration(t *testing.T) {
	types := bus.NewTypes()
	if err := types.Register("cache.point", cachePoint{}); err != nil {
		t.Fatal(err)
	}
	for range 3 { // the first lookup fills the cache, the others hit it
		if got := types.NameOf(&cachePoint{}); got != "*cache.point" {
			t.Fatalf("NameOf(*cachePoint) = %q, want %q", got, "*cache.point")
		}
		got, err := decodeAs(types, "*cache.point", []byte(`{"X":1}`))
		if err != nil || got != reflect.TypeFor[*cachePoint]() {
			t.Fatalf(`"*cache.point" decodes as %v (%v), want *cachePoint`, got, err)
		}
	}
	if err := bus.RegisterType[*cachePoint](types, "cache.pointer"); err != nil {
		t.Fatal(err)
	}
	if got := types.NameOf(&cachePoint{}); got != "cache.pointer" {
		t.Fatalf("after registering *cachePoint, NameOf = %q, want %q", got, "cache.pointer")
	}
	if err := bus.RegisterType[cacheOther](types, "*cache.point"); err != nil {
		t.Fatal(err)
	}
	got, err := decodeAs(types, "*cache.point", []byte(`{"Y":1}`))
	if err != nil || got != reflect.TypeFor[cacheOther]() {
		t.Fatalf(`after registering "*cache.point" for cacheOther, it decodes as %v (%v)`, got, err)
	}
}

// Names that share a slot of the cache, looked up in turns, each still get
// their own type, and an unknown name stays unknown after a known one.
func TestTypeLookupsShareSlots(t *testing.T) {
	types := bus.NewTypes()
	type one struct{ A int }
	type two struct{ B int }
	// Same length, first and last byte: the same slot.
	if err := types.Register("t.aaz", one{}); err != nil {
		t.Fatal(err)
	}
	if err := types.Register("t.bbz", two{}); err != nil {
		t.Fatal(err)
	}
	for i := range 100 {
		for _, c := range []struct {
			name string
			want reflect.Type
		}{{"t.aaz", reflect.TypeFor[one]()}, {"t.bbz", reflect.TypeFor[two]()}} {
			got, err := decodeAs(types, c.name, []byte(`{}`))
			if err != nil || got != c.want {
				t.Fatalf("round %d: %q decodes as %v (%v), want %v", i, c.name, got, err, c.want)
			}
		}
		if _, err := decodeAs(types, "t.ccz", []byte(`{}`)); err == nil {
			t.Fatalf("round %d: an unregistered name decoded", i)
		}
	}
}

// Lookups racing with registrations always give an answer that is right
// for some moment of the race, and the right one once it is over.
func TestTypeLookupsRaceRegistration(t *testing.T) {
	types := bus.NewTypes()
	if err := types.Register("race.point", cachePoint{}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				if n := types.NameOf(&cachePoint{}); n != "*race.point" && n != "race.pointer" {
					t.Errorf("NameOf(*cachePoint) = %q", n)
					return
				}
			}
		})
	}
	for i := range 50 {
		if err := types.Register(fmt.Sprintf("race.other%d", i), reflect.New(reflect.StructOf([]reflect.StructField{{
			Name: fmt.Sprintf("F%d", i), Type: reflect.TypeFor[int](),
		}})).Elem().Interface()); err != nil {
			t.Fatal(err)
		}
	}
	if err := bus.RegisterType[*cachePoint](types, "race.pointer"); err != nil {
		t.Fatal(err)
	}
	close(stop)
	wg.Wait()
	if n := types.NameOf(&cachePoint{}); n != "race.pointer" {
		t.Fatalf("after the race NameOf(*cachePoint) = %q, want %q", n, "race.pointer")
	}
}
