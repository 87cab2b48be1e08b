package bus_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/xbus-dev/xbus/bus"
	"github.com/xbus-dev/xbus/codec"
	"github.com/xbus-dev/xbus/internal/benchkit"
)

// memNet joins two buses of this process with a link that frames every
// envelope (the bus encoded its body) into its binary form and decodes the
// header on the other side, on the sending goroutine: what a remote message
// costs the bus itself (routing, envelope and body encoding, decoding,
// delivery), with no transport, no second thread and no goroutine hand-off. System messages (names) go
// through a goroutine, in order, so that no lock of the bus is held when
// they are delivered.
type memNet struct {
	mu    sync.Mutex
	hosts []bus.Host
	sys   chan func()
	// drop makes a link frame its tells and asks and hand them to nobody:
	// what sending costs, without the receiving side.
	drop atomic.Bool
}

type memTransport struct{ n *memNet }

func (t memTransport) Schemes() []string { return []string{"mem"} }

func (t memTransport) Start(h bus.Host) error {
	t.n.mu.Lock()
	t.n.hosts = append(t.n.hosts, h)
	both := len(t.n.hosts) == 2
	t.n.mu.Unlock()
	if !both {
		return nil
	}
	a, b := t.n.hosts[0], t.n.hosts[1]
	ab, ba := &memLink{n: t.n, src: a, dst: b}, &memLink{n: t.n, src: b, dst: a}
	ab.back, ba.back = ba, ab
	go func() {
		for f := range t.n.sys {
			f()
		}
	}()
	t.n.sys <- func() { a.LinkUp(ab); b.LinkUp(ba) }
	return nil
}

func (t memTransport) Close(context.Context) error { return nil }

type memLink struct {
	n        *memNet
	src, dst bus.Host
	back     *memLink // the peer's link to src
}

var memCodec = codec.Binary()

// memFrame is one envelope in flight: its wire form and what it decodes
// into. Pooled, so that a frame's bytes stay valid until Deliver returns
// however many sends are under way.
type memFrame struct {
	out []byte
	dec bus.EnvelopeDecoder
	env bus.Envelope
}

var memFrames = sync.Pool{New: func() any { return new(memFrame) }}

func (l *memLink) Peer() bus.NodeID       { return l.dst.NodeID() }
func (l *memLink) Locality() bus.Locality { return bus.SameHost }
func (l *memLink) Scheme() string         { return "mem" }
func (l *memLink) Codec() bus.Codec       { return memCodec }
func (l *memLink) Close(error)            {}

func (l *memLink) Send(ctx context.Context, env *bus.Envelope) error {
	f := memFrames.Get().(*memFrame)
	var err error
	f.out, err = env.AppendBinary(f.out[:0])
	if err == nil && env.Kind != bus.KindSystem && l.n.drop.Load() {
		memFrames.Put(f)
		return nil
	}
	if err == nil {
		err = f.dec.Decode(f.out, &f.env)
	}
	if err != nil {
		return err
	}
	if f.env.Kind == bus.KindSystem {
		l.n.sys <- func() { l.dst.Deliver(l.back, &f.env) }
		return nil
	}
	l.dst.Deliver(l.back, &f.env)
	f.env = bus.Envelope{}
	memFrames.Put(f)
	return nil
}

// memPair returns a server and a client bus joined by a memNet. The link
// comes up in the background: wait for a name (waitForBench) before using it.
func memPair(tb testing.TB) (server, client *bus.Bus) {
	tb.Helper()
	server, client, _ = memNetPair(tb)
	return server, client
}

// memNetPair is memPair, with the memNet that joins the two.
func memNetPair(tb testing.TB) (server, client *bus.Bus, n *memNet) {
	tb.Helper()
	n = &memNet{sys: make(chan func(), 64)}
	var err error
	if server, err = bus.New(bus.WithName("mem-server"), bus.WithTransport(memTransport{n})); err != nil {
		tb.Fatal(err)
	}
	if client, err = bus.New(bus.WithName("mem-client"), bus.WithTransport(memTransport{n})); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		client.Close(ctx)
		server.Close(ctx)
		close(n.sys)
	})
	return server, client, n
}

