package netbus

import (
	"context"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/xbus-dev/xbus/bus"
	"github.com/xbus-dev/xbus/internal/benchkit"
)

// sinkHost counts the envelopes its transport delivers and does nothing
// else with them: no routing, no body decoding, no actor.
type sinkHost struct {
	*testHost
	n atomic.Int64
}

func (h *sinkHost) Deliver(bus.Link, *bus.Envelope) { h.n.Add(1) }

func (h *sinkHost) DeliverBatch(_ bus.Link, envs []bus.Envelope) {
	for i := range envs {
		envs[i].Body = nil // as the bus leaves them
	}
	h.n.Add(int64(len(envs)))
}

// BenchmarkLinkTells sends b.N one-way tells of a 64-byte []byte body, its
// envelope encoded once, through a link to a transport whose host only
// counts them, both in this process: what netbus alone costs per tell,
// sending and receiving, without the bus on either side. It reports the
// rate until the last tell arrived and the CPU time of the process per
// tell (both ends, writer and reader goroutines included).
func BenchmarkLinkTells(b *testing.B) {
	for _, nw := range []struct{ name, listen string }{
		{"tcp", "tcp://127.0.0.1:0"},
		{"unix", "unix://" + filepath.Join(b.TempDir(), "n.sock")},
	} {
		b.Run(nw.name, func(b *testing.B) { linkTells(b, nw.listen) })
	}
}

func linkTells(b *testing.B, listen string) {
	srv := &sinkHost{testHost: newTestHost(b)}
	cli := newTestHost(b)
	srvT := startTransport(b, srv, Config{Listen: []string{listen}})
	cliT := startTransport(b, cli, Config{})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := cliT.Dial(ctx, srvT.Addrs()[0]); err != nil {
		b.Fatal(err)
	}
	l := cli.link(b)
	env := encoded(l, &bus.Envelope{Kind: bus.KindTell, From: bus.Ref{Node: cli.id, Name: "src", ID: 1}, To: bus.Ref{Name: "sink"}, Msg: make([]byte, 64)})
	b.ResetTimer()
	cpu0, start := benchkit.CPUTime(), time.Now()
	for range b.N {
		if err := l.Send(ctx, env); err != nil {
			b.Fatal(err)
		}
	}
	for srv.n.Load() < int64(b.N) {
		if ctx.Err() != nil {
			b.Fatalf("%d of %d tells arrived", srv.n.Load(), b.N)
		}
		time.Sleep(50 * time.Microsecond)
	}
	el, cpu := time.Since(start), benchkit.CPUTime()-cpu0
	b.StopTimer()
	b.ReportMetric(float64(b.N)/el.Seconds()/1e6, "M-tells/s")
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/msg")
}
