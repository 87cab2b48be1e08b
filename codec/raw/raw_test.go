package raw_test

import (
	"bytes"
	"testing"

	"github.com/xbus-dev/xbus/bus"
	"github.com/xbus-dev/xbus/codec/raw"
)

func TestIsBusRaw(t *testing.T) {
	if raw.Codec != bus.Raw || raw.Codec.Name() != "raw" {
		t.Fatal("raw.Codec is not bus.Raw")
	}
}

// FuzzDecode: every byte string decodes, into a []byte and a string, equal
// to the input and never aliasing it; and it encodes back to itself.
func FuzzDecode(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte("payload"))
	f.Add([]byte{0, 0xff, 0x80})
	f.Fuzz(func(t *testing.T, data []byte) {
		var b []byte
		var s string
		if err := raw.Codec.Decode(data, &b); err != nil || !bytes.Equal(b, data) {
			t.Fatalf("Decode into []byte: %q, %v", b, err)
		}
		if err := raw.Codec.Decode(data, &s); err != nil || s != string(data) {
			t.Fatalf("Decode into string: %q, %v", s, err)
		}
		if len(data) > 0 && &b[0] == &data[0] {
			t.Fatal("the decoded slice aliases the input")
		}
		out, err := raw.Codec.Append(nil, b)
		if err != nil || !bytes.Equal(out, data) {
			t.Fatalf("Append: %q, %v", out, err)
		}
	})
}
