package netbench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/xbus-dev/xbus/bus"
	"github.com/xbus-dev/xbus/codec"
	"github.com/xbus-dev/xbus/internal/benchkit"
	"github.com/xbus-dev/xbus/mailbox"
	"github.com/xbus-dev/xbus/netbus"
)

// BenchOptions configures OneProcess. The zero value is valid.
type BenchOptions struct {
	// Duration of each measurement. Zero: 2s.
	Duration time.Duration
	// Size of the message body in bytes. Zero: 64.
	Size int
	// Concurrency lists the numbers of concurrent callers for the calls per
	// second rows. Nil: 1, 16 and 128.
	Concurrency []int
}

// OneProcess measures netbus between two buses in this process over
// loopback TCP and a Unix socket, each figure beside a baseline measured in
// the same run (a raw socket ping-pong or stream of the same bytes).
func OneProcess(out benchkit.Out, o BenchOptions) error {
	if o.Duration == 0 {
		o.Duration = 2 * time.Second
	}
	if o.Size == 0 {
		o.Size = 64
	}
	if o.Concurrency == nil {
		o.Concurrency = []int{1, 16, 128}
	}
	dir, err := os.MkdirTemp("", "netbus-bench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	ns := func(d time.Duration) float64 { return float64(max(d, 1)) }
	for _, nw := range []struct{ name, listen string }{
		{"TCP", "tcp://127.0.0.1:0"},
		{"Unix", "unix://" + filepath.Join(dir, "bench.sock")},
	} {
		if err := onePair(out, nw.name, nw.listen, o, ns); err != nil {
			return err
		}
	}
	return nil
}

// onePair measures one kind of socket for OneProcess.
func onePair(out benchkit.Out, name, listen string, o BenchOptions, ns func(time.Duration) float64) (err error) {
	p, err := NewBenchPair(listen, o.Size)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := p.Close(); err == nil {
			err = cerr
		}
	}()
	out.Progress("%s, one process: ask round trips, raw ping-pongs of %d B, the hand-off floor", name, p.FrameSize)
	raw, err := RawPingPong(listen, p.FrameSize, o.Duration)
	if err != nil {
		return err
	}
	lat, err := p.AskLatency(o.Duration)
	if err != nil {
		return err
	}
	floor, err := RawPingPongHandoff(listen, p.FrameSize, o.Duration)
	if err != nil {
		return err
	}
	inl, err := p.InlineAskLatency(o.Duration)
	if err != nil {
		return err
	}
	row := func(what string, x, base time.Duration) {
		out.Row(benchkit.Row{Name: name + ", one process: " + what, Unit: benchkit.Nanos, Xbus: ns(x), Baseline: ns(base)})
	}
	row("ask round trip p50 (raw ping-pong)", lat.P50, raw.P50)
	row("ask round trip p99 (raw ping-pong)", lat.P99, raw.P99)
	row("ask round trip p50, actor WithInline (raw ping-pong)", inl.P50, raw.P50)
	row("hand-off floor p50 (raw ping-pong)", floor.P50, raw.P50)
	row("ask round trip p50 (hand-off floor)", lat.P50, floor.P50)
	rawRate := float64(raw.N) / raw.Elapsed.Seconds()
	for _, c := range o.Concurrency {
		out.Progress("%s, one process: asks with %d callers", name, c)
		rate, err := p.AskRate(c, o.Duration)
		if err != nil {
			return err
		}
		out.Row(benchkit.Row{Name: fmt.Sprintf("%s, one process: asks, %d callers (raw ping-pong, 1 caller)", name, c), Unit: benchkit.PerSec, Xbus: rate, Baseline: rawRate})
	}
	out.Progress("%s, one process: one-way tells and a raw buffered stream", name)
	tell, err := p.TellRate(o.Duration)
	if err != nil {
		return err
	}
	rawStream, err := RawStream(listen, p.FrameSize, o.Duration)
	if err != nil {
		return err
	}
	out.Row(benchkit.Row{Name: name + ", one process: one-way tells (raw buffered stream)", Unit: benchkit.PerSec, Xbus: tell, Baseline: rawStream,
		Target: "≥ 10 M/s", Status: benchkit.Verdict(tell >= 10e6)})
	return nil
}

