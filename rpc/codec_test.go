package rpc_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"

	"github.com/xbus-dev/xbus/bus"
	"github.com/xbus-dev/xbus/codec"
	jsoncodec "github.com/xbus-dev/xbus/codec/json"
	"github.com/xbus-dev/xbus/codec/raw"
	"github.com/xbus-dev/xbus/rpc"
)

// countingCodec is JSON under a name of its own that counts its use, so a
// test sees which codec carried a call, and that in process none did.
type countingCodec struct {
	name             string
	appends, decodes atomic.Int64
}

func (c *countingCodec) Name() string { return c.name }
func (c *countingCodec) Append(dst []byte, v any) ([]byte, error) {
	c.appends.Add(1)
	b, err := json.Marshal(v)
	return append(dst, b...), err
}
func (c *countingCodec) Decode(data []byte, v any) error {
	c.decodes.Add(1)
	return json.Unmarshal(data, v)
}

// used returns how many bodies c encoded and decoded while f ran.
func (c *countingCodec) used(f func()) (appends, decodes int64) {
	a, d := c.appends.Load(), c.decodes.Load()
	f()
	return c.appends.Load() - a, c.decodes.Load() - d
}

var (
	callCodec  = &countingCodec{name: "test-call"}  // chosen per call; the handler's node is given it
	replyCodec = &countingCodec{name: "test-reply"} // chosen by a handler (WithServerCodec)
)

