package shmbus

import (
	"errors"
	"fmt"
	"strings"
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
	if name, err := ours.accept(&got, true); err != nil || name != "gob" {
		t.Fatalf("accept: %q, %v; want gob, the codec both prefer", name, err)
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
				_, err = ours.accept(&got, true)
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
		if err == nil {
			_, err = ours.accept(&got, true)
		}
		if err != nil || (d <= 0) != (got.timeout == 0) {
			t.Errorf("timeout %v: parsed %v, %v", d, got.timeout, err)
		}
	}
}

// TestHelloAgreesCodec: accept returns the codec of the link, the same
// at the dialer and at the acceptor (codec.Agree), whichever codecs the
// two prefer.
func TestHelloAgreesCodec(t *testing.T) {
	for _, c := range []struct{ dialer, acceptor, want string }{
		{"cbor", "cbor", "cbor"},
		{"gob", "gob", "gob"},
		{"cbor", "json", "json"},
		{"json", "cbor", "cbor"},
		{"gob", "json", "json"},
		{"json", "gob", "json"},
		{"gob", "msgpack", ""},
	} {
		d := hello{version: segVersion, ringSize: DefaultRingSize, node: bus.NewNodeID(), codec: c.dialer}
		a := d
		a.node, a.codec = bus.NewNodeID(), c.acceptor
		atDialer, errD := d.accept(&a, true)
		atAcceptor, errA := a.accept(&d, false)
		if c.want == "" {
			if !errors.Is(errD, ErrPeerRefused) || !errors.Is(errA, ErrPeerRefused) {
				t.Errorf("%s dialing %s: %v, %v; want ErrPeerRefused at both ends", c.dialer, c.acceptor, errD, errA)
			}
			continue
		}
		if errD != nil || errA != nil || atDialer != c.want || atAcceptor != c.want {
			t.Errorf("%s dialing %s: %q (%v) at the dialer, %q (%v) at the acceptor; want %q", c.dialer, c.acceptor, atDialer, errD, atAcceptor, errA, c.want)
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
		_, _ = ours.accept(&got, true)
		re := got.marshal()
		if again, err := parseHello(re[:]); err != nil || again != got {
			t.Fatalf("re-parse %+v: %+v, %v", got, again, err)
		}
	})
}

// TestHelloRefusesVersion5: a peer of protocol version 5 knows no abort
// record and would take one for corruption, so its hello is refused with
// ErrPeerRefused, naming both versions, before anything is mapped.
func TestHelloRefusesVersion5(t *testing.T) {
	old := hello{version: 5, ringSize: DefaultRingSize, node: bus.NewNodeID(), codec: "cbor"}
	b := old.marshal()
	_, err := parseHello(b[:])
	if !errors.Is(err, ErrPeerRefused) || !strings.Contains(err.Error(), "version 5") || !strings.Contains(err.Error(), fmt.Sprint(segVersion)) {
		t.Fatalf("hello of version 5: %v, want a refusal naming versions 5 and %d", err, segVersion)
	}
}
