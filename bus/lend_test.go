package bus_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/xbus-dev/xbus/bus"
	"github.com/xbus-dev/xbus/codec"
	"github.com/xbus-dev/xbus/internal/race"
	"github.com/xbus-dev/xbus/mailbox"
	"github.com/xbus-dev/xbus/netbus"
)

// numbered is a body of n bytes that says i in each of its 8-byte words,
// so that a body another one overwrote in part shows.
func numbered(i uint64, n int) []byte {
	p := make([]byte, n)
	for o := 0; o+8 <= n; o += 8 {
		binary.LittleEndian.PutUint64(p[o:], i)
	}
	return p
}

// numberOf returns the number p says, and whether every word says it.
func numberOf(p []byte) (uint64, bool) {
	if len(p) < 8 {
		return 0, false
	}
	i := binary.LittleEndian.Uint64(p)
	return i, bytes.Equal(p, numbered(i, len(p)))
}

// orderChecker is an actor that borrows bytes and checks that the bodies
// it receives say 0, 1, 2... in order, each whole. It writes over each
// body before it returns, as a borrower may.
type orderChecker struct {
	next atomic.Uint64
	bad  atomic.Value // the first error
}

func (a *orderChecker) Receive(c *bus.Context, msg any) error {
	p, ok := msg.([]byte)
	if !ok {
		return nil
	}
	i, whole := numberOf(p)
	if want := a.next.Load(); !whole || i != want {
		a.bad.CompareAndSwap(nil, fmt.Errorf("body %d: says %d (whole %v), %x", want, i, whole, p))
	}
	a.next.Add(1)
	clear(p)
	return nil
}

func (a *orderChecker) err() error {
	if e, _ := a.bad.Load().(error); e != nil {
		return e
	}
	return nil
}

// TestBorrowedBytesInBatches hands an actor that borrows bytes batches of
// []byte tells of several sizes, lent and not (over lentMax), scribbling
// over each batch's bodies once DeliverBatch returns, as a transport reuses
// its buffer: the actor receives each body whole and in order, although it
// clears each one it receives and the bus reuses its memory.
func TestBorrowedBytesInBatches(t *testing.T) {
	forBorrowers(t, testBorrowedBytesInBatches)
}

// forBorrowers runs test with the options of an actor that borrows bytes:
// on the bus's goroutines, and on the link's reader (WithInline), where a
// batch's bodies are lent in place.
func forBorrowers(t *testing.T, test func(*testing.T, ...bus.ActorOption)) {
	t.Run("pooled", func(t *testing.T) { test(t, bus.WithBorrowedBytes()) })
	t.Run("inline", func(t *testing.T) { test(t, bus.WithBorrowedBytes(), bus.WithInline()) })
}

func testBorrowedBytesInBatches(t *testing.T, opts ...bus.ActorOption) {
	b := newTestBus(t)
	a := &orderChecker{}
	if _, err := b.Register("borrower", a, opts...); err != nil {
		t.Fatal(err)
	}
	l := &batchLink{peer: bus.NewNodeID()}
	sizes := []int{8, 64, 200, 1024, 1032, 4000}
	const batches = 300
	var sent uint64
	for n := range batches {
		envs := make([]bus.Envelope, 1+n%70)
		for i := range envs {
			envs[i] = wire(t, b, bus.Envelope{Kind: bus.KindTell, To: bus.Ref{Name: "borrower"}, Msg: numbered(sent, sizes[int(sent)%len(sizes)])})
			sent++
		}
		bodies := make([][]byte, len(envs))
		for i := range envs {
			bodies[i] = envs[i].Body
		}
		b.DeliverBatch(l, envs)
		for _, p := range bodies {
			clear(p) // the transport's buffer, reused
		}
		for a.next.Load() < sent { // so that the mailbox never fills
			runtime.Gosched()
		}
	}
	eventually(t, "every tell received", func() error {
		if got := a.next.Load(); got != sent {
			return fmt.Errorf("%d of %d", got, sent)
		}
		return nil
	})
	if err := a.err(); err != nil {
		t.Fatal(err)
	}
	if n := b.DeadLetters(); n != 0 {
		t.Fatalf("%d dead letters", n)
	}
}

// deadLetters collects b's dead letters.
func deadLetters(t *testing.T, b *bus.Bus) func() []bus.DeadLetter {
	t.Helper()
	sub, err := b.Subscribe(context.Background(), bus.DeadLetterSubject, bus.WithWindow(1<<12))
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var got []bus.DeadLetter
	go func() {
		for m := range sub.Messages() {
			if d, ok := m.Msg.(bus.DeadLetter); ok {
				mu.Lock()
				got = append(got, d)
				mu.Unlock()
			}
		}
	}()
	return func() []bus.DeadLetter {
		mu.Lock()
		defer mu.Unlock()
		return append([]bus.DeadLetter(nil), got...)
	}
}

