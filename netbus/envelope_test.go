package netbus

import (
	"errors"
	"reflect"
	"testing"

	"github.com/xbus-dev/xbus/bus"
)

// decodeEnvelope must agree with bus.DecodeEnvelope on every input: the same
// envelope when both accept it, an ErrBadEnvelope from both otherwise, with
// or without strings already interned.
func FuzzEnvelopeDecoder(f *testing.F) {
	node := bus.NewNodeID()
	for _, e := range []bus.Envelope{
		{Kind: bus.KindTell, To: bus.Ref{Name: "sink"}, Type: "[]uint8", Body: []byte{0x41, 1}},
		{Kind: bus.KindAsk, From: bus.Ref{Node: node, Name: "a", ID: 9}, To: bus.Ref{Node: node, Name: "echo", ID: 3}, Corr: 1 << 40, Deadline: -5, Type: "t"},
		{Kind: bus.KindReply, To: bus.Ref{Node: node, ID: 1}, Headers: []bus.Header{{Key: "k", Value: "v"}, {Key: "", Value: "x"}}},
		{Kind: bus.KindSystem},
	} {
		b, err := e.AppendBinary(nil)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{bus.WireVersion, 12, 0, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		var want bus.Envelope
		werr := bus.DecodeEnvelope(data, &want)
		var names interner
		for i := range 2 { // the second time every string is interned
			var got bus.Envelope
			err := decodeEnvelope(data, &got, &names)
			if (err == nil) != (werr == nil) {
				t.Fatalf("pass %d: error %v, bus.DecodeEnvelope says %v", i, err, werr)
			}
			if err != nil {
				if !errors.Is(err, bus.ErrBadEnvelope) {
					t.Fatalf("error %v does not wrap ErrBadEnvelope", err)
				}
				return
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("pass %d: decoded %+v, bus.DecodeEnvelope %+v", i, got, want)
			}
		}
	})
}

// A reader that sees the same names again allocates no strings for them.
func TestInterner(t *testing.T) {
	in := new(interner)
	a := in.get([]byte("echo"))
	if allocs := testing.AllocsPerRun(100, func() { in.get([]byte("echo")) }); allocs > 0 && !raceEnabled {
		t.Fatalf("%.0f allocations for an interned string", allocs)
	}
	if b := in.get([]byte("echo")); b != a || b != "echo" {
		t.Fatalf("got %q", b)
	}
	for i := range 5000 { // whatever comes, every answer is right
		b := []byte{byte(i), byte(i >> 8), 'x'}
		if s := in.get(b); s != string(b) {
			t.Fatalf("got %q for %q", s, b)
		}
	}
	long := make([]byte, maxInternedLen+1)
	if s := in.get(long); s != string(long) {
		t.Fatal("a long string came back wrong")
	}
}

// BenchmarkDecodeEnvelope compares decoding a typical ask header with
// interned strings against bus.DecodeEnvelope, which copies them.
func BenchmarkDecodeEnvelope(b *testing.B) {
	node := bus.NewNodeID()
	e := bus.Envelope{Kind: bus.KindAsk, From: bus.Ref{Node: node, Name: "client", ID: 7}, To: bus.Ref{Name: "echo"}, Corr: 123456, Type: "[]uint8", Body: make([]byte, 66)}
	data, err := e.AppendBinary(nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("bus", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var got bus.Envelope
			if err := bus.DecodeEnvelope(data, &got); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("interned", func(b *testing.B) {
		b.ReportAllocs()
		var names interner
		for b.Loop() {
			var got bus.Envelope
			if err := decodeEnvelope(data, &got, &names); err != nil {
				b.Fatal(err)
			}
		}
	})
}
