package cbor

import (
	"bytes"
	"runtime"
	"testing"
)

// TestBoxedBodies decodes byte and text strings of every length around the
// block sizes through DecodeValue: the value is the body's copy (writing the
// input afterwards changes nothing), a []byte's capacity is its length, so
// an append by the receiver never writes into the block, and a small body
// costs one allocation.
func TestBoxedBodies(t *testing.T) {
	c := Default()
	for n := 0; n <= boxMax+20; n++ {
		body := bytes.Repeat([]byte{'a' + byte(n%26)}, n)
		want := append([]byte(nil), body...)
		for _, v := range []any{body, string(body)} {
			data, err := c.Append(nil, v)
			if err != nil {
				t.Fatal(err)
			}
			typ := bytesType
			if _, ok := v.(string); ok {
				typ = stringType
			}
			got, ok, err := c.DecodeValue(data, typ)
			if err != nil || !ok {
				t.Fatalf("DecodeValue of %d bytes as %v: ok %v, %v", n, typ, ok, err)
			}
			keep := append([]byte(nil), data...)
			clear(data)
			switch g := got.(type) {
			case []byte:
				if !bytes.Equal(g, want) || (n <= boxMax && cap(g) != n) {
					t.Fatalf("%d bytes: got %q (cap %d), want %q (cap %d)", n, g, cap(g), want, n)
				}
				g = append(g, 'z')
				if !bytes.Equal(g[:n], want) {
					t.Fatalf("%d bytes: an append changed the body", n)
				}
			case string:
				if g != string(want) {
					t.Fatalf("%d bytes: got %q, want %q", n, g, want)
				}
			default:
				t.Fatalf("%d bytes: got a %T", n, got)
			}
			if n > boxMax {
				continue
			}
			if a := testing.AllocsPerRun(20, func() { _, _, _ = c.DecodeValue(keep, typ) }); a != 1 {
				t.Fatalf("DecodeValue of %d bytes as %v: %v allocations, want 1", n, typ, a)
			}
		}
	}
}

// TestBoxedBodiesOutliveTheirInterface keeps only what a receiver may keep
// of a decoded body (a slice of it, the string) across collections, while
// other allocations reuse freed memory: the bytes stay what they were.
func TestBoxedBodiesOutliveTheirInterface(t *testing.T) {
	c := Default()
	const n = 1000
	var slices [][]byte
	var strs []string
	for i := range n {
		body := bytes.Repeat([]byte{byte(i)}, 1+i%100)
		b, _ := c.Append(nil, body)
		s, _ := c.Append(nil, string(body))
		v, _, _ := c.DecodeValue(b, bytesType)
		w, _, _ := c.DecodeValue(s, stringType)
		slices = append(slices, v.([]byte)[1:])
		strs = append(strs, w.(string))
		if i%100 == 0 {
			runtime.GC()
		}
	}
	for range 3 {
		runtime.GC()
		for range 10000 {
			_ = make([]byte, 64+len(slices)%7)
		}
	}
	for i := range n {
		k := 1 + i%100
		if !bytes.Equal(slices[i], bytes.Repeat([]byte{byte(i)}, k-1)) || strs[i] != string(bytes.Repeat([]byte{byte(i)}, k)) {
			t.Fatalf("body %d changed after collections", i)
		}
	}
}
