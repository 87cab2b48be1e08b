//go:build linux

package shmbus

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/xbus-dev/xbus/bus"
	"github.com/xbus-dev/xbus/internal/shmsys"
)

// gateHost is a receiving host whose reader stops in its first Deliver
// until open is called, so that its peer's senders fill the ring; it keeps
// a copy of every body it is handed, in order.
type gateHost struct {
	*testHost
	stopped, opened sync.Once
	in, gate        chan struct{} // in is closed once the reader stops
	mu              sync.Mutex
	bodies          [][]byte
}

func newGateHost() *gateHost {
	return &gateHost{testHost: newTestHost(), in: make(chan struct{}), gate: make(chan struct{})}
}

func (h *gateHost) open() { h.opened.Do(func() { close(h.gate) }) }

func (h *gateHost) Deliver(_ bus.Link, env *bus.Envelope) {
	h.mu.Lock()
	h.bodies = append(h.bodies, bytes.Clone(env.Body))
	h.mu.Unlock()
	h.stopped.Do(func() { close(h.in) })
	<-h.gate
}

// waitBodies waits, up to 30 s, until n bodies have arrived, and returns
// those that have.
func (h *gateHost) waitBodies(n int) [][]byte {
	for range 3000 {
		h.mu.Lock()
		got := len(h.bodies)
		h.mu.Unlock()
		if got >= n {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([][]byte(nil), h.bodies...)
}

// quietPair links a transport serving rh to a sending one over rings of
// MinRingSize, with the heartbeat watch off on both sides: a stalled
// reader is then never taken for a dead peer, and a sender waits for room
// for as long as its ctx allows, no less.
func quietPair(t *testing.T, rh bus.Host, up *testHost) (send, recv *link) {
	t.Helper()
	return quietPairFrom(t, rh, up, newTestHost(), nil)
}

// quietPairFrom is quietPair with the sending transport serving sh,
// set up by setup (unless nil) before it starts.
func quietPairFrom(t *testing.T, rh bus.Host, up *testHost, sh bus.Host, setup func(*Transport)) (send, recv *link) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "s")
	rt := New(Config{Listen: path, RingSize: MinRingSize, PeerTimeout: -1})
	if err := rt.Start(rh); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rt.Close(context.Background()) })
	st := New(Config{RingSize: MinRingSize, PeerTimeout: -1})
	if setup != nil {
		setup(st)
	}
	if err := st.Start(sh); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close(context.Background()) })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	bl, err := st.Dial(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	return bl.(*link), (<-up.up).(*link)
}

// tellOf returns a tell whose record in the ring is rec bytes long,
// header included (rec a multiple of 16), its body filled with fill.
func tellOf(t *testing.T, rec int, fill byte) *bus.Envelope {
	t.Helper()
	env := &bus.Envelope{Kind: bus.KindTell, To: bus.Ref{Name: "x"}, Type: "[]uint8"}
	hdr, err := env.AppendBinary(nil)
	if err != nil {
		t.Fatal(err)
	}
	env.Body = bytes.Repeat([]byte{fill}, rec-recordHeaderLen-len(hdr))
	return env
}

// sendWithin runs l.Send(ctx, env) and returns its error, failing the
// test if it still waits 30 s after ctx ended (without the fix a sender
// in the middle of a message waited for room whatever its ctx said).
func sendWithin(t *testing.T, l *link, ctx context.Context, env *bus.Envelope) error {
	t.Helper()
	res := make(chan error, 1)
	go func() { res <- l.Send(ctx, env) }()
	<-ctx.Done()
	ended := time.Now()
	select {
	case err := <-res:
		t.Logf("Send returned %v after its ctx ended: %v", time.Since(ended).Round(time.Microsecond), err)
		return err
	case <-time.After(30 * time.Second):
		t.Fatal("a Send in the middle of a message in fragments still waits 30 s after its ctx ended")
		return nil
	}
}

