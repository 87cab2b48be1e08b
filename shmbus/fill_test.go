//go:build linux

package shmbus

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/xbus-dev/xbus/bus"
)

// TestLinkFilledToCapacity fills a link's 4 KiB ring, whose peer's reader
// has stopped, to its last byte: with whole records that end exactly at
// the end of the ring or wrap past padding with no payload, and with
// messages in fragments whose records end at the wrap, past padding, and
// at the ring's capacity. Without the abort's room (a test hook) the
// fragments fill the ring; with it, as built, a message whose last record
// would take the last 16 bytes waits for the reader, and whole records
// fill the ring but for those 16 bytes. Either way a Send with a short ctx
// then fails and the link stays up, and once the reader goes on it takes
// every message whole, in order, and those sent after.
func TestLinkFilledToCapacity(t *testing.T) {
	// Records of 4 KiB rings carry 496 bytes: a message in fragments of
	// n records and a last of l bytes is 488 + 496(n-2) + l bytes long.
	frag := func(n, last int) send { return send{msg: 488 + 496*(n-2) + last} }
	whole := func(rec int) send { return send{rec: rec} }
	cases := []struct {
		name  string
		first int // the record the reader takes before it stops
		sends []send
		// With the abort's room, whole records that fill the ring but for
		// it while the last message waits for room for its last record.
		fill []int
	}{
		{"whole records to the end and past the wrap", 512, []send{
			whole(512), whole(512), whole(512), whole(512), whole(512), whole(512), whole(512), whole(512)}, nil},
		{"whole records past padding with no payload", 64, []send{
			whole(512), whole(512), whole(512), whole(512), whole(512), whole(512), whole(512), whole(432), whole(64)}, nil},
		{"fragments to the end of the ring, then a whole record", 512, []send{frag(7, 496), whole(512)}, nil},
		{"fragments to the last byte", 512, []send{frag(8, 496)}, []int{496}},
		{"fragments past padding to the last byte", 320, []send{frag(8, 304)}, []int{192, 304}},
		{"fragments past padding with no payload to the last byte", 496, []send{frag(8, 480)}, []int{480}},
	}
	for _, tc := range cases {
		for _, room := range []bool{true, false} {
			name := tc.name
			if !room {
				name += ", no room for the abort"
			}
			t.Run(name, func(t *testing.T) { fillLink(t, tc.first, tc.sends, tc.fill, room) })
		}
	}
}

// send is a message a test sends: a tell whose record is rec bytes long,
// or one of msg bytes, in fragments.
type send struct{ rec, msg int }

