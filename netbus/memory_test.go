package netbus

import (
	"bytes"
	"context"
	"runtime"
	"testing"
	"time"
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