// TestBorrowedBytesOutliveReceive: what outlives a lent body's Receive on
// the bus's side keeps its bytes while later tells reuse the lent memory:
// the dead letter of a Receive that failed on it (a copy, not the bytes
// lent, wherever the slab goes next), the dead letters of
// tells a full mailbox refused, and a body that does not decode is a dead
// letter with its reason, the link up and the tells after it delivered.
func TestBorrowedBytesOutliveReceive(t *testing.T) {
	b := newTestBus(t)
	dead := deadLetters(t, b)
	gate := make(chan struct{})
	var took atomic.Int64
	var lent0 atomic.Pointer[byte] // where the failed tell's lent bytes lie
	fail := errors.New("refused on purpose")
	if _, err := b.Register("borrower", bus.ActorFunc(func(c *bus.Context, msg any) error {
		p, ok := msg.([]byte)
		if !ok {
			return nil
		}
		took.Add(1)
		if i, _ := numberOf(p); i == 0 {
			lent0.Store(&p[0])
			<-gate // the mailbox fills behind it
			return fail
		}
		clear(p)
		return nil
	}), bus.WithBorrowedBytes(), bus.WithMailbox(mailbox.Options{Capacity: 4})); err != nil {
		t.Fatal(err)
	}
	l := &batchLink{peer: bus.NewNodeID()}
	tell := func(i uint64) bus.Envelope {
		return wire(t, b, bus.Envelope{Kind: bus.KindTell, To: bus.Ref{Name: "borrower"}, Msg: numbered(i, 64)})
	}
	b.DeliverBatch(l, []bus.Envelope{tell(0)})
	eventually(t, "the first tell taken", func() error {
		if took.Load() != 1 {
			return errors.New("not yet")
		}
		return nil
	})
	var envs []bus.Envelope
	for i := uint64(1); i <= 10; i++ { // 4 fit, 6 are refused
		envs = append(envs, tell(i))
	}
	bad := tell(11)
	bad.Body = []byte{0x5b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff} // a byte string longer than anything
	envs = append(envs, bad)
	b.DeliverBatch(l, envs)
	close(gate)
	eventually(t, "the queued tells taken", func() error {
		if took.Load() != 5 {
			return errors.New("not yet")
		}
		return nil
	})
	for i := uint64(12); i < 1000; i += 4 { // the lent memory is reused meanwhile
		b.DeliverBatch(l, []bus.Envelope{tell(i), tell(i + 1), tell(i + 2), tell(i + 3)})
		eventually(t, "the batch taken", func() error {
			if n, want := took.Load(), int64(i-3); n < want {
				return fmt.Errorf("%d tells taken, want %d", n, want)
			}
			return nil
		})
	}
	if err := l.closed(); err != nil {
		t.Fatalf("the link closed: %v", err)
	}
	eventually(t, "the dead letters", func() error {
		ds := dead()
		if len(ds) < 8 {
			return fmt.Errorf("%d dead letters", len(ds))
		}
		return nil
	})
	var failed, full, undecodable int
	for _, d := range dead() {
		switch {
		case errors.Is(d.Reason, bus.ErrActorFailed):
			// Its bytes are a copy, not the lent ones, which later tells
			// may reuse once the slab is free.
			m := d.Msg.([]byte)
			if len(m) == 0 || &m[0] == lent0.Load() {
				t.Fatal("the failed tell's dead letter holds the lent bytes, not a copy")
			}
			if i, whole := numberOf(m); i != 0 || !whole {
				t.Fatalf("the failed tell's dead letter holds %x", d.Msg)
			}
			failed++
		case errors.Is(d.Reason, bus.ErrMailboxFull):
			if i, whole := numberOf(d.Msg.([]byte)); i < 5 || i > 10 || !whole {
				t.Fatalf("a refused tell's dead letter holds %x", d.Msg)
			}
			full++
		case errors.Is(d.Reason, bus.ErrBadEnvelope):
			undecodable++
		default:
			t.Fatalf("dead letter %v", d.Reason)
		}
	}
	if failed != 1 || full != 6 || undecodable != 1 {
		t.Fatalf("dead letters: %d failed, %d refused, %d undecodable; want 1, 6, 1", failed, full, undecodable)
	}
}