// Latency summarizes a series of round trips.
type Latency struct {
	P50, P99 time.Duration
	N        int
	Elapsed  time.Duration
}

func summarize(d []time.Duration, elapsed time.Duration) Latency {
	slices.Sort(d)
	if len(d) == 0 {
		return Latency{}
	}
	return Latency{P50: d[len(d)/2], P99: d[len(d)*99/100], N: len(d), Elapsed: elapsed}
}

// BenchPair is two buses linked by netbus: a server with an "echo" actor
// and a "sink" that counts tells, and a client.
type BenchPair struct {
	Server, Client *bus.Bus
	// FrameSize is the size on the wire of one ask frame, for baselines of
	// the same bytes.
	FrameSize int
	sunk      atomic.Int64
	body      []byte
}

// NewBenchPair starts two buses linked over listen ("tcp://127.0.0.1:0" or
// "unix:///path"), exchanging bodies of size bytes.
func NewBenchPair(listen string, size int) (*BenchPair, error) {
	p := &BenchPair{body: make([]byte, size)}
	log := slog.New(slog.DiscardHandler)
	st := netbus.New(netbus.Config{Listen: []string{listen}})
	var err error
	p.Server, err = bus.New(bus.WithName("bench-server"), bus.WithTransport(st), bus.WithLogger(log))
	if err != nil {
		return nil, err
	}
	echo := bus.ActorFunc(func(c *bus.Context, msg any) error {
		if c.IsAsk() {
			return c.Reply(msg)
		}
		return nil
	})
	p.Server.Register("echo", echo)
	p.Server.Register("echo-inline", echo, bus.WithInline())
	// The server's reader never waits on the sink: a tell its full mailbox
	// cannot take is a dead letter, which the tell rates count as taken.
	p.Server.Register("sink", bus.ActorFunc(func(c *bus.Context, msg any) error {
		if _, ok := msg.([]byte); ok {
			p.sunk.Add(1)
		}
		return nil
	}), bus.WithMailbox(mailbox.Options{Capacity: 1 << 16}))
	ct := netbus.New(netbus.Config{})
	p.Client, err = bus.New(bus.WithName("bench-client"), bus.WithTransport(ct), bus.WithLogger(log))
	if err != nil {
		p.Server.Close(context.Background())
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.Client.Connect(st.Addrs()[0]); err != nil {
		p.Close()
		return nil, err
	}
	for {
		if _, err := p.Client.Ask(ctx, "echo", p.body); err == nil {
			break
		} else if !errors.Is(err, bus.ErrNoRoute) || ctx.Err() != nil {
			p.Close()
			return nil, fmt.Errorf("netbench: waiting for the server's names: %w", err)
		}
		time.Sleep(time.Millisecond)
	}
	env := &bus.Envelope{Kind: bus.KindAsk, From: bus.Ref{Node: p.Client.NodeID(), ID: 1}, To: bus.Ref{Name: "echo"},
		Corr: 1 << 40, Timeout: time.Second, Msg: p.body}
	body, err := p.Client.Types().EncodeBody(codec.Binary(), env, nil)
	if err != nil {
		p.Close()
		return nil, err
	}
	env.Body = body
	b, _ := env.AppendBinary(nil)
	p.FrameSize = frameHeaderLen + len(b)
	return p, nil
}

// Close closes both buses.
func (p *BenchPair) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return errors.Join(p.Client.Close(ctx), p.Server.Close(ctx))
}

// Ask makes one ask round trip.
func (p *BenchPair) Ask(ctx context.Context) error {
	_, err := p.Client.Ask(ctx, "echo", p.body)
	return err
}

// AskLatency measures sequential ask round trips for d.
func (p *BenchPair) AskLatency(d time.Duration) (Latency, error) { return p.askLatency("echo", d) }

// InlineAskLatency is AskLatency to an echo actor registered WithInline:
// the server's connection reader runs it, so the ask reaches the actor
// without a goroutine hand-off.
func (p *BenchPair) InlineAskLatency(d time.Duration) (Latency, error) {
	return p.askLatency("echo-inline", d)
}

