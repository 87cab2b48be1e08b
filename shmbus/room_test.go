//go:build linux

package shmbus

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/xbus-dev/xbus/bus"
)

// orderHost is a receiving host whose reader is slow-ish: it sleeps every
// pauseEvery envelopes, so that senders fill the ring and wait for room.
// It records, per sender, the sequence numbers that arrive out of order.
type orderHost struct {
	*testHost
	pauseEvery int
	mu         sync.Mutex
	next       map[uint32]uint32
	got, bad   int
}

func (h *orderHost) Deliver(_ bus.Link, env *bus.Envelope) {
	h.mu.Lock()
	if len(env.Body) >= 8 {
		from, seq := binary.LittleEndian.Uint32(env.Body), binary.LittleEndian.Uint32(env.Body[4:])
		if seq != h.next[from] {
			h.bad++
		}
		h.next[from] = seq + 1
	}
	h.got++
	n := h.got
	h.mu.Unlock()
	if n%h.pauseEvery == 0 {
		time.Sleep(100 * time.Microsecond)
	}
}

func (h *orderHost) counts() (got, bad int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.got, h.bad
}

// waitFor waits, up to 30 s, until n envelopes have arrived.
func (h *orderHost) waitFor(n int) {
	for range 3000 {
		if got, _ := h.counts(); got >= n {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// numbered is tell i of sender s, of size bytes: its body starts with s
// and i, which orderHost checks.
func numbered(s, i uint32, size int) bus.Envelope {
	body := make([]byte, size)
	binary.LittleEndian.PutUint32(body, s)
	binary.LittleEndian.PutUint32(body[4:], i)
	return bus.Envelope{Kind: bus.KindTell, To: bus.Ref{Name: "x"}, Type: "[]uint8", Body: body}
}

// numberedMixed is numbered, as a reply when i is even: a poller (Poll)
// takes replies only and leaves a tell, and all behind it, to the reader.
func numberedMixed(s, i uint32, size int) bus.Envelope {
	env := numbered(s, i, size)
	if i%2 == 0 {
		env.Kind, env.To = bus.KindReply, bus.Ref{}
	}
	return env
}

// TestSendersWokenForRoom sends many tells from four goroutines over a
// link of the smallest ring and of the default one to a reader that
// pauses now and then, so that senders keep finding the ring full. A
// sender that finds it full sleeps until the reader frees room and wakes
// it, once a quarter of the ring is free or the ring is empty (the
// default ring holds more records than a poll takes, so both happen):
// with the sleep's safety slice made a minute long, no sleep may last its
// whole slice (a missed wake-up would, and fail its send by its
// deadline). Every tell arrives, in order per sender, none lost.
func TestSendersWokenForRoom(t *testing.T) {
	defer func(d time.Duration) { roomSlice = d }(roomSlice)
	roomSlice = time.Minute
	for _, size := range []int{MinRingSize, DefaultRingSize} {
		t.Run(fmt.Sprint(size), func(t *testing.T) { sendersWokenForRoom(t, size) })
	}
}

func sendersWokenForRoom(t *testing.T, size int) {
	rh := &orderHost{testHost: newTestHost(), pauseEvery: 16, next: map[uint32]uint32{}}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	l, _ := linkPair(t, ctx, size, rh, rh.testHost, newTestHost())

	const senders, per = 4, 5000
	sendFrom(t, ctx, l, senders, per, func(s, i uint32) bus.Envelope { return numbered(s, i, 100) })
	rh.waitFor(senders * per)
	got, bad := rh.counts()
	waits, slept := l.roomWaits.Load(), l.roomSlept.Load()
	t.Logf("%d tells arrived, %d out of order; senders slept %d times for room, %d of them the whole slice", got, bad, waits, slept)
	if got != senders*per || bad != 0 {
		t.Fatalf("%d tells arrived (%d out of order), want %d in order", got, bad, senders*per)
	}
	if waits == 0 {
		t.Fatal("no sender waited for room: the test did not fill the ring")
	}
	if slept != 0 {
		t.Fatalf("%d of %d waits for room lasted their whole slice: the reader freed room and did not wake the sender", slept, waits)
	}
}

// TestWaitersForRoomEachEnd fills the ring of a peer that never reads and
// blocks several senders on it: the first sleeps in the kernel and holds
// the gate, the later ones wait for it in Go. With the sleep's slice made
// a minute long, so that the gate does not open while the test runs, a
// waiter whose ctx has a deadline returns at its deadline and one whose
// ctx is cancelled returns when it is, each with its ctx's error, while
// the sleeper still waits; closing the link then returns the sleeper and
// the waiters left, each with an error wrapping bus.ErrPeerGone.
func TestWaitersForRoomEachEnd(t *testing.T) {
	defer func(d time.Duration) { roomSlice = d }(roomSlice)
	roomSlice = time.Minute

	path := filepath.Join(t.TempDir(), "s")
	h := newTestHost()
	tr := New(Config{Listen: path, RingSize: MinRingSize, PeerTimeout: -1})
	if err := tr.Start(h); err != nil {
		t.Fatal(err)
	}
	defer tr.Close(context.Background())
	rawPeer(t, path, MinRingSize) // never reads
	l := (<-h.up).(*link)
	tell := &bus.Envelope{Kind: bus.KindTell, To: bus.Ref{Name: "x"}, Type: "[]uint8", Body: make([]byte, 100)}

	ended, cancel := context.WithCancel(context.Background())
	cancel()
	var err error
	for err == nil { // an ended ctx sends what fits at once
		err = l.Send(ended, tell)
	}
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("filling the ring: %v, want the ended ctx's error", err)
	}

	send := func(ctx context.Context) chan error {
		ch := make(chan error, 1)
		env := *tell // Send borrows its envelope
		go func() { ch <- l.Send(ctx, &env) }()
		return ch
	}
	sleeper := send(context.Background())
	for l.roomWaits.Load() == 0 { // it sleeps in the kernel
		time.Sleep(time.Millisecond)
	}
	l.roomMu.Lock()
	gate := l.roomGate
	l.roomMu.Unlock()
	if gate == nil {
		t.Fatal("no gate while a sender sleeps for room")
	}

	dctx, dcancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer dcancel()
	if err := <-send(dctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("waiter with a deadline: %v, want its ctx's error", err)
	}
	cctx, ccancel := context.WithCancel(context.Background())
	cancelled := send(cctx)
	time.Sleep(10 * time.Millisecond) // it waits at the gate
	ccancel()
	if err := <-cancelled; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled waiter: %v, want its ctx's error", err)
	}
	select {
	case err := <-sleeper:
		t.Fatalf("the sleeper returned before the link closed: %v", err)
	default:
	}
	if w := l.roomWaits.Load(); w != 1 {
		t.Fatalf("%d sleeps in the kernel, want the one sleeper's: the waiters must wait at the gate", w)
	}

	rest := []chan error{sleeper, send(context.Background()), send(context.Background())}
	time.Sleep(10 * time.Millisecond) // the two new ones wait at the gate
	l.Close(nil)
	for i, ch := range rest {
		if err := <-ch; !errors.Is(err, bus.ErrPeerGone) {
			t.Fatalf("sender %d after Close: %v, want ErrPeerGone", i, err)
		}
	}
}

// stallHost is a receiving host whose reader stops in Deliver until go_ is
// closed, so that its peer's senders fill the ring.
type stallHost struct {
	*testHost
	stalled, released sync.Once
	in, go_           chan struct{} // in is closed once the reader stops
}

func (h *stallHost) release() { h.released.Do(func() { close(h.go_) }) }

func (h *stallHost) Deliver(bus.Link, *bus.Envelope) {
	h.stalled.Do(func() { close(h.in) })
	<-h.go_
}

// TestRoomSleeperLeavesByItsDeadline: the sender that sleeps in the kernel
// for room leaves at its ctx's deadline while another waits for it in Go;
// the one left must take over the wait and be woken when the reader frees
// room (with the sleep's slice a minute long, nothing else would wake it
// in time), and its tell must arrive.
func TestRoomSleeperLeavesByItsDeadline(t *testing.T) {
	defer func(d time.Duration) { roomSlice = d }(roomSlice)
	roomSlice = time.Minute

	path := filepath.Join(t.TempDir(), "s")
	rh := &stallHost{testHost: newTestHost(), in: make(chan struct{}), go_: make(chan struct{})}
	rt := New(Config{Listen: path, RingSize: MinRingSize, PeerTimeout: -1})
	if err := rt.Start(rh); err != nil {
		t.Fatal(err)
	}
	defer rt.Close(context.Background())
	defer rh.release()
	st := New(Config{RingSize: MinRingSize, PeerTimeout: -1})
	if err := st.Start(newTestHost()); err != nil {
		t.Fatal(err)
	}
	defer st.Close(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	bl, err := st.Dial(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	l := bl.(*link)
	tell := &bus.Envelope{Kind: bus.KindTell, To: bus.Ref{Name: "x"}, Type: "[]uint8", Body: make([]byte, 100)}

	ended, end := context.WithCancel(context.Background())
	end()
	fill := func() {
		for {
			env := *tell // Send borrows its envelope
			if err := l.Send(ended, &env); err != nil {
				return
			}
		}
	}
	fill()
	<-rh.in
	fill() // what the reader took before it stopped

	send := func(ctx context.Context) chan error {
		ch := make(chan error, 1)
		env := *tell
		go func() { ch <- l.Send(ctx, &env) }()
		return ch
	}
	sctx, scancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer scancel()
	sleeper := send(sctx)
	for l.roomWaits.Load() == 0 { // it sleeps in the kernel
		select {
		case err := <-sleeper:
			t.Fatalf("sleeper returned while the ring was full: %v", err)
		default:
			time.Sleep(time.Millisecond)
		}
	}
	waiter := send(ctx)
	if err := <-sleeper; !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("sleeper: %v, want its ctx's deadline", err)
	}
	for l.roomWaits.Load() < 2 { // the waiter took over the sleep in the kernel
		select {
		case err := <-waiter:
			t.Fatalf("waiter returned while the ring was full: %v", err)
		default:
			time.Sleep(time.Millisecond)
		}
	}
	rh.release()
	if err := <-waiter; err != nil {
		t.Fatalf("waiter: %v, want its tell sent once the reader freed room", err)
	}
	if s := l.roomSlept.Load(); s != 1 {
		t.Fatalf("%d sleeps lasted until they timed out, want the sleeper's alone: the waiter was not woken", s)
	}
}

// TestPollersShareTheReader has goroutines poll a link's ring (Poll, as
// askers waiting for a reply do) while its reader polls it too, with
// senders sending replies and tells of whole records and of fragments over
// the smallest ring: every message arrives once, in order per sender,
// whoever took it; and the pollers took some of them.
func TestPollersShareTheReader(t *testing.T) {
	rh := &orderHost{testHost: newTestHost(), pauseEvery: 64, next: map[uint32]uint32{}}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sl, rl := linkPair(t, ctx, MinRingSize, rh, rh.testHost, newTestHost())

	stop := make(chan struct{})
	var took atomic.Int64
	var pollers sync.WaitGroup
	for range 3 {
		pollers.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				if rl.Poll() {
					took.Add(1)
				} else {
					runtime.Gosched() // as an asker does
				}
			}
		})
	}
	const senders, per = 4, 2000
	sendFrom(t, ctx, sl, senders, per, func(s, i uint32) bus.Envelope {
		return numberedMixed(s, i, 100+int(i%3)*2000) // whole records and fragmented messages, replies and tells
	})
	rh.waitFor(senders * per)
	close(stop)
	pollers.Wait()
	got, bad := rh.counts()
	t.Logf("%d tells arrived, %d out of order; pollers took records %d times", got, bad, took.Load())
	if got != senders*per || bad != 0 {
		t.Fatalf("%d tells arrived (%d out of order), want %d in order", got, bad, senders*per)
	}
	if took.Load() == 0 {
		t.Fatal("the pollers took nothing: the test did not share the ring")
	}
}

