// Command compression measures netbus's per-frame compression on a stream
// of realistic messages: the same 500 log records go from one node to
// another over TCP with no compression, with S2 and with Zstd, through a
// relay that counts the bytes on the wire, and it prints the ratio of each.
//
//	go run ./examples/compression
//
// Compression is configured per node (netbus.Config.Compression) and
// negotiated in the handshake: each end announces what it can decode, and
// a sender compresses a data frame of at least Config.CompressMin bytes
// (1 KiB by default) with its algorithm when the peer can decode it, else
// sends it as it is. Nothing else changes: the actors never see it.
// docs/wire.md section 2 has the frame layout; docs/performance.md the CPU
// each algorithm costs.
package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/xbus-dev/xbus/bus"
	"github.com/xbus-dev/xbus/netbus"
)

// Record is one log record: the kind of body that repeats itself (field
// names, hosts, paths), as much traffic between services does.
type Record struct {
	Time    string
	Level   string
	Service string
	Host    string
	Path    string
	Status  int
	Micros  int
	Message string
	Labels  map[string]string
}

// Batch is what travels: a few dozen records per message, so each frame is
// above the compression threshold.
type Batch struct{ Records []Record }

const batches, perBatch = 500, 20

func main() {
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	if err := run(os.Stdout, log); err != nil {
		fmt.Fprintln(os.Stderr, "compression:", err)
		os.Exit(1)
	}
}

// Result is the measure of one algorithm.
type Result struct {
	Compression netbus.Compression
	Wire        int64 // bytes from the sender to the receiver, handshake included
}

func run(out io.Writer, log *slog.Logger) error {
	results, err := measureAll(log)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "%d messages of %d log records each, over TCP:\n", batches, perBatch)
	for _, r := range results {
		fmt.Fprintf(out, "  %-5v %9d bytes on the wire, ratio %.1f\n", r.Compression, r.Wire, Ratio(results[0], r))
	}
	return nil
}

// measureAll measures the same messages without compression, then with
// each algorithm.
func measureAll(log *slog.Logger) ([]Result, error) {
	msgs := makeBatches()
	var results []Result
	for _, c := range []netbus.Compression{netbus.NoCompression, netbus.S2, netbus.Zstd} {
		wire, err := measure(c, msgs, log)
		if err != nil {
			return nil, fmt.Errorf("%v: %w", c, err)
		}
		results = append(results, Result{c, wire})
	}
	return results, nil
}

// Ratio is how many times fewer bytes r sent than base.
func Ratio(base, r Result) float64 { return float64(base.Wire) / float64(r.Wire) }

// measure sends msgs from one node to another with compression c and
// returns the bytes the sender wrote.
func measure(c netbus.Compression, msgs []Batch, log *slog.Logger) (int64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	recvT := netbus.New(netbus.Config{Listen: []string{"tcp://127.0.0.1:0"}, Compression: c})
	recv, err := bus.New(bus.WithName("receiver"), bus.WithLogger(log), bus.WithTransport(recvT))
	if err != nil {
		return 0, err
	}
	defer recv.Close(context.Background())
	relay, err := newRelay(strings.TrimPrefix(recvT.Addrs()[0], "tcp://"))
	if err != nil {
		return 0, err
	}
	defer relay.close()
	send, err := bus.New(bus.WithName("sender"), bus.WithLogger(log),
		bus.WithTransport(netbus.New(netbus.Config{Peers: []string{"tcp://" + relay.addr()}, Compression: c})))
	if err != nil {
		return 0, err
	}
	defer send.Close(context.Background())
	for _, b := range []*bus.Bus{recv, send} {
		if err := bus.RegisterType[Batch](b.Types(), "example.Batch"); err != nil {
			return 0, err
		}
	}

	var got atomic.Int64
	done := make(chan struct{})
	if _, err := recv.Register("sink", bus.ActorFunc(func(_ *bus.Context, msg any) error {
		if _, ok := msg.(Batch); ok && got.Add(1) == int64(len(msgs)) {
			close(done)
		}
		return nil
	})); err != nil {
		return 0, err
	}
	if err := send.WaitFor(ctx, "sink"); err != nil {
		return 0, err
	}
	for _, m := range msgs {
		if err := send.Send(ctx, "sink", m, 0); err != nil {
			return 0, err
		}
	}
	select {
	case <-done:
	case <-ctx.Done():
		return 0, fmt.Errorf("%d of %d messages arrived", got.Load(), len(msgs))
	}
	return relay.up.Load(), nil
}

// makeBatches builds the same records on every run.
func makeBatches() []Batch {
	rng := rand.New(rand.NewPCG(1, 2))
	services := []string{"orders", "payments", "inventory", "shipping"}
	paths := []string{"/api/v1/orders", "/api/v1/orders/{id}", "/api/v1/payments/authorize", "/api/v1/stock/reserve", "/healthz"}
	levels := []string{"INFO", "INFO", "INFO", "WARN", "ERROR"}
	start := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	msgs := make([]Batch, batches)
	for i := range msgs {
		for j := range perBatch {
			n := i*perBatch + j
			svc := services[rng.IntN(len(services))]
			msgs[i].Records = append(msgs[i].Records, Record{
				Time:    start.Add(time.Duration(n) * 137 * time.Millisecond).Format(time.RFC3339Nano),
				Level:   levels[rng.IntN(len(levels))],
				Service: svc,
				Host:    fmt.Sprintf("%s-%d.eu-west-1.internal", svc, rng.IntN(8)),
				Path:    paths[rng.IntN(len(paths))],
				Status:  []int{200, 200, 200, 201, 404, 503}[rng.IntN(6)],
				Micros:  rng.IntN(250_000),
				Message: fmt.Sprintf("request served for customer %08x", rng.Uint32()),
				Labels:  map[string]string{"region": "eu-west-1", "version": "2.14.3", "trace": fmt.Sprintf("%016x", rng.Uint64())},
			})
		}
	}
	return msgs
}

// relay forwards one TCP connection at a time to a target, counting the
// bytes that go up (from the dialer to the target).
type relay struct {
	ln net.Listener
	up atomic.Int64
	wg sync.WaitGroup
	mu sync.Mutex
	cs []net.Conn
}

func newRelay(target string) (*relay, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	r := &relay{ln: ln}
	r.wg.Go(func() {
		for {
			in, err := ln.Accept()
			if err != nil {
				return
			}
			outc, err := net.Dial("tcp", target)
			if err != nil {
				in.Close()
				continue
			}
			r.mu.Lock()
			r.cs = append(r.cs, in, outc)
			r.mu.Unlock()
			r.wg.Go(func() { _, _ = io.Copy(counter{outc, &r.up}, in); outc.Close() })
			r.wg.Go(func() { _, _ = io.Copy(in, outc); in.Close() })
		}
	})
	return r, nil
}

// counter counts what is written through it.
type counter struct {
	w io.Writer
	n *atomic.Int64
}

func (c counter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n.Add(int64(n))
	return n, err
}

func (r *relay) addr() string { return r.ln.Addr().String() }

func (r *relay) close() {
	r.ln.Close()
	r.mu.Lock()
	for _, c := range r.cs {
		c.Close()
	}
	r.mu.Unlock()
	r.wg.Wait()
}
