package bus

import (
	"reflect"
	"testing"
)

// TestElemInterface holds elemInterface to the copy it replaces, for values
// an interface holds indirectly and in its word: the same type and value,
// and no allocation for one held indirectly.
func TestElemInterface(t *testing.T) {
	type pair struct {
		N int
		S string
	}
	type onePtr struct{ P *int }
	n := 7
	for _, v := range []any{
		pair{3, "three"},
		[3]int{1, 2, 3},
		"text",
		42,
		3.5,
		true,
		struct{}{},
		[]byte("bytes"),
		&n,
		map[string]int{"a": 1},
		onePtr{&n},
		[1]*int{&n},
		[2000]byte{1, 2, 3},
	} {
		rt := reflect.TypeOf(v)
		p := reflect.New(rt)
		p.Elem().Set(reflect.ValueOf(v))
		got := elemInterface(p)
		if reflect.TypeOf(got) != rt || !reflect.DeepEqual(got, v) {
			t.Fatalf("elemInterface of a %v holding %v = %#v (%T)", rt, v, got, got)
		}
		z := reflect.Zero(rt).Interface()
		if (*eface)(reflect.ValueOf(&z).UnsafePointer()).data != nil && rt.Size() <= 1024 {
			if a := testing.AllocsPerRun(100, func() { got = elemInterface(p) }); a != 0 {
				t.Fatalf("elemInterface of a %v: %v allocations, want 0", rt, a)
			}
		}
	}
}
