package bus_test

import (
	"bytes"
	"encoding/hex"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/xbus-dev/xbus/bus"
)

var (
	envNodeA = bus.NodeID{0: 0xa1, 15: 0xa2}
	envNodeB = bus.NodeID{0: 0xb1, 7: 0x77, 15: 0xb2}
)

// envCases are valid envelopes covering every kind and every optional field.
func envCases() []struct {
	name string
	env  bus.Envelope
} {
	manyHeaders := make([]bus.Header, bus.MaxHeaders)
	for i := range manyHeaders {
		manyHeaders[i] = bus.Header{Key: "k" + strings.Repeat("x", i), Value: strings.Repeat("v", i)}
	}
	cases := []struct {
		name string
		env  bus.Envelope
	}{
		{"ask full", bus.Envelope{
			Kind:    bus.KindAsk,
			From:    bus.Ref{Node: envNodeA, Name: "client", ID: 7},
			To:      bus.Ref{Node: envNodeB, Name: "orders", ID: 1 << 40},
			Corr:    42,
			Timeout: 5*time.Second + 6,
			Headers: []bus.Header{{"trace", "4bf92f3577b34da6"}, {"tenant", "acme"}},
			Type:    "orders.Place",
			Body:    []byte{0xa1, 0x61, 0x41, 0x01},
		}},
		{"to name only", bus.Envelope{Kind: bus.KindTell, To: bus.Ref{Name: "add"}}},
		{"from node only", bus.Envelope{Kind: bus.KindTell, From: bus.Ref{Node: envNodeA}}},
		{"anonymous from", bus.Envelope{Kind: bus.KindTell, From: bus.Ref{Node: envNodeA, ID: 3}, To: bus.Ref{Node: envNodeB, Name: "x", ID: 1}}},
		{"max corr", bus.Envelope{Kind: bus.KindReply, Corr: math.MaxUint64, Type: "int", Body: []byte{1}}},
		{"1 ns timeout", bus.Envelope{Kind: bus.KindAsk, Timeout: 1}},
		{"max timeout", bus.Envelope{Kind: bus.KindAsk, Timeout: math.MaxInt64}},
		{"empty header", bus.Envelope{Kind: bus.KindTell, Headers: []bus.Header{{}}}},
		{"max headers", bus.Envelope{Kind: bus.KindTell, Headers: manyHeaders}},
		{"largest header", bus.Envelope{Kind: bus.KindTell, Headers: []bus.Header{{
			Key: strings.Repeat("k", 100), Value: strings.Repeat("v", bus.MaxHeaderBytes-100)}}}},
		{"longest names and type", bus.Envelope{
			Kind: bus.KindPublish,
			From: bus.Ref{Node: envNodeA, Name: strings.Repeat("f", bus.MaxNameLen), ID: 1},
			To:   bus.Ref{Name: strings.Repeat("t", bus.MaxNameLen)},
			Type: strings.Repeat("T", bus.MaxTypeLen),
		}},
		{"body without type", bus.Envelope{Kind: bus.KindError, Corr: 9, Body: []byte("\x03bus: mailbox full")}},
		{"large body", bus.Envelope{Kind: bus.KindStreamItem, Corr: 1, Type: "[]uint8", Body: bytes.Repeat([]byte{0xee}, 64<<10)}},
		{"named codec", bus.Envelope{Kind: bus.KindAsk, Corr: 3, Codec: "json", Type: "string", Body: []byte(`"x"`)}},
		{"longest codec name", bus.Envelope{Kind: bus.KindReply, Codec: strings.Repeat("c", bus.MaxCodecLen), Type: "T"}},
		{"utf8 and binary strings", bus.Envelope{Kind: bus.KindSystem, To: bus.Ref{Name: "prices.€.>"},
			Headers: []bus.Header{{"\x00\xff", "\xc3\x28"}}, Type: "ünïcode"}},
	}
	for k := bus.KindTell; k <= bus.KindSystem; k++ {
		cases = append(cases, struct {
			name string
			env  bus.Envelope
		}{"kind " + k.String(), bus.Envelope{Kind: k, To: bus.Ref{Node: envNodeB, Name: "n", ID: uint64(k)}, Corr: uint64(k) * 1000}})
	}
	return cases
}

