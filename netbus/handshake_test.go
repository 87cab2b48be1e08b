package netbus

import (
	"bytes"
	"errors"
	"testing"

	"github.com/xbus-dev/xbus/bus"
)

func hsPair(mod func(d, a *hsConfig)) (d, a hsConfig) {
	d = hsConfig{Node: bus.NewNodeID(), Codec: "json", Decode: compS2 | compZstd, Compress: S2, Dialer: true,
		LinkID: 42, Conn: 1, Pool: 2, MaxFrame: 1 << 20, Nonce: [32]byte{1}}
	a = hsConfig{Node: bus.NewNodeID(), Codec: "json", Decode: compS2 | compZstd, Compress: Zstd, MaxFrame: 1 << 16, Nonce: [32]byte{2}}
	if mod != nil {
		mod(&d, &a)
	}
	return d, a
}

// runHandshake drives two cores against each other, delivering the bytes one
// chunk of size chunk at a time, as a network might.
func runHandshake(t *testing.T, dc, ac hsConfig, chunk int) (d, a *handshake, derr, aerr error) {
	t.Helper()
	d, a = newHandshake(dc), newHandshake(ac)
	toA, toD := d.start(), a.start()
	for range 1000 {
		if (d.done() || derr != nil) && (a.done() || aerr != nil) {
			return
		}
		if len(toA) == 0 && len(toD) == 0 {
			return // stuck: the caller checks done
		}
		if len(toA) > 0 && aerr == nil && !a.done() {
			n := min(chunk, len(toA))
			out, err := a.feed(toA[:n])
			toA = toA[n:]
			toD = append(toD, out...)
			aerr = err
		} else {
			toA = nil
		}
		if len(toD) > 0 && derr == nil && !d.done() {
			n := min(chunk, len(toD))
			out, err := d.feed(toD[:n])
			toD = toD[n:]
			toA = append(toA, out...)
			derr = err
		} else {
			toD = nil
		}
	}
	t.Fatal("handshake did not converge")
	return
}

func TestHandshakeOK(t *testing.T) {
	for _, secret := range [][]byte{nil, []byte("s3cret")} {
		for _, chunk := range []int{1, 7, 1 << 20} {
			dc, ac := hsPair(func(d, a *hsConfig) { d.Secret, a.Secret = secret, secret })
			d, a, derr, aerr := runHandshake(t, dc, ac, chunk)
			if derr != nil || aerr != nil || !d.done() || !a.done() {
				t.Fatalf("secret %q chunk %d: dialer %v done=%v, acceptor %v done=%v", secret, chunk, derr, d.done(), aerr, a.done())
			}
			dr, ar := d.result(), a.result()
			if dr.Peer != ac.Node || ar.Peer != dc.Node {
				t.Fatalf("peers: %v %v", dr.Peer, ar.Peer)
			}
			if ar.LinkID != 42 || ar.Conn != 1 || ar.Pool != 2 || dr.LinkID != 42 || dr.Pool != 2 {
				t.Fatalf("pool identity: dialer %+v acceptor %+v", dr, ar)
			}
			if dr.SendComp != compS2 || ar.SendComp != compZstd {
				t.Fatalf("compression: dialer sends %d, acceptor %d", dr.SendComp, ar.SendComp)
			}
			if dr.PeerMaxFrame != 1<<16 || ar.PeerMaxFrame != 1<<20 {
				t.Fatalf("max frames: %d %d", dr.PeerMaxFrame, ar.PeerMaxFrame)
			}
		}
	}
}

// Ends that prefer different codecs agree on one from the two hellos: the
// acceptor's when the dialer has it, else the dialer's; both results name
// the same.
func TestHandshakeCodecAgreement(t *testing.T) {
	for _, c := range []struct{ dialer, acceptor, want string }{
		{"json", "json", "json"},
		{"cbor", "json", "json"},
		{"json", "cbor", "cbor"},
		{"gob", "cbor", "cbor"},
		{"cbor", "gob", "cbor"},
	} {
		dc, ac := hsPair(func(d, a *hsConfig) { d.Codec, a.Codec = c.dialer, c.acceptor })
		d, a, derr, aerr := runHandshake(t, dc, ac, 3)
		if derr != nil || aerr != nil || !d.done() || !a.done() {
			t.Fatalf("%s to %s: %v, %v", c.dialer, c.acceptor, derr, aerr)
		}
		if d.result().Codec != c.want || a.result().Codec != c.want {
			t.Fatalf("%s to %s: the dialer agreed on %q, the acceptor on %q, want %q", c.dialer, c.acceptor, d.result().Codec, a.result().Codec, c.want)
		}
	}
}

func TestHandshakeCompressionNegotiation(t *testing.T) {
	dc, ac := hsPair(func(d, a *hsConfig) { d.Compress = Zstd; a.Decode = compS2; a.Compress = NoCompression })
	d, a, derr, aerr := runHandshake(t, dc, ac, 5)
	if derr != nil || aerr != nil {
		t.Fatal(derr, aerr)
	}
	if d.result().SendComp != compNone || a.result().SendComp != compNone {
		t.Fatalf("want no compression either way, got %d and %d", d.result().SendComp, a.result().SendComp)
	}
}