func (p *BenchPair) askLatency(to string, d time.Duration) (Latency, error) {
	ctx := context.Background()
	var lat []time.Duration
	start := time.Now()
	for time.Since(start) < d {
		t0 := time.Now()
		if _, err := p.Client.Ask(ctx, to, p.body); err != nil {
			return Latency{}, err
		}
		lat = append(lat, time.Since(t0))
	}
	return summarize(lat, time.Since(start)), nil
}

// AskRate measures asks per second with n concurrent callers for d.
func (p *BenchPair) AskRate(n int, d time.Duration) (float64, error) {
	var count atomic.Int64
	var firstErr error
	var once sync.Once
	var wg sync.WaitGroup
	start := time.Now()
	stop := start.Add(d)
	for range n {
		wg.Go(func() {
			ctx := context.Background()
			for time.Now().Before(stop) {
				if err := p.Ask(ctx); err != nil {
					once.Do(func() { firstErr = err })
					return
				}
				count.Add(1)
			}
		})
	}
	wg.Wait()
	return float64(count.Load()) / time.Since(start).Seconds(), firstErr
}

// TellRate measures one-way tells per second for d: it sends as fast as it
// can, then waits until the sink has counted every tell.
func (p *BenchPair) TellRate(d time.Duration) (float64, error) {
	base := p.taken()
	start := time.Now()
	var sent int64
	for time.Since(start) < d {
		for range 256 {
			if err := p.Client.Tell("sink", p.body); err != nil {
				return 0, err
			}
		}
		sent += 256
	}
	for p.taken()-base < sent {
		if time.Since(start) > d+30*time.Second {
			return 0, fmt.Errorf("netbench: %d of %d tells arrived", p.taken()-base, sent)
		}
		time.Sleep(100 * time.Microsecond)
	}
	return float64(sent) / time.Since(start).Seconds(), nil
}

// taken counts the tells the server took: handled by the sink, or dead
// letters of its full mailbox.
func (p *BenchPair) taken() int64 {
	return p.sunk.Load() + int64(p.Server.DeadLetterCount(bus.ErrMailboxFull))
}

// frameHeaderLen is the size of netbus's frame header, which an ask frame
// carries before its envelope (pinned by TestFrameHeaderLen in netbus).
const frameHeaderLen = 6

func rawListen(listen string) (net.Listener, string, error) {
	network, addr, ok := strings.Cut(listen, "://")
	if !ok || (network != "tcp" && network != "unix") {
		return nil, "", fmt.Errorf("netbench: %q: want tcp://host:port or unix:///path", listen)
	}
	if network == "unix" {
		addr += ".raw"
	}
	ln, err := net.Listen(network, addr)
	return ln, network, err
}

// rawConnPair listens on a socket of listen's kind, dials it, and runs
// serve on the accepted end in a goroutine of its own. done closes the
// client's end and waits for serve to return (it sees EOF).
func rawConnPair(listen string, serve func(c net.Conn)) (c net.Conn, done func(), err error) {
	ln, network, err := rawListen(listen)
	if err != nil {
		return nil, nil, err
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		s, err := ln.Accept()
		ln.Close()
		if err != nil {
			return
		}
		defer s.Close()
		serve(s)
	})
	if c, err = net.Dial(network, ln.Addr().String()); err != nil {
		ln.Close() // the server goroutine is in Accept
		wg.Wait()
		return nil, nil, err
	}
	return c, func() { c.Close(); wg.Wait() }, nil
}

// readEach reads messages of size bytes from c, each into a new buffer
// handed to fn, until c fails.
func readEach(c net.Conn, size int, fn func([]byte)) {
	for {
		buf := make([]byte, size)
		if _, err := io.ReadFull(c, buf); err != nil {
			return
		}
		fn(buf)
	}
}

// RawPingPong is the baseline of an ask: a client writes size bytes on a
// socket of the same kind, the server reads them and writes them back, for
// d.
func RawPingPong(listen string, size int, d time.Duration) (Latency, error) {
	return pingPong(listen, size, d, false)
}

// RawPingPongHandoff is RawPingPong shaped like any runtime that reads a
// connection on a goroutine of its own: on each end a reader goroutine
// reads the message and hands it over a channel to another goroutine (on
// the server, the one that writes the reply, like an actor; on the client,
// the caller, which wrote the request itself and waits for the reply, like
// an asker). No framing, encoding or routing: it is the floor under an ask
// to an actor, for comparing both with the raw ping-pong.
func RawPingPongHandoff(listen string, size int, d time.Duration) (Latency, error) {
	return pingPong(listen, size, d, true)
}