var _ = addServe(func(t *testing.T, p *pair) []string {
	t.Helper()
	if err := p.B.RegisterCodec(callCodec); err != nil {
		t.Fatal(err)
	}
	if err := p.A.RegisterCodec(replyCodec); err != nil {
		t.Fatal(err)
	}
	add := func(_ context.Context, a Add) (Sum, error) { return Sum{a.A + a.B}, nil }
	for _, err := range []error{
		second(rpc.Handle(p.B, "codec.add", add)),
		second(rpc.Handle(p.B, "codec.bytes", func(_ context.Context, b []byte) ([]byte, error) {
			r := bytes.Clone(b)
			slices.Reverse(r)
			return r, nil
		})),
		second(rpc.Handle(p.B, "codec.replies", add, rpc.WithServerCodec(replyCodec))),
		second(rpc.HandleServerStream(p.B, "codec.count", count)),
		second(rpc.HandleServerStream(p.B, "codec.count.replies", count, rpc.WithServerCodec(replyCodec))),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	return []string{"codec.add", "codec.bytes", "codec.replies", "codec.count", "codec.count.replies"}
})

// count streams Sum{1} .. Sum{a.A}.
func count(_ context.Context, a Add, send func(Sum) error) error {
	for i := range a.A {
		if err := send(Sum{i + 1}); err != nil {
			return err
		}
	}
	return nil
}

// streamSum ranges over a server stream from name and sums its items.
func streamSum(t *testing.T, p *pair, name string, opts ...rpc.CallOption) int {
	t.Helper()
	n := 0
	for s, err := range rpc.CallServerStream[Sum](ctxFor(t), p.A, name, Add{A: 3}, opts...) {
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		n += s.N
	}
	return n
}

func second[T any](_ T, err error) error { return err }

var _ = addRows(
	row{name: "CodecPerCall", run: func(t *testing.T, p *pair) {
		remote := p.A != p.B
		for _, c := range []bus.Codec{codec.Binary(), jsoncodec.Codec, callCodec} {
			var got Sum
			var err error
			a, d := callCodec.used(func() {
				got, err = rpc.Call[Sum](ctxFor(t), p.A, "codec.add", Add{2, 3}, rpc.WithCodec(c))
			})
			if err != nil || got.N != 5 {
				t.Fatalf("%s: %v, %v; want 5", c.Name(), got, err)
			}
			want := int64(0) // in process nothing is encoded
			if remote && c == bus.Codec(callCodec) {
				want = 2 // the request and the response, each encoded and decoded once
			}
			if a != want || d != want {
				t.Fatalf("%s: the counting codec encoded %d and decoded %d bodies, want %d each", c.Name(), a, d, want)
			}
		}
		got, err := rpc.Call[[]byte](ctxFor(t), p.A, "codec.bytes", []byte{1, 2, 3}, rpc.WithCodec(raw.Codec))
		if err != nil || !bytes.Equal(got, []byte{3, 2, 1}) {
			t.Fatalf("raw: %v, %v", got, err)
		}
	}},
	row{name: "CodecChosenByHandler", run: func(t *testing.T, p *pair) {
		var got Sum
		var err error
		a, d := replyCodec.used(func() { got, err = rpc.Call[Sum](ctxFor(t), p.A, "codec.replies", Add{1, 1}) })
		if err != nil || got.N != 2 {
			t.Fatalf("%v, %v", got, err)
		}
		want := int64(0)
		if p.A != p.B {
			want = 1 // the response only: the call went in the link's codec
		}
		if a != want || d != want {
			t.Fatalf("the handler's codec encoded %d and decoded %d bodies, want %d each", a, d, want)
		}
	}},
	row{name: "CodecOfStreams", run: func(t *testing.T, p *pair) {
		var n int
		a, d := callCodec.used(func() { n = streamSum(t, p, "codec.count", rpc.WithCodec(callCodec)) })
		want := int64(0)
		if p.A != p.B {
			want = 4 // the open, and three items back in its codec
		}
		if n != 6 || a != want || d != want {
			t.Fatalf("a stream in the caller's codec: sum %d, the codec encoded %d and decoded %d bodies, want 6, %d and %d", n, a, d, want, want)
		}
		a, d = replyCodec.used(func() { n = streamSum(t, p, "codec.count.replies") })
		if p.A != p.B {
			want = 3 // the items only
		}
		if n != 6 || a != want || d != want {
			t.Fatalf("a stream in the handler's codec: sum %d, the codec encoded %d and decoded %d bodies, want 6, %d and %d", n, a, d, want, want)
		}
	}},
	row{name: "UnknownCodec", remote: true, run: func(t *testing.T, p *pair) {
		stranger := &countingCodec{name: fmt.Sprintf("unknown-%p", t)}
		before := p.B.DeadLetterCount(bus.ErrUnknownCodec)
		_, err := rpc.Call[Sum](ctxFor(t), p.A, "codec.add", Add{1, 2}, rpc.WithCodec(stranger))
		if !errors.Is(err, bus.ErrUnknownCodec) || rpc.Code(err) != bus.CodeUnknownCodec {
			t.Fatalf("a call in a codec the handler's node lacks: %v (code %d), want ErrUnknownCodec", err, rpc.Code(err))
		}
		if n := p.B.DeadLetterCount(bus.ErrUnknownCodec); n != before+1 {
			t.Fatalf("dead letters for the unknown codec on the handler's node: %d, want %d", n, before+1)
		}
		if got, err := rpc.Call[Sum](ctxFor(t), p.A, "codec.add", Add{1, 2}); err != nil || got.N != 3 {
			t.Fatalf("the next call on the link: %v, %v", got, err)
		}
		// A stream opened in it ends with the same refusal.
		var last error
		for _, err := range rpc.CallServerStream[Sum](ctxFor(t), p.A, "codec.count", Add{A: 3}, rpc.WithCodec(stranger)) {
			last = err
		}
		if !errors.Is(last, bus.ErrUnknownCodec) {
			t.Fatalf("a stream opened in a codec the handler's node lacks ended with %v, want ErrUnknownCodec", last)
		}
		if n := streamSum(t, p, "codec.count"); n != 6 {
			t.Fatalf("a stream after the refusal: sum %d", n)
		}
	}},
	row{name: "RawRefusesStructs", remote: true, run: func(t *testing.T, p *pair) {
		_, err := rpc.Call[Sum](ctxFor(t), p.A, "codec.add", Add{1, 2}, rpc.WithCodec(raw.Codec))
		if !errors.Is(err, bus.ErrUnsupported) {
			t.Fatalf("a struct sent with the raw codec: %v, want ErrUnsupported", err)
		}
	}},
)
