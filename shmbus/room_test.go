//go:build linux

package shmbus

import (
	"context"
	"encoding/binary"
	"fmt"
	"path/filepath"
	"sync"
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

// TestSendersWokenForRoom sends many tells from four goroutines over a
// link of the smallest ring to a reader that pauses now and then, so that
// senders keep finding the ring full. A sender that finds it full sleeps
// until the reader frees room and wakes it: with the sleep's safety slice
// made a minute long, no sleep may last its whole slice (a missed wake-up
// would, and fail its send by its deadline). Every tell arrives, in order
// per sender, none lost.
func TestSendersWokenForRoom(t *testing.T) {
	defer func(d time.Duration) { roomSlice = d }(roomSlice)
	roomSlice = time.Minute

	path := filepath.Join(t.TempDir(), "s")
	rh := &orderHost{testHost: newTestHost(), pauseEvery: 16, next: map[uint32]uint32{}}
	rt := New(Config{Listen: path, RingSize: MinRingSize})
	if err := rt.Start(rh); err != nil {
		t.Fatal(err)
	}
	defer rt.Close(context.Background())
	st := New(Config{RingSize: MinRingSize})
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

	const senders, per = 4, 5000
	errs := make(chan error, senders)
	var wg sync.WaitGroup
	for s := range uint32(senders) {
		wg.Go(func() {
			body := make([]byte, 100)
			binary.LittleEndian.PutUint32(body, s)
			for i := range uint32(per) {
				binary.LittleEndian.PutUint32(body[4:], i)
				env := bus.Envelope{Kind: bus.KindTell, To: bus.Ref{Name: "x"}, Type: "[]uint8", Body: body}
				if err := l.Send(ctx, &env); err != nil {
					errs <- fmt.Errorf("sender %d, tell %d: %w", s, i, err)
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
	for range 3000 {
		if got, _ := rh.counts(); got >= senders*per {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
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
