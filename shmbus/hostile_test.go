//go:build linux

package shmbus

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/xbus-dev/xbus/bus"
	"github.com/xbus-dev/xbus/internal/shmsys"
)

// testHost is a minimal bus.Host recording what the transport reports.
type testHost struct {
	id    bus.NodeID
	types *bus.Types
	up    chan bus.Link
	down  chan error
	logs  *logRecorder
}

func newTestHost() *testHost {
	return &testHost{id: bus.NewNodeID(), types: bus.NewTypes(), up: make(chan bus.Link, 4), down: make(chan error, 4), logs: &logRecorder{}}
}

func (h *testHost) NodeID() bus.NodeID                         { return h.id }
func (h *testHost) Types() *bus.Types                          { return h.types }
func (h *testHost) Logger() *slog.Logger                       { return slog.New(h.logs) }
func (h *testHost) LinkUp(l bus.Link)                          { h.up <- l }
func (h *testHost) Connect(string) error                       { return nil }
func (h *testHost) Deliver(bus.Link, *bus.Envelope)            {}
func (h *testHost) Undelivered(bus.Link, *bus.Envelope, error) {}
func (h *testHost) LinkDown(l bus.Link, err error)             { h.down <- err }

// rawPeer does the handshake by hand and returns its own writable segment.
func rawPeer(t *testing.T, path string, ringSize int) (*net.UnixConn, []byte) {
	t.Helper()
	c, mem, pfd := rawHandshake(t, path, ringSize)
	shmsys.CloseFd(pfd)
	return c, mem
}

// rawHandshake does the handshake by hand and returns its own writable
// segment and the fd of the transport's segment it received.
func rawHandshake(t *testing.T, path string, ringSize int) (*net.UnixConn, []byte, int) {
	t.Helper()
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	uc := c.(*net.UnixConn)
	fd, mem, err := shmsys.CreateSegment(segmentSize(ringSize))
	if err != nil {
		t.Fatal(err)
	}
	initSegment(mem, ringSize, 42)
	h := hello{version: segVersion, ringSize: uint32(ringSize), node: bus.NewNodeID(), codec: "cbor"}
	msg := h.marshal()
	if err := shmsys.SendFd(uc, msg[:], fd); err != nil {
		t.Fatal(err)
	}
	shmsys.CloseFd(fd)
	pfd, _, err := shmsys.RecvFd(uc, msg[:])
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { shmsys.Unmap(mem); uc.Close() })
	return uc, mem, pfd
}

// TestHostileRing writes garbage into a peer's ring and checks that the link
// goes down with ErrCorrupt and the transport keeps running.
func TestHostileRing(t *testing.T) {
	cases := map[string]func(ring []byte, key uint64){
		"length past the end": func(r []byte, key uint64) {
			binary.LittleEndian.PutUint32(r[8:], 1<<30)
			binary.LittleEndian.PutUint32(r[12:], recordData)
			binary.LittleEndian.PutUint64(r[0:], 1^key)
		},
		"stamp from the future": func(r []byte, key uint64) {
			binary.LittleEndian.PutUint64(r[0:], (2*uint64(len(r))+1)^key)
		},
		"garbage envelope": func(r []byte, key uint64) {
			binary.LittleEndian.PutUint32(r[8:], 5)
			binary.LittleEndian.PutUint32(r[12:], recordData)
			copy(r[16:], "\xff\xff\xff\xff\xff")
			binary.LittleEndian.PutUint64(r[0:], 1^key)
		},
		"fragment out of place": func(r []byte, key uint64) {
			binary.LittleEndian.PutUint32(r[8:], 3)
			binary.LittleEndian.PutUint32(r[12:], recordLast)
			binary.LittleEndian.PutUint64(r[0:], 1^key)
		},
	}
	for name, write := range cases {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "s")
			h := newTestHost()
			tr := New(Config{Listen: path, RingSize: MinRingSize})
			if err := tr.Start(h); err != nil {
				t.Fatal(err)
			}
			defer tr.Close(context.Background())
			conn, mem := rawPeer(t, path, MinRingSize)
			<-h.up
			write(mem[ringOffset:ringOffset+MinRingSize], 42)
			atomic32(mem, offDoorbell).Add(1)
			shmsys.FutexWake(atomic32(mem, offDoorbell))
			select {
			case err := <-h.down:
				if !errors.Is(err, ErrCorrupt) && !errors.Is(err, bus.ErrBadEnvelope) {
					t.Fatalf("link down with %v, want a corruption error", err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("link not closed after garbage in its ring")
			}
			// The transport closed the control socket.
			conn.SetReadDeadline(time.Now().Add(5 * time.Second))
			if _, err := conn.Read(make([]byte, 1)); err != io.EOF {
				t.Fatalf("control socket after corruption: %v, want EOF", err)
			}
		})
	}
}