// TestReaderWaitsForAPoller holds a link's poll lock, as an asker does
// while it delivers the replies it took: the reader, its spin spent, waits for the
// lock where it would park anyway instead of spinning on it, and once the
// lock is free it delivers again.
func TestReaderWaitsForAPoller(t *testing.T) {
	rh := &orderHost{testHost: newTestHost(), pauseEvery: 64, next: map[uint32]uint32{}}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	bl, rl := linkPair(t, ctx, 0, rh, rh.testHost, newTestHost())

	rl.pollMu.Lock()
	for !readerWaitsForLock() {
		if ctx.Err() != nil {
			rl.pollMu.Unlock()
			t.Fatal("the reader never waited for the poll lock: it spins on it")
		}
		time.Sleep(time.Millisecond)
	}
	rl.pollMu.Unlock()

	body := make([]byte, 8)
	env := bus.Envelope{Kind: bus.KindTell, To: bus.Ref{Name: "x"}, Type: "[]uint8", Body: body}
	if err := bl.Send(ctx, &env); err != nil {
		t.Fatal(err)
	}
	for {
		if got, _ := rh.counts(); got == 1 {
			return
		}
		if ctx.Err() != nil {
			t.Fatal("the tell sent once the lock was free never arrived")
		}
		time.Sleep(time.Millisecond)
	}
}

