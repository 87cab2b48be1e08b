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
		{[]byte("XBUS\x00rest"), ErrVersion},
		{[]byte("XBUS\x01rest"), ErrVersion}, // version 1: pings without acknowledgements
		{[]byte("XBUS\x02rest"), ErrVersion}, // version 2: close frames without a read count
	} {
		a := newHandshake(ac)
		if hello := a.start(); len(hello) != 0 {
			t.Fatalf("the acceptor sent %d bytes before the dialer's hello", len(hello))
		}
		out, err := a.feed(tc.in)
		if !errors.Is(err, tc.want) {
			t.Fatalf("%q: got %v, want %v", tc.in, err, tc.want)
		}
		// The refusal goes back after the acceptor's hello, naming its
		// highest version, as a close frame that the peer decodes into the
		// same sentinel.
		if len(out) < helloFixed+len(ac.Codec) || !bytes.Equal(out[:4], magic[:]) || out[4] != maxVersion {
			t.Fatalf("%q: answer %q does not begin with a hello of version %d", tc.in, out, maxVersion)
		}
		out = out[helloFixed+len(ac.Codec):]
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

// The connection speaks the highest version both ends speak: the dialer
// offers its highest, the acceptor answers with the lower of it and its
// own; an offer above what the acceptor speaks (a newer node) comes down to
// the acceptor's. A dialer refuses an answer above its offer or below 3.
func TestHandshakeVersionNegotiation(t *testing.T) {
	for _, c := range []struct{ dialer, acceptor, want uint8 }{
		{4, 4, 4},
		{3, 4, 3},
		{4, 3, 3},
		{3, 3, 3},
		{5, 4, 4}, // a newer dialer offering 5 falls back to 4
		{255, 3, 3},
	} {
		dc, ac := hsPair(func(d, a *hsConfig) { d.Version, a.Version = c.dialer, c.acceptor })
		for _, secret := range [][]byte{nil, []byte("k")} {
			dc.Secret, ac.Secret = secret, secret
			d, a, derr, aerr := runHandshake(t, dc, ac, 5)
			if derr != nil || aerr != nil || !d.done() || !a.done() {
				t.Fatalf("dialer %d, acceptor %d: %v, %v", c.dialer, c.acceptor, derr, aerr)
			}
			if d.result().Version != c.want || a.result().Version != c.want {
				t.Fatalf("dialer %d, acceptor %d: the dialer speaks %d, the acceptor %d, want %d", c.dialer, c.acceptor, d.result().Version, a.result().Version, c.want)
			}
			if d.mine[4] != c.dialer || a.mine[4] != c.want {
				t.Fatalf("dialer %d, acceptor %d: hellos of versions %d and %d", c.dialer, c.acceptor, d.mine[4], a.mine[4])
			}
		}
	}
	// The acceptor's hello answering above the offer, or below 3.
	for _, answer := range []byte{2, 5} {
		dc, ac := hsPair(func(d, a *hsConfig) { d.Version = 4 })
		ac.Version = answer
		if answer > maxVersion {
			ac.Version = maxVersion
		}
		a := newHandshake(ac)
		d := newHandshake(dc)
		out, err := a.feed(d.start())
		if err != nil {
			t.Fatal(err)
		}
		out[4] = answer
		if _, err := d.feed(out); !errors.Is(err, ErrVersion) {
			t.Fatalf("answer %d: dialer got %v, want ErrVersion", answer, err)
		}
	}
	// A downgrade by a man in the middle (the offer rewritten to 3) fails
	// the proofs, which cover both hellos as sent.
	dc, ac := hsPair(func(d, a *hsConfig) { d.Secret, a.Secret = []byte("k"), []byte("k") })
	d, a := newHandshake(dc), newHandshake(ac)
	hello := d.start()
	tampered := bytes.Clone(hello)
	tampered[4] = 3
	toD, err := a.feed(tampered)
	if err != nil {
		t.Fatal(err)
	}
	toA, err := d.feed(toD)
	if !errors.Is(err, ErrAuth) {
		if _, err = a.feed(toA); !errors.Is(err, ErrAuth) {
			t.Fatalf("a downgraded offer: got %v, want ErrAuth", err)
		}
	}
}

// A node of version 3 (the build before repeat frames) sends its hello at
// once and checks the version byte of the peer's for equality: these are
// its bytes, as docs/wire.md specified them for version 3. A dialer
// offering a newer version reads its hello, then its refusal, and has what it needs to
// dial again offering 3; an acceptor answers a dialer of version 3 with 3.
func TestHandshakeVersion3Peer(t *testing.T) {
	v3hello := func(dialer bool, node bus.NodeID) []byte {
		b := append([]byte("XBUS"), 3)
		var flags, pool byte
		if dialer {
			flags, pool = helloDialer, 1
		}
		b = append(b, flags, compS2|compZstd, pool, 0, 4)
		b = append(b, node[:]...)
		b = append(b, 0, 0, 0, 0, 0, 0, 0, 7) // link id
		b = append(b, 0, 1, 0, 0)             // max frame 65536
		b = append(b, make([]byte, nonceLen)...)
		return append(b, "json"...)
	}
	v3node := bus.NewNodeID()
	// A version-3 acceptor: its hello, at once, then, having read byte 4
	// of ours, a close frame with reason 2 (version) and no count.
	refusal := append(appendFrameHeader(nil, frameClose, 0, 1+len("v")), byte(closeVersion), 'v')
	dc, ac := hsPair(nil)
	d := newHandshake(dc)
	if hello := d.start(); hello[4] != maxVersion {
		t.Fatalf("the dialer offers %d, want %d", hello[4], maxVersion)
	}
	_, err := d.feed(append(v3hello(false, v3node), refusal...))
	if !errors.Is(err, ErrVersion) || !errors.Is(err, ErrRejected) || d.peerVersion != 3 {
		t.Fatalf("refused by a version-3 acceptor: %v, its hello of version %d", err, d.peerVersion)
	}
	if !fallBack(err, maxVersion, d.peerVersion) {
		t.Fatal("the dialer would not dial again offering 3")
	}
	// Its socket closed before the refusal arrived: the same.
	if !fallBack(ErrHandshake, 4, 3) || fallBack(ErrHandshake, 4, 4) || fallBack(ErrAuth, 4, 3) || fallBack(ErrHandshake, 4, 2) {
		t.Fatal("fallBack")
	}
	// Offering 3, the dialer links with it.
	dc.Version = 3
	d = newHandshake(dc)
	if hello := d.start(); hello[4] != 3 {
		t.Fatalf("the dialer offers %d, want 3", hello[4])
	}
	out, err := d.feed(v3hello(false, v3node))
	if err != nil {
		t.Fatal(err)
	}
	out = append(appendFrameHeader(nil, frameAuth, 0, 0), appendFrameHeader(nil, frameReady, 0, 0)...)
	if _, err := d.feed(out); err != nil || !d.done() || d.result().Version != 3 {
		t.Fatalf("with a version-3 acceptor: %v, done %v, version %d", err, d.done(), d.result().Version)
	}
	// A version-3 dialer: the acceptor answers 3, and the version-3 dialer's
	// check (byte 4 == 3) passes.
	a := newHandshake(ac)
	out, err = a.feed(v3hello(true, v3node))
	if err != nil {
		t.Fatal(err)
	}
	if len(out) < helloFixed || !bytes.Equal(out[:4], magic[:]) || out[4] != 3 {
		t.Fatalf("the acceptor answered a version-3 dialer with % x", out[:min(len(out), 5)])
	}
	if _, err := a.feed(append(appendFrameHeader(nil, frameAuth, 0, 0), appendFrameHeader(nil, frameReady, 0, 0)...)); err != nil || !a.done() || a.result().Version != 3 {
		t.Fatalf("with a version-3 dialer: %v, done %v, version %d", err, a.done(), a.result().Version)
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
	helloA, err := a.feed(helloD) // the acceptor's hello and auth frame
	if err != nil {
		t.Fatal(err)
	}
	recAuth, err := d.feed(helloA) // the dialer's auth and ready frames, recorded
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
	own = own[helloFixed+len(ac.Codec):] // its auth frame, after its hello
	if _, err := a3.feed(own); !errors.Is(err, ErrAuth) {
		t.Fatalf("reflected proof: got %v, want ErrAuth", err)
	}
	_ = a
}

// FuzzHandshake feeds bytes to both ends of a handshake: to an acceptor as
// the dialer's hello and frames, and to a dialer as the acceptor's. Neither
// panics, buffers without bound, refuses without a close frame, completes
// without the secret, or takes a version outside what it speaks.
func FuzzHandshake(f *testing.F) {
	dc, ac := hsPair(func(d, a *hsConfig) { d.Secret, a.Secret = []byte("k"), []byte("k") })
	d := newHandshake(dc)
	hello := d.start()
	answer, err := newHandshake(ac).feed(hello) // the acceptor's hello and auth frame
	if err != nil {
		f.Fatal(err)
	}
	f.Add(hello, 3)
	f.Add(answer, 3)
	f.Add([]byte("XBUS\x01"), 1)
	for _, v := range []byte{0, 2, 3, 4, 5, 255} { // every version byte: too old, older, ours, newer
		for _, b := range [][]byte{hello, answer} {
			b = bytes.Clone(b)
			b[4] = v
			f.Add(b, 7)
		}
	}
	f.Add(append(append([]byte(nil), hello...), 0, 0, 0, 32, frameAuth, 0), 10)
	f.Add(append(append([]byte(nil), hello...), 0, 0, 0, 4, frameClose, 0, 2, 'x', 'y', 'z'), 10)
	f.Fuzz(func(t *testing.T, in []byte, chunk int) {
		if chunk <= 0 {
			chunk = 1
		}
		for _, cfg := range []hsConfig{ac, dc} {
			h := newHandshake(cfg)
			h.start()
			in := in
			for len(in) > 0 && !h.done() {
				n := min(chunk, len(in))
				out, err := h.feed(in[:n])
				in = in[n:]
				if len(h.in) > h.maxBuffer+n {
					t.Fatalf("buffered %d bytes", len(h.in))
				}
				if h.peerVersion != 0 && (h.peerVersion < minVersion || cfg.Dialer && h.peerVersion > maxVersion) {
					t.Fatalf("dialer %v took a hello of version %d", cfg.Dialer, h.peerVersion)
				}
				if err != nil {
					if len(out) == 0 && !errors.Is(err, ErrRejected) {
						t.Fatalf("error %v without a close frame", err)
					}
					if !cfg.Dialer && errors.Is(err, ErrVersion) && !errors.Is(err, ErrRejected) && (len(out) < 5 || out[4] != maxVersion) {
						t.Fatalf("a version refused without the acceptor's hello first: % x", out[:min(len(out), 5)])
					}
					break
				}
			}
			if h.done() {
				// Only a peer holding the secret gets here.
				t.Fatalf("fuzz input completed an authenticated handshake (dialer %v)", cfg.Dialer)
			}
		}
	})
}