// TestBorrowedBytesAllocatesNothing: in the steady state a batch of []byte
// tells to an actor that borrows bytes allocates nothing, where one that
// does not allocates a body each.
func TestBorrowedBytesAllocatesNothing(t *testing.T) {
	if race.Enabled {
		t.Skip("the race detector allocates")
	}
	b := newTestBus(t)
	var got atomic.Int64
	count := bus.ActorFunc(func(*bus.Context, any) error { got.Add(1); return nil })
	if _, err := b.Register("borrower", count, bus.WithBorrowedBytes()); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Register("taker", count); err != nil {
		t.Fatal(err)
	}
	l := &batchLink{peer: bus.NewNodeID()}
	envs := make([]bus.Envelope, 16)
	var want int64
	ones := map[string]bus.Envelope{}
	for _, to := range []string{"borrower", "taker"} {
		ones[to] = wire(t, b, bus.Envelope{Kind: bus.KindTell, To: bus.Ref{Name: to}, Msg: make([]byte, 64)})
	}
	deliver := func(to string) {
		one := ones[to]
		for i := range envs {
			envs[i] = one
		}
		want += int64(len(envs))
		b.DeliverBatch(l, envs)
		for got.Load() < want {
			runtime.Gosched()
		}
	}
	for range 100 {
		deliver("borrower")
		deliver("taker")
	}
	lent := testing.AllocsPerRun(1000, func() { deliver("borrower") })
	given := testing.AllocsPerRun(1000, func() { deliver("taker") })
	t.Logf("%v allocations per batch of %d lent, %v given", lent, len(envs), given)
	if lent > 0 || given < float64(len(envs)) {
		t.Fatalf("%v allocations per batch of %d lent, %v given; want none lent", lent, len(envs), given)
	}
}

// TestBorrowedBytesOverTCP sends tells of []byte bodies from one bus to an
// actor that borrows bytes on another over a real TCP connection, from
// two senders: each sender's bodies arrive whole and in order.
func TestBorrowedBytesOverTCP(t *testing.T) {
	for _, scheme := range []string{"tcp", "unix"} {
		t.Run(scheme, func(t *testing.T) {
			listen := "tcp://127.0.0.1:0"
			if scheme == "unix" {
				listen = "unix://" + filepath.Join(t.TempDir(), "b.sock")
			}
			aT := netbus.New(netbus.Config{})
			bT := netbus.New(netbus.Config{Listen: []string{listen}})
			a := linkedBus(t, bus.WithTransport(aT))
			b := linkedBus(t, bus.WithTransport(bT))
			const senders, each = 2, 20_000
			var mu sync.Mutex
			next := map[uint64]uint64{}
			var got atomic.Int64
			var bad atomic.Value
			if _, err := b.Register("borrower", bus.ActorFunc(func(c *bus.Context, msg any) error {
				p, ok := msg.([]byte)
				if !ok {
					return nil
				}
				v, whole := numberOf(p)
				s, i := v>>32, v&(1<<32-1)
				mu.Lock()
				if !whole || i != next[s] {
					bad.CompareAndSwap(nil, fmt.Errorf("sender %d: body %d says %d (whole %v)", s, next[s], i, whole))
				}
				next[s] = i + 1
				mu.Unlock()
				clear(p)
				got.Add(1)
				return nil
			}), bus.WithBorrowedBytes(), bus.WithMailbox(mailbox.Options{Capacity: 1 << 16})); err != nil {
				t.Fatal(err)
			}
			if err := a.Connect(bT.Addrs()[0]); err != nil {
				t.Fatal(err)
			}
			waitFor(t, a, "borrower")
			var wg sync.WaitGroup
			for s := range uint64(senders) {
				wg.Go(func() {
					for i := range uint64(each) {
						if err := a.Tell("borrower", numbered(s<<32|i, 64+int(i%3)*300)); err != nil {
							bad.CompareAndSwap(nil, err)
							return
						}
					}
				})
			}
			wg.Wait()
			eventually(t, "every tell received", func() error {
				if n := got.Load() + int64(b.DeadLetters()); n < senders*each {
					return fmt.Errorf("%d of %d", n, senders*each)
				}
				return nil
			})
			if e, _ := bad.Load().(error); e != nil {
				t.Fatal(e)
			}
			if n := b.DeadLetters(); n != 0 {
				t.Fatalf("%d dead letters", n)
			}
		})
	}
}

