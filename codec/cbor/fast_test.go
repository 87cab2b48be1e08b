package cbor

import (
	"bytes"
	"reflect"
	"testing"
)

// FuzzFastPaths holds the string and byte-string fast paths of Append,
// Decode, DecodeValue and BytesOf to the general encoder and decoder: the
// same bytes out, and for any input the same value or an error from both.
func FuzzFastPaths(f *testing.F) {
	for _, s := range []string{"", "x", string(make([]byte, 23)), string(make([]byte, 24)), string(make([]byte, 300)), string(make([]byte, 70000))} {
		f.Add([]byte(s))
		out, _ := Default().Append(nil, s)
		f.Add(out)
	}
	f.Add([]byte{0x7f, 0x61, 'a', 0xff}) // indefinite length
	f.Add([]byte{0x78, 0x05, 'a'})       // length past the end
	f.Add([]byte{0x5b, 0, 0, 0, 0, 0, 0, 0, 1, 'b'})
	f.Fuzz(func(t *testing.T, data []byte) {
		c := Default()
		for _, v := range []any{string(data), data} {
			fast, err := c.Append(nil, v)
			if err != nil {
				t.Fatal(err)
			}
			var general bytes.Buffer
			if err := c.em.MarshalToBuffer(v, &general); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(fast, general.Bytes()) {
				t.Fatalf("Append(%T %q) = %x, the encoder gives %x", v, data, fast, general.Bytes())
			}
		}
		var s1, s2 string
		e1, e2 := c.Decode(data, &s1), c.dm.Unmarshal(data, &s2)
		if (e1 == nil) != (e2 == nil) || s1 != s2 {
			t.Fatalf("string from %x: fast %q, %v; general %q, %v", data, s1, e1, s2, e2)
		}
		var b1, b2 []byte
		e1, e2 = c.Decode(data, &b1), c.dm.Unmarshal(data, &b2)
		if p, ok := c.BytesOf(data); ok && (e2 != nil || !bytes.Equal(p, b2)) {
			t.Fatalf("BytesOf(%x) = %x; the decoder gives %x, %v", data, p, b2, e2)
		} else if ok && len(p) > 0 && &p[len(p)-1] != &data[len(data)-1] {
			t.Fatalf("BytesOf(%x) does not end where data does", data)
		}
		if (e1 == nil) != (e2 == nil) || !bytes.Equal(b1, b2) || (b1 == nil) != (b2 == nil) {
			t.Fatalf("bytes from %x: fast %x (nil %v), %v; general %x (nil %v), %v", data, b1, b1 == nil, e1, b2, b2 == nil, e2)
		}
		for _, tc := range []struct {
			t    reflect.Type
			want any
			err  error
		}{{stringType, s2, nil}, {bytesType, b2, e2}} {
			if tc.t == stringType {
				tc.err = c.dm.Unmarshal(data, new(string))
			}
			v, ok, err := c.DecodeValue(data, tc.t)
			if err != nil {
				t.Fatalf("DecodeValue(%x, %v): %v", data, tc.t, err)
			}
			if ok && (tc.err != nil || !reflect.DeepEqual(v, tc.want)) {
				t.Fatalf("DecodeValue(%x, %v) = %#v; the decoder gives %#v, %v", data, tc.t, v, tc.want, tc.err)
			}
		}
		if e1 == nil && len(b1) > 0 && len(data) > 0 && &b1[0] == &data[len(data)-len(b1)] {
			t.Fatal("decoded bytes alias the input")
		}
	})
}
