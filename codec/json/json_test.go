package json_test

import (
	"reflect"
	"testing"

	"github.com/xbus-dev/xbus/bus"
	"github.com/xbus-dev/xbus/codec/json"
)

type order struct {
	ID    int64
	Items []string
	Qty   map[string]int
	Note  *string
}

func TestRoundTrip(t *testing.T) {
	if json.Codec.Name() != "json" || json.Codec != bus.JSON {
		t.Fatal("json.Codec is not bus.JSON")
	}
	note := "fragile"
	in := order{ID: 7, Items: []string{"a", "b"}, Qty: map[string]int{"a": 1}, Note: &note}
	b, err := json.Codec.Append([]byte("x"), in)
	if err != nil {
		t.Fatal(err)
	}
	var out order
	if err := json.Codec.Decode(b[1:], &out); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(in, out) {
		t.Fatalf("%+v decoded as %+v", in, out)
	}
	if _, err := json.Codec.Append(nil, make(chan int)); err == nil {
		t.Fatal("a channel encoded")
	}
}

// FuzzDecode feeds hostile bytes to the decoder: an error or a value, never
// a panic, and what decodes encodes and decodes again to the same value.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{`{"ID":1,"Items":["a"],"Qty":{"a":2},"Note":"n"}`, `{}`, `null`, `[`, `{"ID":1e400}`,
		`{"Items":[[[[[[]]]]]]}`, `{"Qty":{"a":"b"}}`, "\xff\xfe", `"str"`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var o order
		if err := json.Codec.Decode(data, &o); err != nil {
			return
		}
		b, err := json.Codec.Append(nil, o)
		if err != nil {
			t.Fatalf("decoded %+v does not encode: %v", o, err)
		}
		var again order
		if err := json.Codec.Decode(b, &again); err != nil || !reflect.DeepEqual(o, again) {
			t.Fatalf("%+v re-decoded as %+v, %v", o, again, err)
		}
		var v any
		_ = json.Codec.Decode(data, &v)
	})
}
