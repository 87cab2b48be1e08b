package shmbus

import (
	"errors"
	"testing"
	"time"

	"github.com/xbus-dev/xbus/bus"
)

func TestHello(t *testing.T) {
	ours := hello{version: segVersion, ringSize: DefaultRingSize, node: bus.NewNodeID(), timeout: DefaultPeerTimeout, codec: "gob"}
	peer := ours
	peer.node = bus.NewNodeID()
	b := peer.marshal()
	got, err := parseHello(b[:])
	if err != nil || got != peer {
		t.Fatalf("round trip: %+v, %v; want %+v", got, err, peer)
	}
	if err := ours.accept(&got); err != nil {
		t.Fatalf("accept: %v", err)
	}
	cases := map[string]struct {
		change func(h *hello, b []byte) []byte
		want   error
	}{
		"version":        {func(h *hello, b []byte) []byte { b[8]++; return b }, ErrPeerRefused},
		"version, short": {func(h *hello, b []byte) []byte { b[8]--; return b[:65] }, ErrPeerRefused},
		"ring size":      {func(h *hello, b []byte) []byte { h.ringSize *= 2; return nil }, ErrPeerRefused},
		"codec":          {func(h *hello, b []byte) []byte { h.codec = "msgpack"; return nil }, ErrPeerRefused},
		"magic":          {func(h *hello, b []byte) []byte { b[0] = 'y'; return b }, ErrHandshake},
		"short":          {func(h *hello, b []byte) []byte { return b[:11] }, ErrHandshake},
		"long":           {func(h *hello, b []byte) []byte { return append(b, 0) }, ErrHandshake},
		"codec length":   {func(h *hello, b []byte) []byte { b[36] = 33; return b }, ErrHandshake},
		"our node id":    {func(h *hello, b []byte) []byte { h.node = ours.node; return nil }, ErrHandshake},
		"zero node id":   {func(h *hello, b []byte) []byte { h.node = bus.NodeID{}; return nil }, ErrHandshake},
		"tiny timeout":   {func(h *hello, b []byte) []byte { h.timeout = time.Millisecond; return nil }, ErrHandshake},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			h := peer
			m := h.marshal()
			b := c.change(&h, m[:])
			if b == nil {
				m = h.marshal()
				b = m[:]
			}
			got, err := parseHello(b)
			if err == nil {
				err = ours.accept(&got)
			}
			if !errors.Is(err, c.want) {
				t.Fatalf("%v, want %v", err, c.want)
			}
			if errors.Is(err, bus.ErrRefused) != (c.want == ErrPeerRefused) {
				t.Fatalf("%v: wraps bus.ErrRefused %v", err, !errors.Is(err, bus.ErrRefused))
			}
		})
	}
	// No timeout, and one past what the field holds.
	for _, d := range []time.Duration{0, -time.Second, 100 * 24 * time.Hour} {
		h := peer
		h.timeout = d
		b := h.marshal()
		got, err := parseHello(b[:])
		if err != nil || ours.accept(&got) != nil || (d <= 0) != (got.timeout == 0) {
			t.Errorf("timeout %v: parsed %v, %v", d, got.timeout, err)
		}
	}
}

// FuzzHello feeds parseHello and accept any bytes: an error or a hello,
// never a panic.
func FuzzHello(f *testing.F) {
	h := hello{version: segVersion, ringSize: DefaultRingSize, node: bus.NewNodeID(), timeout: time.Second, codec: "cbor"}
	b := h.marshal()
	f.Add(b[:])
	f.Add(b[:12])
	f.Add([]byte{})
	ours := h
	ours.node = bus.NewNodeID()
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := parseHello(b)
		if err != nil {
			return
		}
		if len(got.codec) > 32 || got.timeout < 0 {
			t.Fatalf("parsed %+v", got)
		}
		_ = ours.accept(&got)
		re := got.marshal()
		if again, err := parseHello(re[:]); err != nil || again != got {
			t.Fatalf("re-parse %+v: %+v, %v", got, again, err)
		}
	})
}
