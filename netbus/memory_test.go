package netbus

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"net"
	"runtime"
	"testing"
	"time"

	"github.com/xbus-dev/xbus/bus"
	"github.com/xbus-dev/xbus/codec"
)

// heapSlack is how far above its baseline the live heap may stay after an
// attack or a burst of large frames: a bound on memory held for good, far
// below what a buffer sized by a peer's announcement would hold.
const heapSlack = 32 << 20

// liveHeap returns the bytes of live heap after full collections (two:
// sync.Pool keeps a victim cache across one).
func liveHeap() int64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc)
}

// serverConns returns the connections of every link of t.
func serverConns(t *Transport) []*conn {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []*conn
	for l := range t.links {
		out = append(out, l.conns...)
	}
	return out
}

// Peers that announce frames of the largest size and send one byte of each
// cost the node little: a frame's buffer grows as its bytes arrive.
func TestAnnouncedFrameSizeIsNotAllocated(t *testing.T) {
	srv := newTestHost(t)
	srvT := startTransport(t, srv, Config{Listen: []string{"tcp://127.0.0.1:0"}})
	base := liveHeap()
	const conns = 24
	for range conns {
		nc, _, err := rawDial(t, srvT.Addrs()[0], hsConfig{})
		if err != nil {
			t.Fatal(err)
		}
		srv.link(t)
		// A ping, then a frame of the largest size the node accepts, of
		// which only the first byte comes.
		b := appendFrameHeader(nil, framePing, 0, 0)
		b = appendFrameHeader(b, frameData, 0, srvT.cfg.MaxFrameSize)
		if _, err := nc.Write(append(b, 1)); err != nil {
			t.Fatal(err)
		}
	}
	// Every reader has taken its ping and gone on to the large frame.
	deadline := time.Now().Add(30 * time.Second)
	for {
		cs, pinged := serverConns(srvT), 0
		for _, c := range cs {
			if c.recv.Load() > 0 {
				pinged++
			}
		}
		if pinged == conns {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d connections got their ping", pinged, conns)
		}
		time.Sleep(time.Millisecond)
	}
	grown := liveHeap() - base
	t.Logf("%d connections announcing %d MiB each: heap %+.1f MiB", conns, srvT.cfg.MaxFrameSize>>20, float64(grown)/(1<<20))
	if grown > heapSlack {
		t.Fatalf("heap grew by %d MiB", grown>>20)
	}
}

// After large compressed frames both ways, the heap returns near its
// baseline: neither the decoders nor the buffers of a frame stay held.
func TestCompressionMemoryReturns(t *testing.T) {
	text := bytes.Repeat([]byte("xbus moves messages; "), 400000) // 8.4 MB
	for _, comp := range []Compression{S2, Zstd} {
		t.Run(comp.String(), func(t *testing.T) {
			_, cli, _, _, l := pair(t, "tcp://127.0.0.1:0", Config{Compression: comp}, Config{Compression: comp})
			if _, err := cli.ask(context.Background(), l, "echo", Payload{Data: []byte("warm")}); err != nil {
				t.Fatal(err)
			}
			base := liveHeap()
			for i := range 3 {
				got, err := cli.ask(context.Background(), l, "echo", Payload{Seq: i, Data: text})
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got.(Payload).Data, text) {
					t.Fatal("echo came back different")
				}
			}
			grown := liveHeap() - base
			t.Logf("after 3 round trips of %.1f MB: heap %+.1f MiB", float64(len(text))/1e6, float64(grown)/(1<<20))
			if grown > heapSlack {
				t.Fatalf("heap grew by %d MiB", grown>>20)
			}
		})
	}
}