// BenchmarkLinkAsk is an ask to an actor on another bus through memNet.
// The actor is WithInline, so the whole round trip runs on the benchmark's
// goroutine: routing, encoding and decoding both ways, and delivery; no
// transport, no hand-off. Baseline in the same run: an ask to the same
// actor on the asker's own bus. Reported: ns per round trip of each, their
// ratio, and the process's CPU time per remote round trip, which other load
// on the machine skews less.
func BenchmarkLinkAsk(b *testing.B) {
	server, client := memPair(b)
	local := newTestBus(b)
	for _, bb := range []*bus.Bus{server, local} {
		if _, err := bb.Register("echo", bus.ActorFunc(echo), bus.WithInline()); err != nil {
			b.Fatal(err)
		}
	}
	ctx := context.Background()
	waitForBench(b, client, "echo")
	var m any = string(make([]byte, 64)) // boxed once, as a caller that has it in an interface
	ask := func(bb *bus.Bus) error { _, err := bb.Ask(ctx, "echo", m); return err }
	perOp := func(bb *bus.Bus, n int) time.Duration {
		t0 := time.Now()
		for range n {
			if err := ask(bb); err != nil {
				b.Fatal(err)
			}
		}
		return time.Since(t0) / time.Duration(n)
	}
	base := perOp(local, max(b.N, 10000))
	b.ReportAllocs()
	b.ResetTimer()
	cpu := benchkit.CPUTime()
	remote := perOp(client, b.N)
	cpu = benchkit.CPUTime() - cpu
	b.StopTimer()
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/op")
	b.ReportMetric(float64(base), "inproc-ns/op")
	b.ReportMetric(float64(remote)/float64(base), "x-inproc")
}

// BenchmarkLinkTell is a tell of a 64-byte string to a counting actor on
// another bus through memNet, WithInline so that it runs on the sender:
// the bus's own cost per remote tell, both sides together.
func BenchmarkLinkTell(b *testing.B) {
	server, client := memPair(b)
	var count int
	if _, err := server.Register("count", bus.ActorFunc(func(c *bus.Context, m any) error {
		if c.IsAsk() {
			return c.Reply(count)
		}
		if _, ok := m.(string); ok { // not the lifecycle messages
			count++
		}
		return nil
	}), bus.WithInline()); err != nil {
		b.Fatal(err)
	}
	waitForBench(b, client, "count")
	var m any = string(make([]byte, 64))
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if err := client.Tell("count", m); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	got, err := bus.AskAs[int](context.Background(), client, "count", "")
	if err != nil || got != b.N {
		b.Fatalf("the actor counted %d tells (%v), want %d", got, err, b.N)
	}
}

// BenchmarkTellSend is a tell of a 64-byte []byte by name to an actor on
// another bus through memNet, whose link frames it and drops it: what a
// remote tell costs its sender (routing, the gate, the envelope, the body's
// encoding, the frame), without a transport or a receiver. Besides the
// time it reports the process's CPU time per tell, which other load on
// the machine skews less.
func BenchmarkTellSend(b *testing.B) {
	server, client, n := memNetPair(b)
	if _, err := server.Register("sink", bus.ActorFunc(func(*bus.Context, any) error { return nil })); err != nil {
		b.Fatal(err)
	}
	waitForBench(b, client, "sink")
	n.drop.Store(true)
	var m any = make([]byte, 64)
	b.ReportAllocs()
	b.ResetTimer()
	cpu := benchkit.CPUTime()
	for range b.N {
		if err := client.Tell("sink", m); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64((benchkit.CPUTime()-cpu).Nanoseconds())/float64(b.N), "cpu-ns/op")
}

func waitForBench(b testing.TB, bb *bus.Bus, name string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := bb.WaitFor(ctx, name); err != nil {
		b.Fatal(err)
	}
}
