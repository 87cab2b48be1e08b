package proto_test

import (
	"reflect"
	"testing"

	gproto "google.golang.org/protobuf/proto"

	"github.com/xbus-dev/xbus/bus"
	"github.com/xbus-dev/xbus/codec/proto"
	"github.com/xbus-dev/xbus/codec/proto/internal/testpb"
)

// FuzzDecode feeds hostile bytes to the decoder, by both of the bus's
// paths: an error or a message, never a panic, and a message that decodes
// encodes and decodes again to an equal one.
func FuzzDecode(f *testing.F) {
	good, _ := gproto.Marshal(sample())
	f.Add(good)
	f.Add([]byte{})
	f.Add([]byte{0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f}) // a length far past the end
	f.Add([]byte{0x1a, 0x02, 0x0a, 0x80})             // a map entry cut short
	f.Add([]byte{0x08, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01})
	f.Fuzz(func(t *testing.T, data []byte) {
		var m *testpb.Order
		err := proto.Codec.Decode(data, &m)
		v, ok, verr := proto.Codec.(bus.ValueDecoder).DecodeValue(data, orderType)
		if !ok || (err == nil) != (verr == nil) {
			t.Fatalf("Decode and DecodeValue disagree: %v, %v (ok %v)", err, verr, ok)
		}
		if err != nil {
			return
		}
		if !gproto.Equal(m, v.(*testpb.Order)) {
			t.Fatalf("Decode %v, DecodeValue %v", m, v)
		}
		b, err := proto.Codec.Append(nil, m)
		if err != nil {
			t.Fatalf("a decoded message does not encode: %v", err)
		}
		var again *testpb.Order
		if err := proto.Codec.Decode(b, &again); err != nil || !gproto.Equal(m, again) {
			t.Fatalf("re-decoded %v, %v; want %v", again, err, m)
		}
	})
}

var orderType = reflect.TypeFor[*testpb.Order]()
