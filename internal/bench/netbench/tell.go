package netbench

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/xbus-dev/xbus/bus"
	"github.com/xbus-dev/xbus/codec"
	"github.com/xbus-dev/xbus/internal/benchkit"
	"github.com/xbus-dev/xbus/mailbox"
)

// The one-way tells between two processes: the peer's bus has a "sink"
// that counts the tells it takes ("sink-borrowed" likewise, borrowing
// them: bus.WithBorrowedBytes; "sink-inline" borrowing them on the link's
// reader: bus.WithInline too), a "count" that answers how many they took
// and dropped (a tell its full mailbox refused is a dead letter, counted,
// never a wait on the link), and a "cpu" that answers the peer's CPU time.
// The baseline is a raw stream of frames of the same size, written through
// a 64 KiB buffer to a reader in the peer that only counts them.

// sinkActors registers the peer's sink, count and cpu actors on b.
func sinkActors(b *bus.Bus) {
	var sunk atomic.Int64
	sink := bus.ActorFunc(func(c *bus.Context, msg any) error {
		if _, ok := msg.([]byte); ok {
			sunk.Add(1)
		}
		return nil
	})
	b.Register("sink", sink, bus.WithMailbox(mailbox.Options{Capacity: 1 << 16}))
	b.Register("sink-borrowed", sink, bus.WithMailbox(mailbox.Options{Capacity: 1 << 16}), bus.WithBorrowedBytes())
	b.Register("sink-inline", sink, bus.WithMailbox(mailbox.Options{Capacity: 1 << 16}), bus.WithBorrowedBytes(), bus.WithInline())
	b.Register("count", bus.ActorFunc(func(c *bus.Context, msg any) error {
		if !c.IsAsk() {
			return nil
		}
		return c.Reply(fmt.Sprint(sunk.Load(), b.DeadLetterCount(bus.ErrMailboxFull)))
	}))
	b.Register("cpu", bus.ActorFunc(func(c *bus.Context, msg any) error {
		if !c.IsAsk() {
			return nil
		}
		return c.Reply(strconv.FormatInt(int64(benchkit.CPUTime()), 10))
	}))
}

// streamSink is the peer's end of the raw stream: per round, a 12-byte
// header (frame size, frame count, big-endian), then the frames, read
// through a 64 KiB buffer; it answers one byte when it has read them all.
func streamSink(s net.Conn) {
	buf := make([]byte, 64<<10)
	var hdr [12]byte
	for {
		if _, err := io.ReadFull(s, hdr[:]); err != nil {
			return
		}
		left := int64(binary.BigEndian.Uint32(hdr[:])) * int64(binary.BigEndian.Uint64(hdr[4:]))
		for left > 0 {
			k, err := s.Read(buf[:min(int64(len(buf)), left)])
			left -= int64(k)
			if err != nil {
				return
			}
		}
		if _, err := s.Write(hdr[:1]); err != nil {
			return
		}
	}
}

// counts asks the peer's count actor how many tells its sink took and
// dropped. The ask is ordered behind this end's tells on the link.
func (e *end) counts(ctx context.Context) (taken, dropped int64, err error) {
	r, err := e.bus.Ask(ctx, "count", "")
	if err != nil {
		return 0, 0, err
	}
	s, _ := r.(string)
	if _, err := fmt.Sscan(s, &taken, &dropped); err != nil {
		return 0, 0, fmt.Errorf("netbench: count %q: %w", s, err)
	}
	return taken, dropped, nil
}

// cpu returns the CPU time this process and the peer have used.
func (e *end) cpu() (self, peer time.Duration, err error) {
	r, err := e.bus.Ask(context.Background(), "cpu", "")
	if err != nil {
		return 0, 0, err
	}
	s, _ := r.(string)
	n, err := strconv.ParseInt(s, 10, 64)
	return benchkit.CPUTime(), time.Duration(n), err
}

