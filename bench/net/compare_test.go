// Package net compares netbus with gRPC-go unary calls and NATS
// request/reply on the same machine in the same run: calls per second with
// 1, 16 and 128 concurrent callers, each echoing a 64-byte body over
// loopback TCP. It is a module of its own so that the library's go.mod
// stays free of gRPC and nats-server.
//
//	cd bench/net && go test -bench . -benchtime 3s
package net

import (
	"context"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/xbus-dev/xbus/netbus"
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

func BenchmarkNetbus(b *testing.B) {
	p, err := netbus.NewBenchPair("tcp://127.0.0.1:0", size)
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	ctx := context.Background()
	for _, n := range callers {
		b.Run(fmt.Sprintf("callers=%d", n), func(b *testing.B) {
			run(b, n, func() error { return p.Ask(ctx) })
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

func BenchmarkGRPC(b *testing.B) {
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
	defer s.Stop()
	cc, err := grpc.NewClient(ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		b.Fatal(err)
	}
	defer cc.Close()
	ctx := context.Background()
	body := make([]byte, size)
	for _, n := range callers {
		b.Run(fmt.Sprintf("callers=%d", n), func(b *testing.B) {
			run(b, n, func() error {
				in, out := body, []byte(nil)
				return cc.Invoke(ctx, "/bench.Echo/Echo", &in, &out, grpc.ForceCodec(rawCodec{}))
			})
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