// TestFragmentSenderLeavesAtItsCtx sends a message in fragments, several
// rings long, to a peer whose reader has stopped, so that the ring fills
// after its first fragments. The sender returns at its ctx's deadline with
// its ctx's error, the link stays up, and once the reader goes on it takes
// the abort record the sender wrote as it stopped (there is always room
// for it) and holds nothing of the message; a tell and a message in
// fragments sent after arrive whole, in order, while the stopped message
// never arrives in any part.
func TestFragmentSenderLeavesAtItsCtx(t *testing.T) {
	cases := []struct {
		name    string
		before  []int // records sent before: the first is taken, the others wait in the ring
		deliver int   // bodies delivered before the later ones
	}{
		// 512-byte fragments from offset 512: 7 fit, and the 8th would
		// have filled the ring to its last byte, leaving the abort none.
		{"fragments to the end", []int{512}, 1},
		{"fragments past the wrap", []int{256, 256}, 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rh := newGateHost()
			sl, rl := quietPair(t, rh, rh.testHost)
			defer rh.open()
			bg := context.Background()
			for i, rec := range tc.before {
				if err := sl.Send(bg, tellOf(t, rec, byte('a'+i))); err != nil {
					t.Fatal(err)
				}
				if i == 0 {
					<-rh.in // the reader took the first and stopped in Deliver
				}
			}
			stopped := &bus.Envelope{Kind: bus.KindTell, To: bus.Ref{Name: "x"}, Type: "[]uint8", Body: bytes.Repeat([]byte{'S'}, 5*MinRingSize)}
			ctx, cancel := context.WithTimeout(bg, 200*time.Millisecond)
			defer cancel()
			err := sendWithin(t, sl, ctx, stopped)
			if !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, bus.ErrPeerGone) {
				t.Fatalf("Send stopped in the middle of a message: %v, want its ctx's error alone", err)
			}
			select {
			case <-sl.done:
				t.Fatalf("the link closed: %v", sl.err)
			default:
			}

			rh.open()
			if want := rl.waitTaken(sl.prod.w.tail.Load()); want != 0 {
				t.Fatalf("the reader took all the sender wrote and still holds a message of %d bytes", want)
			}
			later := tellOf(t, 128, 'L')
			big := &bus.Envelope{Kind: bus.KindTell, To: bus.Ref{Name: "x"}, Type: "[]uint8", Body: bytes.Repeat([]byte{'B'}, 3*MinRingSize+7)}
			for _, env := range []*bus.Envelope{later, big} {
				ctx, cancel := context.WithTimeout(bg, 30*time.Second)
				err := sl.Send(ctx, env)
				cancel()
				if err != nil {
					t.Fatalf("Send after the stopped one: %v", err)
				}
			}
			got := rh.waitBodies(tc.deliver + 2)
			if len(got) != tc.deliver+2 {
				t.Fatalf("%d bodies arrived, want %d", len(got), tc.deliver+2)
			}
			if !bytes.Equal(got[tc.deliver], later.Body) || !bytes.Equal(got[tc.deliver+1], big.Body) {
				t.Fatalf("after the stopped message arrived bodies of %d and %d bytes, want the later tell (%d) and message (%d) whole",
					len(got[tc.deliver]), len(got[tc.deliver+1]), len(later.Body), len(big.Body))
			}
			for i, b := range got {
				if bytes.IndexByte(b, 'S') >= 0 {
					t.Fatalf("body %d holds part of the stopped message", i)
				}
			}
			select {
			case err := <-rh.down:
				t.Fatalf("the link went down: %v", err)
			case <-time.After(50 * time.Millisecond):
			}
		})
	}
}

// waitTaken waits, up to 30 s, until l's reader has taken every record
// before position pos, and returns the length of the message in fragments
// it then holds in part (0: none).
func (l *link) waitTaken(pos uint64) int {
	for range 3000 {
		l.pollMu.Lock()
		at, want := l.cons.pos, l.frag.want
		l.pollMu.Unlock()
		if at >= pos {
			return want
		}
		time.Sleep(10 * time.Millisecond)
	}
	return -1
}

