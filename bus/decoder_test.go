package bus_test

import (
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"

	. "github.com/xbus-dev/xbus/bus"
)

// An EnvelopeDecoder must agree with DecodeEnvelope on every input: the
// same envelope when both accept it, an ErrBadEnvelope from both otherwise,
// with or without the strings already in its cache.
func FuzzEnvelopeDecoder(f *testing.F) {
	node := NewNodeID()
	for _, e := range []Envelope{
		{Kind: KindTell, To: Ref{Name: "sink"}, Type: "[]uint8", Body: []byte{0x41, 1}},
		{Kind: KindAsk, From: Ref{Node: node, Name: "a", ID: 9}, To: Ref{Node: node, Name: "echo", ID: 3}, Corr: 1 << 40, Timeout: 5, Type: "t"},
		{Kind: KindReply, To: Ref{Node: node, ID: 1}, Headers: []Header{{Key: "k", Value: "v"}, {Key: "", Value: "x"}}},
		{Kind: KindSystem},
	} {
		b, err := e.AppendBinary(nil)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{WireVersion, 12, 0, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		var want Envelope
		werr := DecodeEnvelope(data, &want)
		var nd EnvelopeDecoder
		var first Envelope // data, decoded
		for i := range 2 { // the second time every string is cached
			var got Envelope
			err := nd.Decode(data, &got)
			first = got
			if (err == nil) != (werr == nil) {
				t.Fatalf("pass %d: error %v, DecodeEnvelope says %v", i, err, werr)
			}
			if err != nil {
				if !errors.Is(err, ErrBadEnvelope) {
					t.Fatalf("error %v does not wrap ErrBadEnvelope", err)
				}
				return
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("pass %d: decoded %+v, DecodeEnvelope %+v", i, got, want)
			}
		}
		// With data's header kept (if it was a tell's), what begins
		// like data, or stops short of it, decodes as DecodeEnvelope does.
		// So it does into an envelope that holds data's, as a reader's
		// slot does after a batch (its body and message cleared, or not).
		for _, other := range [][]byte{append(slices.Clone(data), 7, 8), data[:len(data)/2], data[:max(len(data)-1, 0)], data} {
			var got, want Envelope
			err, werr := nd.Decode(other, &got), DecodeEnvelope(other, &want)
			if (err == nil) != (werr == nil) || err == nil && !reflect.DeepEqual(got, want) {
				t.Fatalf("after %x, %x decoded %+v, %v; DecodeEnvelope %+v, %v", data, other, got, err, want, werr)
			}
			for _, msg := range []any{nil, "stale"} {
				slot := first
				slot.Body, slot.Msg = nil, msg
				if err := nd.Decode(other, &slot); err == nil && !reflect.DeepEqual(slot, want) {
					t.Fatalf("after %x, %x decoded into a used envelope %+v; DecodeEnvelope %+v", data, other, slot, want)
				}
			}
		}
	})
}

// A decoder that keeps the last tell's header decodes every envelope of a
// stream as DecodeEnvelope does: the same header again with other bodies,
// none or a longer one, then a header that differs in one byte, an ask, a
// tell with headers, and a tell that stops inside the kept header.
func TestEnvelopeDecoderLastHeader(t *testing.T) {
	node := NewNodeID()
	tell := Envelope{Kind: KindTell, To: Ref{Node: node, Name: "sink", ID: 2}, Type: "[]uint8"}
	var stream []Envelope
	for _, body := range [][]byte{{1}, {2, 3}, nil, make([]byte, 300)} {
		e := tell
		e.Body = body
		stream = append(stream, e)
	}
	other := tell
	other.To.Name, other.Body = "sinc", []byte{4}
	ask := tell
	ask.Kind, ask.Corr, ask.Body = KindAsk, 99, []byte{5}
	withHeaders := tell
	withHeaders.Headers, withHeaders.Body = []Header{{"k", "v"}}, []byte{6}
	stream = append(stream, other, tell, ask, withHeaders, tell)
	var nd EnvelopeDecoder
	for i, e := range stream {
		data, err := e.AppendBinary(nil)
		if err != nil {
			t.Fatal(err)
		}
		var got, want Envelope
		if err := nd.Decode(data, &got); err != nil {
			t.Fatalf("envelope %d: %v", i, err)
		}
		if err := DecodeEnvelope(data, &want); err != nil || !reflect.DeepEqual(got, want) {
			t.Fatalf("envelope %d: decoded %+v, DecodeEnvelope %+v, %v", i, got, want, err)
		}
	}
	data, _ := tell.AppendBinary(nil)
	var got Envelope
	if err := nd.Decode(data[:len(data)-3], &got); !errors.Is(err, ErrBadEnvelope) {
		t.Fatalf("a tell cut inside the kept header: %+v, %v", got, err)
	}
}

// A decoder that sees the same names again allocates nothing for them, and
// whatever comes (many distinct names, names longer than it caches), every
// envelope it returns is right.
func TestEnvelopeDecoderCachesNames(t *testing.T) {
	var nd EnvelopeDecoder
	node := NewNodeID()
	check := func(name string) {
		t.Helper()
		e := Envelope{Kind: KindTell, To: Ref{Node: node, Name: name, ID: 1}, Type: "t"}
		data, err := e.AppendBinary(nil)
		if err != nil {
			t.Fatal(err)
		}
		var got Envelope
		if err := nd.Decode(data, &got); err != nil || got.To.Name != name || got.Type != "t" {
			t.Fatalf("decoded %+v, %v; want name %q", got, err, name)
		}
	}
	for i := range 5000 {
		check(string([]byte{'a' + byte(i%26), byte('a' + i/26%26), byte('a' + i/676%26)}))
	}
	check(strings.Repeat("n", 200))
	e := Envelope{Kind: KindAsk, From: Ref{Node: node, Name: "client", ID: 7}, To: Ref{Name: "echo"}, Corr: 123456, Type: "[]uint8", Body: make([]byte, 66)}
	data, err := e.AppendBinary(nil)
	if err != nil {
		t.Fatal(err)
	}
	var got Envelope
	nd.Decode(data, &got)
	if allocs := testing.AllocsPerRun(100, func() { nd.Decode(data, &got) }); allocs > 0 {
		t.Fatalf("%.0f allocations decoding a header whose names are cached", allocs)
	}
}

// BenchmarkEnvelopeDecoder compares decoding a typical ask header with cached
// strings against DecodeEnvelope, which copies them.
func BenchmarkEnvelopeDecoder(b *testing.B) {
	e := Envelope{Kind: KindAsk, From: Ref{Node: NewNodeID(), Name: "client", ID: 7}, To: Ref{Name: "echo"}, Corr: 123456, Type: "[]uint8", Body: make([]byte, 66)}
	data, err := e.AppendBinary(nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("copied", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var got Envelope
			if err := DecodeEnvelope(data, &got); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("cached", func(b *testing.B) {
		b.ReportAllocs()
		var nd EnvelopeDecoder
		for b.Loop() {
			var got Envelope
			if err := nd.Decode(data, &got); err != nil {
				b.Fatal(err)
			}
		}
	})
}