// envEqual compares the wire fields of two envelopes; an empty Body and a nil
// Body are the same on the wire.
func envEqual(a, b *bus.Envelope) bool {
	if len(a.Body) == 0 && len(b.Body) == 0 {
		a2, b2 := *a, *b
		a2.Body, b2.Body = nil, nil
		return reflect.DeepEqual(a2, b2)
	}
	return reflect.DeepEqual(*a, *b)
}

func TestEnvelopeRoundTrip(t *testing.T) {
	prefix := []byte("frame-header")
	for _, tc := range envCases() {
		t.Run(tc.name, func(t *testing.T) {
			dst := append([]byte(nil), prefix...)
			out, err := tc.env.AppendBinary(dst)
			if err != nil {
				t.Fatalf("AppendBinary: %v", err)
			}
			if !bytes.Equal(out[:len(prefix)], prefix) {
				t.Fatalf("AppendBinary changed the bytes already in dst")
			}
			var got bus.Envelope
			got.Msg = "stale" // DecodeEnvelope must overwrite every field
			if err := bus.DecodeEnvelope(out[len(prefix):], &got); err != nil {
				t.Fatalf("DecodeEnvelope: %v", err)
			}
			if got.Msg != nil {
				t.Fatalf("Msg = %v after decoding, want nil", got.Msg)
			}
			if !envEqual(&got, &tc.env) {
				t.Fatalf("round trip:\n got %+v\nwant %+v", got, tc.env)
			}
		})
	}
}

// TestEnvelopeLayout pins the byte layout that docs/envelope.md specifies.
func TestEnvelopeLayout(t *testing.T) {
	env := bus.Envelope{
		Kind:    bus.KindAsk,
		From:    bus.Ref{Node: envNodeA, Name: "c", ID: 7},
		To:      bus.Ref{Name: "add"},
		Corr:    300,
		Timeout: 2,
		Headers: []bus.Header{{"k", "v"}},
		Type:    "T",
		Body:    []byte{0xde, 0xad},
	}
	got, err := env.AppendBinary(nil)
	if err != nil {
		t.Fatal(err)
	}
	want := "02" + "02" + "0f" + // version 2, kind ask, flags from|to|timeout|headers
		"a10000000000000000000000000000a2" + "07" + "0163" + // from: node, id 7, name "c"
		"00000000000000000000000000000000" + "00" + "03616464" + // to: zero node, id 0, name "add"
		"ac02" + // corr 300
		"02" + // timeout 2 ns
		"01" + "016b" + "0176" + // one header k=v
		"0154" + // type "T"
		"dead" // body
	if h := hex.EncodeToString(got); h != want {
		t.Fatalf("layout\n got %s\nwant %s", h, want)
	}

	min, err := (&bus.Envelope{Kind: bus.KindTell}).AppendBinary(nil)
	if err != nil {
		t.Fatal(err)
	}
	if h := hex.EncodeToString(min); h != "0201000000" {
		t.Fatalf("smallest envelope %s, want 0201000000", h)
	}
}