// tellRound sends n one-way tells of the body to the peer's sink from one
// goroutine and returns the time until the peer had taken or dropped them
// all, and how many it dropped.
func (e *end) tellRound(sink string, n int) (el time.Duration, dropped int64, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	t0, d0, err := e.counts(ctx)
	if err != nil {
		return 0, 0, err
	}
	var msg any = e.body // converted once: the caller's allocation, not the bus's
	start := time.Now()
	for range n {
		if err := e.bus.Tell(sink, msg); err != nil {
			return 0, 0, err
		}
	}
	for {
		t1, d1, err := e.counts(ctx)
		if err != nil {
			return 0, 0, err
		}
		if got := (t1 - t0) + (d1 - d0); got >= int64(n) {
			if got > int64(n) {
				return 0, 0, fmt.Errorf("netbench: the sink counted %d tells, %d were sent", got, n)
			}
			return time.Since(start), d1 - d0, nil
		}
		time.Sleep(50 * time.Microsecond) // the sink's actor is still at it
	}
}

// streamRound writes n frames of size bytes to the peer's stream sink
// through a 64 KiB buffer and returns the time until the sink had read
// them all.
func (e *end) streamRound(n, size int) (time.Duration, error) {
	if e.stream == nil {
		return 0, errors.New("netbench: no raw stream to the peer")
	}
	out := make([]byte, 12, 64<<10)
	binary.BigEndian.PutUint32(out, uint32(size))
	binary.BigEndian.PutUint64(out[4:], uint64(n))
	msg := make([]byte, size)
	start := time.Now()
	for range n {
		if len(out)+size > cap(out) {
			if _, err := e.stream.Write(out); err != nil {
				return 0, err
			}
			out = out[:0]
		}
		out = append(out, msg...)
	}
	if _, err := e.stream.Write(out); err != nil {
		return 0, err
	}
	if _, err := io.ReadFull(e.stream, out[:1]); err != nil {
		return 0, err
	}
	return time.Since(start), nil
}

// tellFrameSize is a one-way tell's frame on the wire for a size-byte
// []byte body to a named actor, which the raw stream writes instead.
func tellFrameSize(b *bus.Bus, size int) (int, error) {
	env := &bus.Envelope{Kind: bus.KindTell, To: bus.Ref{Name: "sink"}, Msg: make([]byte, size)}
	body, err := b.Types().EncodeBody(codec.Binary(), env, nil)
	if err != nil {
		return 0, err
	}
	env.Body = body
	f, err := env.AppendBinary(nil)
	return frameHeaderLen + len(f), err
}

// TellFigures are the one-way tell rounds over one kind of socket: rates
// and CPU time per message of each process, for the bus and the raw
// stream, measured in alternating rounds.
type TellFigures struct {
	Tells, Stream          float64 // messages per second
	TellSend, TellRecv     float64 // CPU ns per message, sending and receiving process
	StreamSend, StreamRecv float64
	Dropped                int64 // tells the sink's full mailbox refused
	Messages               int   // per side
}

// tells measures total one-way tells to sink and as many raw frames, in
// alternating rounds of at most round each.
func (e *end) tells(sink string, total, round int) (TellFigures, error) {
	var f TellFigures
	frame, err := tellFrameSize(e.bus, len(e.body))
	if err != nil {
		return f, err
	}
	var tTell, tStream, sTell, rTell, sStream, rStream time.Duration
	for done := 0; done < total; {
		n := min(round, total-done)
		done += n
		s0, p0, err := e.cpu()
		if err != nil {
			return f, err
		}
		el, d, err := e.tellRound(sink, n)
		if err != nil {
			return f, err
		}
		s1, p1, err := e.cpu()
		if err != nil {
			return f, err
		}
		tTell, sTell, rTell, f.Dropped = tTell+el, sTell+s1-s0, rTell+p1-p0, f.Dropped+d
		if el, err = e.streamRound(n, frame); err != nil {
			return f, err
		}
		s2, p2, err := e.cpu()
		if err != nil {
			return f, err
		}
		tStream, sStream, rStream = tStream+el, sStream+s2-s1, rStream+p2-p1
		f.Messages += n
	}
	m := float64(f.Messages)
	f.Tells, f.Stream = m/tTell.Seconds(), m/tStream.Seconds()
	per := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / m }
	f.TellSend, f.TellRecv, f.StreamSend, f.StreamRecv = per(sTell), per(rTell), per(sStream), per(rStream)
	return f, nil
}