func fillLink(t *testing.T, first int, sends []send, fill []int, abortRoom bool) {
	rh := newGateHost()
	sl, _ := quietPairFrom(t, rh, rh.testHost, newTestHost(), func(tr *Transport) { tr.noAbortRoom = !abortRoom })
	defer rh.open()
	bg := context.Background()
	envs := []*bus.Envelope{tellOf(t, first, 'a')}
	if err := sl.Send(bg, envs[0]); err != nil {
		t.Fatal(err)
	}
	<-rh.in // the reader took the first record and stopped
	head := uint64(first)
	if h := sl.prod.w.head.Load(); h != head {
		t.Fatalf("the reader's head is %d, want %d", h, head)
	}
	// Where the tail ends, and where it waits for the reader when the
	// last message's last record would take the abort's room.
	tail, waitAt := head, uint64(0)
	for i, s := range sends {
		fill := byte('b' + i)
		if s.rec != 0 {
			envs = append(envs, tellOf(t, s.rec, fill))
			tail += claimed(tail, uint64(s.rec))
			continue
		}
		env := &bus.Envelope{Kind: bus.KindTell, To: bus.Ref{Name: "x"}, Type: "[]uint8"}
		hdr, err := env.AppendBinary(nil)
		if err != nil {
			t.Fatal(err)
		}
		env.Body = bytes.Repeat([]byte{fill}, s.msg-len(hdr))
		envs = append(envs, env)
		rest, recs := s.msg-(sl.prod.maxRecord-fragHdr), []int{sl.prod.maxRecord}
		for ; rest > 0; rest -= sl.prod.maxRecord {
			recs = append(recs, min(rest, sl.prod.maxRecord))
		}
		for j, n := range recs {
			c := claimed(tail, align(recordHeaderLen+uint64(n), recordAlign))
			if j == len(recs)-1 && abortRoom && tail+c-head > sl.prod.capacity-recordHeaderLen {
				waitAt = tail
			}
			tail += c
		}
	}
	if tail-head != sl.prod.capacity {
		t.Fatalf("the case fills %d bytes of the ring, not %d", tail-head, sl.prod.capacity)
	}
	sent := make(chan error, 1)
	queue := slices.Clone(envs[1:])
	go func() {
		ctx, cancel := context.WithTimeout(bg, time.Minute) // a hang detector
		defer cancel()
		for i, env := range queue {
			if err := sl.Send(ctx, env); err != nil {
				sent <- fmt.Errorf("send %d: %w", i+1, err)
				return
			}
		}
		sent <- nil
	}()
	want := tail
	if waitAt != 0 {
		want = waitAt
	}
	for i := 0; sl.prod.w.tail.Load() != want; i++ {
		if i == 30000 || sl.prod.w.tail.Load() > want {
			t.Fatalf("the tail is at %d, want it to stop at %d", sl.prod.w.tail.Load(), want)
		}
		time.Sleep(time.Millisecond)
	}
	if waitAt == 0 {
		if err := <-sent; err != nil {
			t.Fatalf("sending into the ring, which has room: %v", err)
		}
	} else {
		// The message waiting for its last record is taken after these.
		waiting := envs[len(envs)-1]
		envs = slices.Clone(envs[:len(envs)-1])
		for i, rec := range fill {
			env := tellOf(t, rec, byte('0'+i))
			ctx, cancel := context.WithTimeout(bg, time.Minute) // a hang detector
			err := sl.Send(ctx, env)
			cancel()
			if err != nil {
				t.Fatalf("a whole record beside the waiting message: %v", err)
			}
			envs = append(envs, env)
			want += claimed(want, uint64(rec))
		}
		envs = append(envs, waiting)
		if want-head != sl.prod.capacity-recordHeaderLen {
			t.Fatalf("the case fills %d bytes of the ring, not all but the abort's %d", want-head, recordHeaderLen)
		}
	}
	ctx, cancel := context.WithTimeout(bg, 50*time.Millisecond)
	err := sl.Send(ctx, tellOf(t, 64, 'F'))
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Send into the full ring: %v, want its ctx's error", err)
	}
	if got := sl.prod.w.tail.Load(); got != want {
		t.Fatalf("the tail moved from %d to %d after the ring was full", want, got)
	}

	rh.open()
	if waitAt != 0 {
		if err := <-sent; err != nil {
			t.Fatalf("the message waiting for the reader: %v", err)
		}
	}
	later := []*bus.Envelope{tellOf(t, 128, 'L'), {Kind: bus.KindTell, To: bus.Ref{Name: "x"}, Type: "[]uint8", Body: bytes.Repeat([]byte{'B'}, 3*MinRingSize+7)}}
	for _, env := range later {
		ctx, cancel := context.WithTimeout(bg, 30*time.Second)
		err := sl.Send(ctx, env)
		cancel()
		if err != nil {
			t.Fatalf("Send after the ring was full: %v", err)
		}
	}
	envs = append(envs, later...)
	got := rh.waitBodies(len(envs))
	if len(got) != len(envs) {
		t.Fatalf("%d bodies arrived, want %d", len(got), len(envs))
	}
	for i, env := range envs {
		if !bytes.Equal(got[i], env.Body) {
			t.Fatalf("body %d: %d bytes, want %d of %q", i, len(got[i]), len(env.Body), env.Body[:1])
		}
	}
	select {
	case err := <-rh.down:
		t.Fatalf("the link went down: %v", err)
	default:
	}
}

// claimed is what a record of rec bytes claims at tail in a ring of 4 KiB:
// itself, and the padding before it when it does not fit before the end.
func claimed(tail, rec uint64) uint64 {
	if toEnd := MinRingSize - tail%MinRingSize; rec > toEnd {
		return toEnd + rec
	}
	return rec
}