func TestEnvelopeEncodeLimits(t *testing.T) {
	long := func(n int) string { return strings.Repeat("x", n) }
	cases := []struct {
		name string
		env  bus.Envelope
	}{
		{"kind zero", bus.Envelope{}},
		{"kind unknown", bus.Envelope{Kind: bus.KindSystem + 1}},
		{"kind 255", bus.Envelope{Kind: 255}},
		{"from name", bus.Envelope{Kind: bus.KindTell, From: bus.Ref{Name: long(bus.MaxNameLen + 1)}}},
		{"to name", bus.Envelope{Kind: bus.KindTell, To: bus.Ref{Name: long(bus.MaxNameLen + 1)}}},
		{"type", bus.Envelope{Kind: bus.KindTell, Type: long(bus.MaxTypeLen + 1)}},
		{"header count", bus.Envelope{Kind: bus.KindTell, Headers: make([]bus.Header, bus.MaxHeaders+1)}},
		{"header size", bus.Envelope{Kind: bus.KindTell, Headers: []bus.Header{{Key: "k", Value: long(bus.MaxHeaderBytes)}}}},
		{"negative timeout", bus.Envelope{Kind: bus.KindAsk, Timeout: -1}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.env.AppendBinary(nil)
			if !errors.Is(err, bus.ErrBadEnvelope) {
				t.Fatalf("AppendBinary error %v, want ErrBadEnvelope", err)
			}
		})
	}
}

// envFrame builds raw envelope bytes for the decoder tests.
func envFrame(parts ...any) []byte {
	var b []byte
	for _, p := range parts {
		switch p := p.(type) {
		case int:
			b = append(b, byte(p))
		case string:
			b = append(b, p...)
		case []byte:
			b = append(b, p...)
		}
	}
	return b
}

func TestDecodeEnvelopeRejects(t *testing.T) {
	const v = bus.WireVersion
	node := string(envNodeA[:])
	over := func(n int) []byte { // a uvarint length n followed by n bytes
		b := []byte{byte(n) | 0x80, byte(n >> 7)}
		return append(b, bytes.Repeat([]byte{'x'}, n)...)
	}
	cases := []struct {
		name string
		data []byte
	}{
		{"nil", nil},
		{"empty", []byte{}},
		{"two bytes", []byte{v, 1}},
		{"version 0", envFrame(0, 1, 0, 0, 0)},
		{"version 1 (a deadline as a time of day)", envFrame(1, 1, 4, 0, 2, 0)},
		{"version 3", envFrame(3, 1, 0, 0, 0)},
		{"kind 0", envFrame(v, 0, 0, 0, 0)},
		{"kind 10", envFrame(v, 10, 0, 0, 0)},
		{"kind 255", envFrame(v, 255, 0, 0, 0)},
		{"unknown flag", envFrame(v, 1, 0x10, 0, 0)},
		{"all flags", envFrame(v, 1, 0xff, 0, 0)},
		{"no corr", envFrame(v, 1, 0)},
		{"no type", envFrame(v, 1, 0, 0)},
		{"truncated node", envFrame(v, 1, 1, node[:15])},
		{"from without name", envFrame(v, 1, 1, node, 0)},
		{"name over limit", envFrame(v, 1, 1, node, 0, over(bus.MaxNameLen+1), 0, 0)},
		{"name past end", envFrame(v, 1, 2, node, 0, 5, "abc")},
		{"corr overflow", envFrame(v, 1, 0, strings.Repeat("\xff", 10), 1, 0)},
		{"corr unterminated", envFrame(v, 1, 0, "\x80\x80\x80")},
		{"timeout missing", envFrame(v, 1, 4, 0)},
		{"timeout overflow", envFrame(v, 1, 4, 0, strings.Repeat("\xff", 10), 1, 0)},
		{"timeout over MaxInt64", envFrame(v, 1, 4, 0, strings.Repeat("\x80", 9)+"\x01", 0)},
		{"zero headers", envFrame(v, 1, 8, 0, 0, 0)},
		{"too many headers", envFrame(v, 1, 8, 0, bus.MaxHeaders+1, strings.Repeat("\x00", 2*(bus.MaxHeaders+1)), 0)},
		{"huge header count", envFrame(v, 1, 8, 0, "\xff\xff\xff\xff\x0f", 0)},
		{"header count past end", envFrame(v, 1, 8, 0, 3, 0, 0)},
		{"header too long", envFrame(v, 1, 8, 0, 1, 1, "k", over(bus.MaxHeaderBytes), 0)},
		{"header value past end", envFrame(v, 1, 8, 0, 1, 1, "k", 9, "v")},
		{"type over limit", envFrame(v, 1, 0, 0, over(bus.MaxTypeLen+1))},
		{"type past end", envFrame(v, 1, 0, 0, 4, "abc")},
		{"type length huge", envFrame(v, 1, 0, 0, "\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01")},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var e bus.Envelope
			err := bus.DecodeEnvelope(tc.data, &e)
			if !errors.Is(err, bus.ErrBadEnvelope) {
				t.Fatalf("DecodeEnvelope(%x) = %v, want ErrBadEnvelope", tc.data, err)
			}
		})
	}
}