// TestSegmentsReleased checks that a closed link unmaps its segments and
// refuses later sends with bus.ErrPeerGone.
func TestSegmentsReleased(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s")
	h := newTestHost()
	tr := New(Config{Listen: path, RingSize: MinRingSize})
	if err := tr.Start(h); err != nil {
		t.Fatal(err)
	}
	conn, _ := rawPeer(t, path, MinRingSize)
	l := <-h.up
	conn.Close() // the peer dies
	if err := <-h.down; err == nil || !strings.Contains(err.Error(), "EOF") {
		t.Fatalf("link down with %v, want EOF", err)
	}
	// A send that still holds the dead link fails as netbus's does.
	if err := l.Send(context.Background(), &bus.Envelope{Kind: bus.KindTell, To: bus.Ref{Name: "x"}, Msg: "late"}); !errors.Is(err, bus.ErrPeerGone) {
		t.Fatalf("send on a dead link: %v, want ErrPeerGone", err)
	}
	tr.Close(context.Background())
	// Our rawPeer mapping is released by its cleanup; the transport's own
	// two mappings must be gone already: only rawPeer's one remains.
	maps, _ := os.ReadFile("/proc/self/maps")
	if n := strings.Count(string(maps), "memfd:xbus-shm"); n > 1 {
		t.Fatalf("%d shared segments still mapped after the link closed, want at most 1 (the test's own)", n)
	}
}

// TestTooLarge checks that an envelope over MaxMessage is refused by Send
// with bus.ErrTooLarge and the link stays up.
func TestTooLarge(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s")
	h := newTestHost()
	tr := New(Config{Listen: path, RingSize: MinRingSize, MaxMessage: 64 << 10})
	if err := tr.Start(h); err != nil {
		t.Fatal(err)
	}
	defer tr.Close(context.Background())
	rawPeer(t, path, MinRingSize)
	l := <-h.up
	err := l.Send(context.Background(), &bus.Envelope{Kind: bus.KindTell, To: bus.Ref{Name: "x"}, Type: "[]uint8", Body: make([]byte, 65<<10)})
	if !errors.Is(err, bus.ErrTooLarge) {
		t.Fatalf("send of 65 KiB over a 64 KiB limit: %v, want ErrTooLarge", err)
	}
	if err := l.Send(context.Background(), &bus.Envelope{Kind: bus.KindTell, To: bus.Ref{Name: "x"}, Msg: "small"}); err != nil {
		t.Fatalf("link unusable after a refused message: %v", err)
	}
	select {
	case err := <-h.down:
		t.Fatalf("link went down: %v", err)
	default:
	}
}

// TestHeartbeat checks the liveness of a link against a hand-made peer:
// one whose heartbeat stays still is declared gone, failing a send blocked
// on its full ring with bus.ErrPeerGone; one that beats (with any values:
// the word is the peer's to write) but never reads keeps its link, and a
// send to it waits only for its ctx.
func TestHeartbeat(t *testing.T) {
	setup := func(t *testing.T, timeout time.Duration) (*testHost, bus.Link, []byte) {
		path := filepath.Join(t.TempDir(), "s")
		h := newTestHost()
		tr := New(Config{Listen: path, RingSize: MinRingSize, PeerTimeout: timeout})
		if err := tr.Start(h); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { tr.Close(context.Background()) })
		_, mem := rawPeer(t, path, MinRingSize)
		return h, <-h.up, mem
	}
	tell := &bus.Envelope{Kind: bus.KindTell, To: bus.Ref{Name: "x"}, Msg: strings.Repeat("x", 100)}

	t.Run("still", func(t *testing.T) {
		h, l, _ := setup(t, 200*time.Millisecond)
		var err error
		for err == nil { // fills the ring, then blocks until the peer is declared gone
			err = l.Send(context.Background(), tell)
		}
		if !errors.Is(err, bus.ErrPeerGone) {
			t.Fatalf("send to a still peer: %v, want ErrPeerGone", err)
		}
		if err := <-h.down; !errors.Is(err, bus.ErrPeerGone) {
			t.Fatalf("link down with %v, want ErrPeerGone", err)
		}
		t.Log(h.logs.waitWarned(t, bus.ErrPeerGone))
	})

	t.Run("beating, never reading", func(t *testing.T) {
		// A long timeout, beats far more often: the process may be loaded.
		const timeout = time.Second
		h, l, mem := setup(t, timeout)
		beat := atomic64(mem, offBeat)
		stop := make(chan struct{})
		var wg sync.WaitGroup
		wg.Go(func() {
			v := uint64(1 << 63)
			for {
				select {
				case <-stop:
					return
				case <-time.After(time.Millisecond):
				}
				v = v*6364136223846793005 + 1442695040888963407 // any value, as long as it moves
				beat.Store(v)
			}
		})
		defer func() { close(stop); wg.Wait() }()
		var err error
		for err == nil {
			ctx, cancel := context.WithTimeout(context.Background(), 3*timeout)
			err = l.Send(ctx, tell)
			cancel()
		}
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("send to a full ring of a live peer: %v, want its ctx's error", err)
		}
		select {
		case err := <-h.down:
			t.Fatalf("the link to a beating peer went down: %v", err)
		default:
		}
	})
}