// readerWaitsForLock reports whether a link's reader loop is blocked on a
// sync.Mutex, by the goroutines' stacks.
func readerWaitsForLock() bool {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "(*link).loop(") && strings.Contains(g, "[sync.Mutex.Lock") {
			return true
		}
	}
	return false
}

// countingHost counts what a link hands back undelivered.
type countingHost struct {
	*testHost
	undelivered atomic.Int64
}

func (h *countingHost) Undelivered(bus.Link, *bus.Envelope, error) { h.undelivered.Add(1) }

// TestPollersAsTheLinkEnds has goroutines poll a link's ring (as askers
// do) while senders stream tells, whole records and fragmented, and the
// sending end closes the link under them: each tell the sender accepted is
// delivered once, in order per sender, or handed back to the sender as
// undelivered; none is lost, none comes twice, a poll of the ended link's
// memory takes nothing and does not fault.
func TestPollersAsTheLinkEnds(t *testing.T) {
	for _, cut := range []int64{200, 3000} {
		t.Run(fmt.Sprint(cut), func(t *testing.T) { pollersAsTheLinkEnds(t, cut) })
	}
}

func pollersAsTheLinkEnds(t *testing.T, cut int64) {
	rh := &orderHost{testHost: newTestHost(), pauseEvery: 64, next: map[uint32]uint32{}}
	sh := &countingHost{testHost: newTestHost()}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sl, rl := linkPair(t, ctx, MinRingSize, rh, rh.testHost, sh)

	stop := make(chan struct{})
	var pollers sync.WaitGroup
	for range 3 {
		pollers.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				if !rl.Poll() {
					runtime.Gosched()
				}
			}
		})
	}
	const senders, per = 4, 2000
	var tried, accepted atomic.Int64
	var wg sync.WaitGroup
	for s := range uint32(senders) {
		wg.Go(func() {
			for i := range uint32(per) {
				env := numberedMixed(s, i, 100+int(i%3)*2000)
				tried.Add(1)
				if sl.Send(ctx, &env) != nil {
					return // the link ended: nothing after this is sent
				}
				accepted.Add(1)
			}
		})
	}
	for tried.Load() < cut {
		runtime.Gosched()
	}
	sl.Close(errors.New("closed by the test"))
	wg.Wait()
	for _, h := range []*testHost{sh.testHost, rh.testHost} {
		select {
		case <-h.down:
		case <-ctx.Done():
			t.Fatal("a side never saw the link go down")
		}
	}
	if rl.Poll() {
		t.Error("a poll of the ended link took something")
	}
	close(stop)
	pollers.Wait()
	got, bad := rh.counts()
	back := sh.undelivered.Load()
	t.Logf("accepted %d: delivered %d, handed back %d", accepted.Load(), got, back)
	if bad != 0 || int64(got)+back != accepted.Load() {
		t.Fatalf("accepted %d tells: %d delivered (%d out of order) + %d handed back, want each once, in order",
			accepted.Load(), got, bad, back)
	}
}