// FuzzBorrowedBytes hands an actor that borrows bytes a []byte tell of
// any body, in each codec that lends, on the bus's goroutines and on the
// caller (WithInline): it receives what DecodeBody decodes, or the tell is
// a dead letter whose reason wraps ErrBadEnvelope, and nothing panics.
func FuzzBorrowedBytes(f *testing.F) {
	for _, p := range [][]byte{{}, {0x40}, {0x58, 0x02, 1, 2}, {0x5f, 0x41, 1, 0xff}, {0x5b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, numbered(1, 1100)} {
		f.Add(false, p)
		f.Add(true, p)
	}
	b := newTestBus(f)
	got := make(chan []byte, 1)
	borrower := bus.ActorFunc(func(c *bus.Context, msg any) error {
		if p, ok := msg.([]byte); ok {
			got <- bytes.Clone(p)
		}
		return nil
	})
	if _, err := b.Register("borrower", borrower, bus.WithBorrowedBytes()); err != nil {
		f.Fatal(err)
	}
	// It takes its bodies in place, on the caller of DeliverBatch.
	if _, err := b.Register("borrower-inline", borrower, bus.WithBorrowedBytes(), bus.WithInline()); err != nil {
		f.Fatal(err)
	}
	typed := bus.Envelope{Kind: bus.KindTell, Msg: []byte{}}
	if _, err := b.Types().EncodeBody(codec.Binary(), &typed, nil); err != nil {
		f.Fatal(err)
	}
	l := &batchLink{peer: bus.NewNodeID()}
	f.Fuzz(func(t *testing.T, raw bool, body []byte) {
		for _, to := range []string{"borrower", "borrower-inline"} {
			env := bus.Envelope{Kind: bus.KindTell, To: bus.Ref{Name: to}, Type: typed.Type, Body: bytes.Clone(body)}
			var c bus.Codec = codec.Binary()
			if raw {
				env.Codec, c = bus.Raw.Name(), bus.Raw
			}
			want := env
			wantErr := b.Types().DecodeBody(c, &want)
			dead := b.DeadLetterCount(bus.ErrBadEnvelope)
			b.DeliverBatch(l, []bus.Envelope{env}) // a body that does not decode is refused before it returns
			if wantErr != nil {
				if n := b.DeadLetterCount(bus.ErrBadEnvelope); n != dead+1 {
					t.Fatalf("%s, body %x: DecodeBody fails (%v), but %d dead letters", to, body, wantErr, n-dead)
				}
				continue
			}
			select {
			case p := <-got:
				if !bytes.Equal(p, want.Msg.([]byte)) {
					t.Fatalf("%s, body %x: the actor took %x; DecodeBody gives %x", to, body, p, want.Msg)
				}
			case <-time.After(time.Minute):
				t.Fatalf("%s, body %x: the actor took nothing (%d dead letters)", to, body, b.DeadLetters())
			}
		}
	})
}

// TestBorrowedBytesPanicValue: a Receive that panics with its lent body
// leaves the bytes in the failure's reason (a PanicError's Value), which
// the dead letter carries past Receive with the body: both stay the
// body's while later tells reuse the lent memory.
func TestBorrowedBytesPanicValue(t *testing.T) {
	forBorrowers(t, testBorrowedBytesPanicValue)
}

func testBorrowedBytesPanicValue(t *testing.T, opts ...bus.ActorOption) {
	b := newTestBus(t)
	dead := deadLetters(t, b)
	var took atomic.Int64
	panics := func(i uint64) bool { return i%16 == 1 } // not 0: what a cleared body says
	if _, err := b.Register("borrower", bus.ActorFunc(func(c *bus.Context, msg any) error {
		p, ok := msg.([]byte)
		if !ok {
			return nil
		}
		took.Add(1)
		if i, _ := numberOf(p); panics(i) {
			panic(p)
		}
		clear(p)
		return nil
	}), opts...); err != nil {
		t.Fatal(err)
	}
	l := &batchLink{peer: bus.NewNodeID()}
	tell := func(i uint64) bus.Envelope {
		return wire(t, b, bus.Envelope{Kind: bus.KindTell, To: bus.Ref{Name: "borrower"}, Msg: numbered(i, 64)})
	}
	const sent = 1024
	for i := uint64(0); i < sent; i += 4 { // the lent memory is reused meanwhile
		envs := []bus.Envelope{tell(i), tell(i + 1), tell(i + 2), tell(i + 3)}
		b.DeliverBatch(l, envs)
		for _, env := range envs {
			clear(env.Body) // the transport's buffer, reused
		}
		eventually(t, "the batch taken", func() error {
			if n, want := took.Load(), int64(i+4); n < want {
				return fmt.Errorf("%d tells taken, want %d", n, want)
			}
			return nil
		})
	}
	var ds []bus.DeadLetter
	eventually(t, "the dead letters", func() error {
		if ds = dead(); len(ds) != sent/16 {
			return fmt.Errorf("%d dead letters", len(ds))
		}
		return nil
	})
	seen := map[uint64]bool{} // each body once: a slab's same place in a later batch holds another that panics
	for _, d := range ds {
		var pe *bus.PanicError
		if !errors.As(d.Reason, &pe) {
			t.Fatalf("dead letter's reason %v, want a panic", d.Reason)
		}
		i, whole := numberOf(pe.Value.([]byte))
		if !panics(i) || !whole || seen[i] {
			t.Fatalf("a panic's value holds %x", pe.Value)
		}
		seen[i] = true
		if j, whole := numberOf(d.Msg.([]byte)); j != i || !whole {
			t.Fatalf("the dead letter of the panic with %d holds %x", i, d.Msg)
		}
	}
}