// batchHost is a testHost that takes batches, as the bus does, and keeps
// the correlation id of every envelope it is handed, in order.
type batchHost struct {
	*testHost
	mu    sync.Mutex
	corrs []uint64
	calls int // DeliverBatch calls
}

func (h *batchHost) DeliverBatch(l bus.Link, envs []bus.Envelope) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.calls++
	for _, e := range envs {
		h.corrs = append(h.corrs, e.Corr)
	}
}

func (h *batchHost) Deliver(l bus.Link, env *bus.Envelope) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.corrs = append(h.corrs, env.Corr)
}

// TestBatchBeforeGarbage: a peer publishes ten good envelopes and then one
// whose header does not decode, all at once, so that one poll takes them
// together. The ten are handed to the bus, in order and in batches, before
// the link goes down for the bad one: a record that breaks the protocol
// loses nothing that came before it.
func TestBatchBeforeGarbage(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s")
	h := &batchHost{testHost: newTestHost()}
	tr := New(Config{Listen: path, RingSize: MinRingSize})
	if err := tr.Start(h); err != nil {
		t.Fatal(err)
	}
	defer tr.Close(context.Background())
	_, mem := rawPeer(t, path, MinRingSize)
	<-h.up
	ring := mem[ringOffset : ringOffset+MinRingSize]
	var at []uint64 // where each record starts
	pos := uint64(0)
	put := func(payload []byte) {
		binary.LittleEndian.PutUint32(ring[pos+8:], uint32(len(payload)))
		binary.LittleEndian.PutUint32(ring[pos+12:], recordData)
		copy(ring[pos+recordHeaderLen:], payload)
		at = append(at, pos)
		pos += align(recordHeaderLen+uint64(len(payload)), recordAlign)
	}
	const good = 10
	for i := range good {
		env := bus.Envelope{Kind: bus.KindTell, To: bus.Ref{Name: "x"}, Corr: uint64(i + 1)}
		b, err := env.AppendBinary(nil)
		if err != nil {
			t.Fatal(err)
		}
		put(b)
	}
	put([]byte("\xff\xff\xff\xff\xff"))
	atomic32(mem, offDrained).Store(1) // our reader took all: the link's end need not wait for it
	atomic64(mem, offTail).Store(pos)
	for i := len(at) - 1; i >= 0; i-- { // the first published last: one poll sees them all
		atomic64(ring, at[i]).Store((at[i] + 1) ^ 42)
	}
	atomic32(mem, offDoorbell).Add(1)
	shmsys.FutexWake(atomic32(mem, offDoorbell))
	select {
	case err := <-h.down:
		if !errors.Is(err, bus.ErrBadEnvelope) {
			t.Fatalf("link down with %v, want ErrBadEnvelope", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("link not closed after a bad envelope")
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	want := make([]uint64, good)
	for i := range want {
		want[i] = uint64(i + 1)
	}
	if !slices.Equal(h.corrs, want) {
		t.Fatalf("delivered %v, want %v", h.corrs, want)
	}
	if h.calls == 0 || h.calls > good {
		t.Fatalf("%d DeliverBatch calls for %d envelopes", h.calls, good)
	}
}