// TestDecodeEnvelopeEveryPrefix cuts every valid encoding at every length: a
// cut inside the header fields is an error; a cut inside the body decodes
// to the same envelope with a shorter body (the frame, not the envelope,
// carries the length).
func TestDecodeEnvelopeEveryPrefix(t *testing.T) {
	for _, tc := range envCases() {
		data, err := tc.env.AppendBinary(nil)
		if err != nil {
			t.Fatal(err)
		}
		headerLen := len(data) - len(tc.env.Body)
		step := 1
		if len(data) > 4096 {
			step = 97 // large bodies: sample the body cuts
		}
		for n := 0; n < len(data); n++ {
			if n > headerLen && step > 1 && n%step != 0 {
				continue
			}
			var got bus.Envelope
			err := bus.DecodeEnvelope(data[:n], &got)
			if n < headerLen {
				if !errors.Is(err, bus.ErrBadEnvelope) {
					t.Fatalf("%s: prefix %d of %d: err %v, want ErrBadEnvelope", tc.name, n, len(data), err)
				}
				continue
			}
			if err != nil {
				t.Fatalf("%s: prefix %d (body cut): %v", tc.name, n, err)
			}
			want := tc.env
			want.Body = tc.env.Body[:n-headerLen]
			if !envEqual(&got, &want) {
				t.Fatalf("%s: prefix %d: got %+v", tc.name, n, got)
			}
		}
	}
}