// linkPair links a transport serving rh to one of sh, over rings of size
// bytes (0: the default), and returns the link's sending end and its
// receiving end; up is rh's. The transports close when the test ends.
func linkPair(t *testing.T, ctx context.Context, size int, rh bus.Host, up *testHost, sh bus.Host) (send, recv *link) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "s")
	rt := New(Config{Listen: path, RingSize: size})
	if err := rt.Start(rh); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rt.Close(context.Background()) })
	st := New(Config{RingSize: size})
	if err := st.Start(sh); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close(context.Background()) })
	bl, err := st.Dial(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case l := <-up.up:
		return bl.(*link), l.(*link)
	case <-ctx.Done():
		t.Fatal("the listener never saw the link")
	}
	return nil, nil
}

// sendFrom sends per envelopes made by env from each of senders goroutines
// on l, and fails the test if a Send fails.
func sendFrom(t *testing.T, ctx context.Context, l bus.Link, senders, per int, env func(s, i uint32) bus.Envelope) {
	t.Helper()
	errs := make(chan error, senders)
	var wg sync.WaitGroup
	for s := range uint32(senders) {
		wg.Go(func() {
			for i := range uint32(per) {
				e := env(s, i)
				if err := l.Send(ctx, &e); err != nil {
					errs <- fmt.Errorf("sender %d, message %d: %w", s, i, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}