// TestFragmentTurnLeavesAtItsCtx: a sender of a message in fragments that
// waits for its turn behind another, which waits for room in the full
// ring of a stopped reader, leaves at its own ctx's deadline; the one
// ahead leaves when its ctx is cancelled. Without the fix the first
// waited on a mutex whatever its ctx said.
func TestFragmentTurnLeavesAtItsCtx(t *testing.T) {
	rh := newGateHost()
	sl, _ := quietPair(t, rh, rh.testHost)
	defer rh.open()
	bg := context.Background()
	if err := sl.Send(bg, tellOf(t, 128, 'a')); err != nil {
		t.Fatal(err)
	}
	<-rh.in
	big := func(fill byte) *bus.Envelope {
		return &bus.Envelope{Kind: bus.KindTell, To: bus.Ref{Name: "x"}, Type: "[]uint8", Body: bytes.Repeat([]byte{fill}, 2*MinRingSize)}
	}
	ahead, cancelAhead := context.WithCancel(bg)
	defer cancelAhead()
	first := make(chan error, 1)
	go func() { first <- sl.Send(ahead, big('1')) }()
	for len(sl.fragTurn) == 0 { // the first holds the turn
		time.Sleep(time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(bg, 100*time.Millisecond)
	defer cancel()
	if err := sendWithin(t, sl, ctx, big('2')); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Send waiting for its turn: %v, want its ctx's error", err)
	}
	select {
	case err := <-first:
		t.Fatalf("the sender ahead returned %v before its ctx ended", err)
	default:
	}
	cancelAhead()
	select {
	case err := <-first:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("the sender ahead: %v, want context.Canceled", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the sender ahead still waits 30 s after its ctx was cancelled")
	}
	rh.open()
	last := big('3')
	if err := sl.Send(bg, last); err != nil {
		t.Fatal(err)
	}
	got := rh.waitBodies(2)
	if len(got) != 2 || !bytes.Equal(got[1], last.Body) {
		t.Fatalf("%d bodies arrived, want the first tell and the last message whole", len(got))
	}
}

// ringWriter writes records into a hand-made peer's ring, as a peer that
// breaks the protocol would, and publishes them.
type ringWriter struct {
	mem  []byte
	ring []byte
	pos  uint64
}

func (w *ringWriter) put(typ uint32, payload []byte) {
	off := w.pos & (uint64(len(w.ring)) - 1)
	binary.LittleEndian.PutUint32(w.ring[off+8:], uint32(len(payload)))
	binary.LittleEndian.PutUint32(w.ring[off+12:], typ)
	copy(w.ring[off+recordHeaderLen:], payload)
	atomic64(w.ring, off).Store((w.pos + 1) ^ 42)
	w.pos += align(recordHeaderLen+uint64(len(payload)), recordAlign)
	atomic64(w.mem, offTail).Store(w.pos)
}

func (w *ringWriter) ring1() {
	atomic32(w.mem, offDoorbell).Add(1)
	shmsys.FutexWake(atomic32(w.mem, offDoorbell))
}

// TestHostileFragments has a hand-made peer write fragment and abort
// records that break the protocol: each closes the link with ErrCorrupt
// and delivers nothing of the message. An abort that follows the rules
// drops the message begun, however large it announced itself, and the
// link carries the next message whole.
func TestHostileFragments(t *testing.T) {
	env := bus.Envelope{Kind: bus.KindTell, To: bus.Ref{Name: "x"}, Type: "[]uint8", Body: bytes.Repeat([]byte{'w'}, 700)}
	whole, err := env.AppendBinary(nil)
	if err != nil {
		t.Fatal(err)
	}
	const half = 300
	corrupt := map[string]func(w *ringWriter){
		"abort with no message begun": func(w *ringWriter) {
			w.put(recordAbort, nil)
		},
		"abort with a payload": func(w *ringWriter) {
			w.put(recordFirst, first(len(whole), whole[:half]))
			w.put(recordAbort, []byte("why"))
		},
		"fragment after an abort": func(w *ringWriter) {
			w.put(recordFirst, first(len(whole), whole[:half]))
			w.put(recordAbort, nil)
			w.put(recordLast, whole[half:])
		},
		"two aborts": func(w *ringWriter) {
			w.put(recordFirst, first(len(whole), whole[:half]))
			w.put(recordAbort, nil)
			w.put(recordAbort, nil)
		},
		"first fragment over MaxMessage": func(w *ringWriter) {
			w.put(recordFirst, first(DefaultMaxMessage+1, whole[:half]))
		},
	}
	for name, write := range corrupt {
		t.Run(name, func(t *testing.T) {
			h, w := hostilePeer(t)
			write(w)
			w.ring1()
			select {
			case err := <-h.down:
				if !errors.Is(err, ErrCorrupt) {
					t.Fatalf("link down with %v, want ErrCorrupt", err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("link not closed")
			}
			if got := h.waitBodies(0); len(got) != 0 {
				t.Fatalf("%d bodies delivered, want none", len(got))
			}
		})
	}

	t.Run("abort, then a message", func(t *testing.T) {
		h, w := hostilePeer(t)
		for range 3 { // a message announced at the limit, begun and dropped
			w.put(recordFirst, first(DefaultMaxMessage, whole[:half]))
			w.put(recordAbort, nil)
		}
		w.put(recordFirst, first(len(whole), whole[:half]))
		w.put(recordLast, whole[half:])
		w.ring1()
		got := h.waitBodies(1)
		if len(got) != 1 || !bytes.Equal(got[0], env.Body) {
			t.Fatalf("%d bodies delivered, want the message after the aborts whole", len(got))
		}
		select {
		case err := <-h.down:
			t.Fatalf("the link went down: %v", err)
		case <-time.After(50 * time.Millisecond):
		}
	})
}

// hostilePeer starts a transport and links a hand-made peer to it, and
// returns the transport's host (which never stops) and the peer's writer.
func hostilePeer(t *testing.T) (*gateHost, *ringWriter) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "s")
	h := newGateHost()
	h.open()
	tr := New(Config{Listen: path, RingSize: MinRingSize})
	if err := tr.Start(h); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.Close(context.Background()) })
	_, mem := rawPeer(t, path, MinRingSize)
	atomic32(mem, offDrained).Store(1) // the link's end need not wait for this peer's reader
	<-h.up
	return h, &ringWriter{mem: mem, ring: mem[ringOffset : ringOffset+MinRingSize]}
}