func pingPong(listen string, size int, d time.Duration, handoff bool) (Latency, error) {
	c, done, err := rawConnPair(listen, func(s net.Conn) { RawEcho(s, size, handoff) })
	if err != nil {
		return Latency{}, err
	}
	p := NewRawPinger(c, size, handoff)
	defer func() { done(); p.Close() }() // done closes c: p's reader sees EOF
	var lat []time.Duration
	start := time.Now()
	for time.Since(start) < d {
		t0 := time.Now()
		if err := p.Ping(); err != nil {
			return Latency{}, err
		}
		lat = append(lat, time.Since(t0))
	}
	return summarize(lat, time.Since(start)), nil
}

// RawEcho is the server end of the raw ping-pongs: it reads messages of
// size bytes from s and writes each back, until s fails. With handoff, a
// reader goroutine hands each message over a channel to another that
// writes it back, as in RawPingPongHandoff.
func RawEcho(s net.Conn, size int, handoff bool) {
	if !handoff {
		buf := make([]byte, size)
		for {
			if _, err := io.ReadFull(s, buf); err != nil {
				return
			}
			if _, err := s.Write(buf); err != nil {
				return
			}
		}
	}
	work := make(chan []byte, 1)
	var actor sync.WaitGroup
	actor.Go(func() {
		for buf := range work {
			s.Write(buf) // a failure shows as the reader's EOF
		}
	})
	readEach(s, size, func(buf []byte) { work <- buf })
	close(work)
	actor.Wait()
}

// RawPinger is the client end of the raw ping-pongs, on a connection to a
// RawEcho.
type RawPinger struct {
	c       net.Conn
	buf     []byte
	replies chan []byte    // with handoff: what the reader goroutine read
	reader  sync.WaitGroup // the reader goroutine, with handoff
}

// NewRawPinger returns the client end on c for messages of size bytes.
// With handoff, a reader goroutine reads the replies and hands each to the
// caller of Ping over a channel, as in RawPingPongHandoff.
func NewRawPinger(c net.Conn, size int, handoff bool) *RawPinger {
	p := &RawPinger{c: c, buf: make([]byte, size)}
	if handoff {
		p.replies = make(chan []byte, 1)
		p.reader.Go(func() {
			defer close(p.replies)
			readEach(c, size, func(b []byte) { p.replies <- b })
		})
	}
	return p
}

// Ping makes one round trip: it writes a message and waits for it to come
// back.
func (p *RawPinger) Ping() error {
	if _, err := p.c.Write(p.buf); err != nil {
		return err
	}
	if p.replies == nil {
		_, err := io.ReadFull(p.c, p.buf)
		return err
	}
	if _, ok := <-p.replies; !ok {
		return io.ErrUnexpectedEOF
	}
	return nil
}

// Close closes the connection and waits for the reader goroutine.
func (p *RawPinger) Close() error {
	err := p.c.Close()
	p.reader.Wait()
	return err
}

// RawStream is the baseline of one-way tells: messages of size bytes
// written through a 64 KiB buffer and read by a counting reader, for d.
// It returns messages per second.
func RawStream(listen string, size int, d time.Duration) (float64, error) {
	var got atomic.Int64
	c, done, err := rawConnPair(listen, func(s net.Conn) {
		buf := make([]byte, 64<<10)
		var n int64
		for {
			k, err := s.Read(buf)
			n += int64(k)
			got.Store(n / int64(size))
			if err != nil {
				return
			}
		}
	})
	if err != nil {
		return 0, err
	}
	msg := make([]byte, size)
	out := make([]byte, 0, 64<<10)
	start := time.Now()
	for time.Since(start) < d {
		for range 256 {
			out = append(out, msg...)
			if len(out)+size > cap(out) {
				if _, err := c.Write(out); err != nil {
					done()
					return 0, err
				}
				out = out[:0]
			}
		}
	}
	c.Write(out)
	done()
	return float64(got.Load()) / time.Since(start).Seconds(), nil
}