// An attack on the listener (garbage, truncated handshakes, pooled links
// never completed, frames announced at the limit or past it, compression
// bombs, hundreds of idle connections) leaves nothing behind: once the
// attacker's connections close, the node's goroutines and heap return to
// their baseline.
func TestListenerAttackMemoryReturns(t *testing.T) {
	srv := newTestHost(t)
	cfg := Config{Listen: []string{"tcp://127.0.0.1:0"}, HandshakeTimeout: 2 * time.Second, MaxFrameSize: 4 << 20}
	srvT := startTransport(t, srv, cfg)
	addr := srvT.Addrs()[0]
	_, hostport, _ := parseAddr(addr)
	stopDrain := make(chan struct{})
	drained := make(chan struct{})
	go func() { // the test host reports every link; nobody else reads them
		defer close(drained)
		for {
			select {
			case <-srv.upCh:
			case <-srv.downCh:
			case <-stopDrain:
				return
			}
		}
	}()
	defer func() { close(stopDrain); <-drained }()
	before := runtime.NumGoroutine()
	base := liveHeap()

	var conns []net.Conn
	dial := func() net.Conn {
		nc, err := net.Dial("tcp", hostport)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, nc)
		return nc
	}
	// Garbage, and hellos cut short.
	junk := make([]byte, 64<<10)
	rand.Read(junk)
	h := newHandshake(hsConfig{Node: bus.NewNodeID(), Codec: codec.Binary().Name(), Dialer: true, Pool: 1, MaxFrame: 1 << 20})
	hello := h.start()
	for i := range 100 {
		nc := dial()
		if i%2 == 0 {
			nc.Write(junk)
		} else {
			nc.Write(hello[:len(hello)/2])
		}
	}
	// Pooled links of which one connection of 255 ever comes.
	for range 50 {
		var id [8]byte
		rand.Read(id[:])
		nc, _, err := rawDial(t, addr, hsConfig{Pool: 255, LinkID: binary.BigEndian.Uint64(id[:])})
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, nc)
	}
	// After a valid handshake: frames at the limit with one byte sent,
	// frames past it, and compressed payloads announcing the largest
	// decompressed size.
	comp := newTestCompressor(t, srvT.cfg.MaxDecompressed)
	zeros := make([]byte, srvT.cfg.MaxDecompressed)
	var attacks [][]byte
	for range 20 {
		attacks = append(attacks, append(appendFrameHeader(nil, frameData, 0, cfg.MaxFrameSize), 1))
	}
	for range 10 {
		attacks = append(attacks, appendFrameHeader(nil, frameData, 0, cfg.MaxFrameSize+1))
	}
	for _, alg := range []byte{compS2, compZstd} {
		bomb := comp.compress(nil, zeros, alg)
		for range 2 {
			attacks = append(attacks, append(appendFrameHeader(nil, frameData, alg, len(bomb)), bomb...))
		}
	}
	for _, a := range attacks {
		nc, _, err := rawDial(t, addr, hsConfig{})
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, nc)
		nc.Write(a)
	}
	// Hundreds of connections that say nothing.
	for range 300 {
		dial()
	}
	during := liveHeap() - base
	for _, nc := range conns {
		nc.Close()
	}
	// The node lets go of everything: links, links being formed, the
	// goroutines of handshakes.
	deadline := time.Now().Add(30 * time.Second)
	for {
		srvT.mu.Lock()
		n := len(srvT.links) + len(srvT.forming)
		srvT.mu.Unlock()
		if n == 0 && runtime.NumGoroutine() <= before {
			break
		}
		if time.Now().After(deadline) {
			checkGoroutines(t, before)
			t.Fatalf("%d links still held", n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	comp, zeros, attacks = nil, nil, nil
	after := liveHeap() - base
	t.Logf("%d connections: heap %+.1f MiB while open, %+.1f MiB after they closed", len(conns), float64(during)/(1<<20), float64(after)/(1<<20))
	if after > heapSlack {
		t.Fatalf("heap stayed %d MiB above its baseline", after>>20)
	}
	if _, _, delivered, _ := srv.counts(); delivered != 0 {
		t.Fatalf("%d messages delivered from the attacker", delivered)
	}
}