// TestClosedLinkTakesNoFirstFragment: a link closes while a message in
// fragments waits for room in the ring of a stopped reader; its sender
// writes no abort (the link is closed), so the peer's reader, once it goes
// on, holds part of that message as its link ends. A message in fragments sent on the link
// after that, while it is still mapped (its own reader is held up in
// Deliver), fails and writes nothing: its first fragment would come after
// a message never ended, which the peer takes for corrupt memory.
func TestClosedLinkTakesNoFirstFragment(t *testing.T) {
	rh, sh := newGateHost(), newGateHost()
	sl, rl := quietPairFrom(t, rh, rh.testHost, sh, nil)
	defer rh.open()
	defer sh.open()
	bg := context.Background()
	if err := sl.Send(bg, tellOf(t, 64, 'a')); err != nil {
		t.Fatal(err)
	}
	<-rh.in // the peer's reader stopped
	if err := rl.Send(bg, tellOf(t, 64, 'b')); err != nil {
		t.Fatal(err)
	}
	<-sh.in // and the link's own, so that the link stays mapped once closed
	big := func(fill byte) *bus.Envelope {
		return &bus.Envelope{Kind: bus.KindTell, To: bus.Ref{Name: "x"}, Type: "[]uint8", Body: bytes.Repeat([]byte{fill}, 2*MinRingSize)}
	}
	cut := make(chan error, 1)
	go func() { cut <- sl.Send(bg, big('C')) }()
	p := sl.prod
	for i := 0; p.w.tail.Load()-p.w.head.Load()+uint64(p.maxRecord)+2*recordHeaderLen <= p.capacity; i++ {
		if i == 30000 {
			t.Fatal("the message in fragments never filled the ring")
		}
		time.Sleep(time.Millisecond)
	}
	sl.Close(errors.New("closed by the test"))
	if err := <-cut; !errors.Is(err, bus.ErrPeerGone) {
		t.Fatalf("the message cut short by the close: %v, want ErrPeerGone", err)
	}
	rh.open()
	select { // the peer's link ends too, once its reader has taken what the ring holds
	case <-rh.down:
	case <-time.After(30 * time.Second):
		t.Fatal("the peer's link never went down")
	}
	tail := p.w.tail.Load()
	if p.w.head.Load() != tail || rl.frag.want == 0 {
		t.Fatalf("the peer's reader took the ring to %d of %d and holds %d bytes of a message: want all, and part of the one cut short", p.w.head.Load(), tail, rl.frag.want)
	}
	for i := range 8 { // a sender that finds the turn free and the link closed may take either
		ctx, cancel := context.WithTimeout(bg, time.Second)
		err := sl.Send(ctx, big(byte('0'+i)))
		cancel()
		if err == nil {
			t.Fatalf("send %d on the closed link: no error", i)
		}
		if got := p.w.tail.Load(); got != tail {
			t.Fatalf("send %d on the closed link wrote %d bytes after a message never ended: %v", i, got-tail, err)
		}
	}
}