// TestDecodeEnvelopeCorrupted changes every byte of every valid encoding in
// several ways: each result decodes to an error or to an envelope that
// survives a second round trip.
func TestDecodeEnvelopeCorrupted(t *testing.T) {
	for _, tc := range envCases() {
		data, err := tc.env.AppendBinary(nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(data) > 4096 {
			data = data[:len(data)-len(tc.env.Body)]
		}
		step := 1
		if len(data) > 512 {
			step = 7 // long strings: sample their bytes; every field boundary is still hit in the short cases
		}
		buf := make([]byte, len(data))
		for i := 0; i < len(data); i += step {
			for _, v := range []byte{data[i] ^ 0xff, data[i] ^ 0x80, data[i] ^ 0x01, data[i] + 1, 0, 0xff, 0x7f} {
				copy(buf, data)
				buf[i] = v
				envCheckDecode(t, buf)
			}
		}
	}
}

// envCheckDecode decodes data and, if it decodes, checks what a decoded
// envelope must satisfy: its strings and headers fit in data (so a decoder
// cannot allocate more than its input justifies), Body aliases data, and
// re-encoding it decodes to an equal envelope.
func envCheckDecode(t *testing.T, data []byte) {
	t.Helper()
	var e bus.Envelope
	if err := bus.DecodeEnvelope(data, &e); err != nil {
		if !errors.Is(err, bus.ErrBadEnvelope) {
			t.Fatalf("DecodeEnvelope(%x): error %v does not wrap ErrBadEnvelope", data, err)
		}
		return
	}
	if e.Kind < bus.KindTell || e.Kind > bus.KindSystem {
		t.Fatalf("decoded unknown kind %d", e.Kind)
	}
	if len(e.From.Name) > bus.MaxNameLen || len(e.To.Name) > bus.MaxNameLen || len(e.Type) > bus.MaxTypeLen {
		t.Fatalf("decoded string over its limit")
	}
	if len(e.Headers) > bus.MaxHeaders || cap(e.Headers) > bus.MaxHeaders {
		t.Fatalf("decoded %d headers (cap %d), limit %d", len(e.Headers), cap(e.Headers), bus.MaxHeaders)
	}
	// Every decoded byte came from the input: names, type, each header (and
	// at least one length byte per key and per value), and the body.
	used := 3 + len(e.From.Name) + len(e.To.Name) + len(e.Type) + len(e.Body) + 2*len(e.Headers)
	for _, h := range e.Headers {
		if len(h.Key)+len(h.Value) > bus.MaxHeaderBytes {
			t.Fatalf("decoded header of %d bytes, limit %d", len(h.Key)+len(h.Value), bus.MaxHeaderBytes)
		}
		used += len(h.Key) + len(h.Value)
	}
	if used > len(data) {
		t.Fatalf("decoded %d bytes of fields from %d bytes of input", used, len(data))
	}
	if len(e.Body) > 0 && &e.Body[len(e.Body)-1] != &data[len(data)-1] {
		t.Fatalf("Body does not alias the end of the input")
	}
	again, err := e.AppendBinary(nil)
	if err != nil {
		t.Fatalf("re-encoding a decoded envelope: %v (%+v)", err, e)
	}
	var e2 bus.Envelope
	if err := bus.DecodeEnvelope(again, &e2); err != nil {
		t.Fatalf("decoding a re-encoded envelope: %v", err)
	}
	if !envEqual(&e, &e2) {
		t.Fatalf("re-encoding changed the envelope:\n%+v\n%+v", e, e2)
	}
	if len(again) > len(data) {
		t.Fatalf("re-encoding grew %d bytes to %d", len(data), len(again))
	}
}

func FuzzDecodeEnvelope(f *testing.F) {
	for _, tc := range envCases() {
		data, err := tc.env.AppendBinary(nil)
		if err != nil {
			f.Fatal(err)
		}
		if len(data) > 4096 {
			data = data[:4096]
		}
		f.Add(data)
	}
	f.Add([]byte{bus.WireVersion, 1, 8, 0, 64})
	f.Fuzz(func(t *testing.T, data []byte) {
		envCheckDecode(t, data)
	})
}

func TestEnvelopeAppendAllocs(t *testing.T) {
	env := envCases()[0].env
	buf := make([]byte, 0, 1024)
	allocs := testing.AllocsPerRun(100, func() {
		var err error
		buf, err = env.AppendBinary(buf[:0])
		if err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("AppendBinary into a reused buffer: %v allocs, want 0", allocs)
	}
}

func BenchmarkEnvelopeAppendBinary(b *testing.B) {
	env := envCases()[0].env
	buf := make([]byte, 0, 1024)
	b.ReportAllocs()
	for b.Loop() {
		buf, _ = env.AppendBinary(buf[:0])
	}
	b.SetBytes(int64(len(buf)))
}

func BenchmarkDecodeEnvelope(b *testing.B) {
	env := envCases()[0].env
	data, _ := env.AppendBinary(nil)
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	var e bus.Envelope
	for b.Loop() {
		if err := bus.DecodeEnvelope(data, &e); err != nil {
			b.Fatal(err)
		}
	}
}

func TestEnvelopeAccessors(t *testing.T) {
	e := bus.Envelope{Headers: []bus.Header{{"a", "1"}, {"a", "2"}, {"b", ""}}}
	if v, ok := e.Header("a"); !ok || v != "1" {
		t.Fatalf(`Header("a") = %q, %v; want the first, "1"`, v, ok)
	}
	if v, ok := e.Header("b"); !ok || v != "" {
		t.Fatalf(`Header("b") = %q, %v`, v, ok)
	}
	if _, ok := e.Header("c"); ok {
		t.Fatal(`Header("c") found`)
	}
	if s := bus.Kind(0).String(); s != "invalid" {
		t.Fatalf("Kind(0) = %q", s)
	}
	if s := bus.Kind(200).String(); s != "kind(200)" {
		t.Fatalf("Kind(200) = %q", s)
	}
}
