// Package net compares netbus with gRPC-go unary calls and NATS
// request/reply on the same machine in the same run: calls per second with
// 1, 16 and 128 concurrent callers, each echoing a 64-byte body over
// loopback TCP. It is a module of its own so that the library's go.mod
// stays free of gRPC and nats-server.
//
//	cd bench/net && go test -run '^$' -bench . -benchtime 2s
//
// BenchmarkRatio alternates netbus and gRPC-go rounds at 128 callers and
// reports the ratio directly (go test -run '^$' -bench Ratio -benchtime 1x).
package net

import (
	"context"
	"fmt"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/xbus-dev/xbus/internal/bench/netbench"
	"github.com/xbus-dev/xbus/internal/benchkit"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

const size = 64

var callers = []int{1, 16, 128}

// run calls call from n goroutines until b.N calls are done in all.
func run(b *testing.B, n int, call func() error) {
	b.Helper()
	var wg sync.WaitGroup
	next := make(chan struct{}, 1024)
	go func() {
		for range b.N {
			next <- struct{}{}
		}
		close(next)
	}()
	b.ResetTimer()
	start := time.Now()
	for range n {
		wg.Go(func() {
			for range next {
				if err := call(); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "calls/s")
}

// rate makes calls from n goroutines for about d and returns calls per
// second.
func rate(n int, d time.Duration, call func() error) (float64, error) {
	var calls atomic.Int64
	var stop atomic.Bool
	errs := make(chan error, n)
	var wg sync.WaitGroup
	start := time.Now()
	for range n {
		wg.Go(func() {
			for !stop.Load() {
				if err := call(); err != nil {
					errs <- err
					return
				}
				calls.Add(1)
			}
		})
	}
	time.Sleep(d)
	stop.Store(true)
	wg.Wait()
	close(errs)
	return float64(calls.Load()) / time.Since(start).Seconds(), <-errs
}

// BenchmarkRatio measures netbus and gRPC-go with 128 callers in
// alternating rounds of 500ms, so that both see the same machine, and
// reports the median of the per-round ratios (the target is 10×) beside the
// median rates, and the same for the CPU time per call. Run it with
// -benchtime 1x; each iteration is 5 rounds.
func BenchmarkRatio(b *testing.B) {
	nb, closeNB := netbusCaller(b)
	defer closeNB()
	gc, closeGC := grpcCaller(b)
	defer closeGC()
	const n, rounds, d = 128, 5, 500 * time.Millisecond
	var ratios, nbs, gcs, cpuRatios, nbCPU, gcCPU []float64
	for range b.N {
		for range rounds {
			c0 := benchkit.CPUTime()
			x, err := rate(n, d, nb)
			if err != nil {
				b.Fatal(err)
			}
			c1 := benchkit.CPUTime()
			y, err := rate(n, d, gc)
			if err != nil {
				b.Fatal(err)
			}
			c2 := benchkit.CPUTime()
			// CPU per call: both ends are in this process.
			cx, cy := (c1-c0).Seconds()/(x*d.Seconds()), (c2-c1).Seconds()/(y*d.Seconds())
			ratios, nbs, gcs = append(ratios, x/y), append(nbs, x), append(gcs, y)
			cpuRatios, nbCPU, gcCPU = append(cpuRatios, cy/cx), append(nbCPU, cx*1e6), append(gcCPU, cy*1e6)
		}
	}
	median := func(v []float64) float64 { slices.Sort(v); return v[len(v)/2] }
	b.ReportMetric(median(ratios), "x-grpc")
	b.ReportMetric(median(nbs), "netbus-calls/s")
	b.ReportMetric(median(gcs), "grpc-calls/s")
	// Calls per CPU second, which other load on the machine skews much
	// less than calls per second: gRPC's CPU per call over netbus's.
	b.ReportMetric(median(cpuRatios), "x-grpc-cpu")
	b.ReportMetric(median(nbCPU), "netbus-cpu-us/call")
	b.ReportMetric(median(gcCPU), "grpc-cpu-us/call")
}

func netbusCaller(b *testing.B) (func() error, func()) {
	p, err := netbench.NewBenchPair("tcp://127.0.0.1:0", size)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	return func() error { return p.Ask(ctx) }, func() { p.Close() }
}

func BenchmarkNetbus(b *testing.B) {
	call, done := netbusCaller(b)
	defer done()
	for _, n := range callers {
		b.Run(fmt.Sprintf("callers=%d", n), func(b *testing.B) {
			run(b, n, call)
		})
	}
}

// rawCodec lets gRPC carry []byte without generated protobuf code.
type rawCodec struct{}

func (rawCodec) Marshal(v any) ([]byte, error) { return *v.(*[]byte), nil }
func (rawCodec) Unmarshal(data []byte, v any) error {
	*v.(*[]byte) = append([]byte(nil), data...)
	return nil
}
func (rawCodec) Name() string { return "raw" }

func grpcCaller(b *testing.B) (func() error, func()) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	s := grpc.NewServer(grpc.ForceServerCodec(rawCodec{}))
	s.RegisterService(&grpc.ServiceDesc{
		ServiceName: "bench.Echo",
		HandlerType: (*any)(nil),
		Methods: []grpc.MethodDesc{{MethodName: "Echo", Handler: func(_ any, ctx context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
			var in []byte
			if err := dec(&in); err != nil {
				return nil, err
			}
			return &in, nil
		}}},
	}, struct{}{})
	go s.Serve(ln)
	cc, err := grpc.NewClient(ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		s.Stop()
		b.Fatal(err)
	}
	ctx := context.Background()
	body := make([]byte, size)
	call := func() error {
		in, out := body, []byte(nil)
		return cc.Invoke(ctx, "/bench.Echo/Echo", &in, &out, grpc.ForceCodec(rawCodec{}))
	}
	return call, func() { cc.Close(); s.Stop() }
}

func BenchmarkGRPC(b *testing.B) {
	call, done := grpcCaller(b)
	defer done()
	for _, n := range callers {
		b.Run(fmt.Sprintf("callers=%d", n), func(b *testing.B) {
			run(b, n, call)
		})
	}
}

func BenchmarkNATS(b *testing.B) {
	ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true})
	if err != nil {
		b.Fatal(err)
	}
	go ns.Start()
	defer ns.Shutdown()
	if !ns.ReadyForConnections(10 * time.Second) {
		b.Fatal("nats-server not ready")
	}
	srv, err := nats.Connect(ns.ClientURL())
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Close()
	srv.Subscribe("echo", func(m *nats.Msg) { m.Respond(m.Data) })
	srv.Flush()
	cli, err := nats.Connect(ns.ClientURL())
	if err != nil {
		b.Fatal(err)
	}
	defer cli.Close()
	body := make([]byte, size)
	for _, n := range callers {
		b.Run(fmt.Sprintf("callers=%d", n), func(b *testing.B) {
			run(b, n, func() error {
				_, err := cli.Request("echo", body, 10*time.Second)
				return err
			})
		})
	}
}