func TestHandshakeRefused(t *testing.T) {
	cases := []struct {
		name string
		mod  func(d, a *hsConfig)
		want error
	}{
		{"wrong secret", func(d, a *hsConfig) { d.Secret, a.Secret = []byte("a"), []byte("b") }, ErrAuth},
		{"dialer without secret", func(d, a *hsConfig) { a.Secret = []byte("b") }, ErrAuth},
		{"acceptor without secret", func(d, a *hsConfig) { d.Secret = []byte("b") }, ErrAuth},
		{"codec", func(d, a *hsConfig) { d.Codec, a.Codec = "gob", "msgpack" }, ErrCodecMismatch},
		{"same role", func(d, a *hsConfig) { a.Dialer = true }, ErrHandshake},
		{"self", func(d, a *hsConfig) { a.Node = d.Node }, ErrHandshake},
		{"bad pool", func(d, a *hsConfig) { d.Conn = 2 }, ErrHandshake},
		{"tiny max frame", func(d, a *hsConfig) { d.MaxFrame = 10 }, ErrHandshake},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dc, ac := hsPair(c.mod)
			d, a, derr, aerr := runHandshake(t, dc, ac, 3)
			if d.done() && a.done() {
				t.Fatal("handshake completed")
			}
			if !errors.Is(derr, c.want) || !errors.Is(aerr, c.want) {
				t.Fatalf("want %v on both sides, dialer %v, acceptor %v", c.want, derr, aerr)
			}
		})
	}
}

func TestHandshakeBadMagicAndVersion(t *testing.T) {
	_, ac := hsPair(nil)
	for _, tc := range []struct {
		in   []byte
		want error
	}{
		{[]byte("GET / HTTP/1.1\r\n"), ErrBadMagic},
		{[]byte("XBU!"), ErrBadMagic},
		{[]byte("XBUS\x01rest"), ErrVersion}, // version 1: pings without acknowledgements
		{[]byte("XBUS\x02rest"), ErrVersion}, // version 2: close frames without a read count
		{[]byte("XBUS\x03rest"), ErrVersion}, // version 3: no repeat frames
		{[]byte("XBUS\x05rest"), ErrVersion},
	} {
		a := newHandshake(ac)
		a.start()
		out, err := a.feed(tc.in)
		if !errors.Is(err, tc.want) {
			t.Fatalf("%q: got %v, want %v", tc.in, err, tc.want)
		}
		// The refusal goes back as a close frame that the peer decodes into
		// the same sentinel.
		fr := frameReader{r: bytes.NewReader(out), max: 4096}
		typ, flags, p, rerr := fr.next()
		if rerr != nil || typ != frameClose {
			t.Fatalf("%q: answer %q is not a close frame: %v", tc.in, out, rerr)
		}
		if _, _, perr := parseClose(flags, p); !errors.Is(perr, tc.want) || !errors.Is(perr, ErrRejected) {
			t.Fatalf("%q: peer would see %v", tc.in, perr)
		}
	}
}

// A proof recorded from one connection is useless on another: the nonces
// differ, so the transcript differs.
func TestHandshakeReplay(t *testing.T) {
	secret := []byte("k")
	dc, ac := hsPair(func(d, a *hsConfig) { d.Secret, a.Secret = secret, secret })
	d := newHandshake(dc)
	a := newHandshake(ac)
	helloD := d.start()
	helloA := a.start()
	recAuth, err := d.feed(helloA) // the dialer's auth frame, recorded
	if err != nil {
		t.Fatal(err)
	}
	// An attacker replays the dialer's hello and proof to a fresh acceptor
	// incarnation with a new nonce.
	ac.Nonce = [32]byte{9}
	a2 := newHandshake(ac)
	a2.start()
	if _, err := a2.feed(append(append([]byte(nil), helloD...), recAuth...)); !errors.Is(err, ErrAuth) {
		t.Fatalf("replayed proof: got %v, want ErrAuth", err)
	}
	// Reflection: sending the acceptor its own proof back fails too.
	a3 := newHandshake(ac)
	a3.start()
	own, err := a3.feed(helloD)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a3.feed(own); !errors.Is(err, ErrAuth) {
		t.Fatalf("reflected proof: got %v, want ErrAuth", err)
	}
	_ = a
}

func FuzzHandshake(f *testing.F) {
	dc, ac := hsPair(func(d, a *hsConfig) { d.Secret, a.Secret = []byte("k"), []byte("k") })
	d := newHandshake(dc)
	hello := d.start()
	f.Add(hello, 3)
	f.Add([]byte("XBUS\x01"), 1)
	f.Add(append(append([]byte(nil), hello...), 0, 0, 0, 32, frameAuth, 0), 10)
	f.Add(append(append([]byte(nil), hello...), 0, 0, 0, 4, frameClose, 0, 2, 'x', 'y', 'z'), 10)
	f.Fuzz(func(t *testing.T, in []byte, chunk int) {
		if chunk <= 0 {
			chunk = 1
		}
		a := newHandshake(ac)
		a.start()
		for len(in) > 0 && !a.done() {
			n := min(chunk, len(in))
			out, err := a.feed(in[:n])
			in = in[n:]
			if len(a.in) > a.maxBuffer+n {
				t.Fatalf("buffered %d bytes", len(a.in))
			}
			if err != nil {
				if len(out) == 0 && !errors.Is(err, ErrRejected) {
					t.Fatalf("error %v without a close frame", err)
				}
				return
			}
		}
		if a.done() {
			// Only a peer holding the secret gets here.
			t.Fatalf("fuzz input completed an authenticated handshake")
		}
	})
}
