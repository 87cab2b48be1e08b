package bus_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/xbus-dev/xbus/bus"
	"github.com/xbus-dev/xbus/internal/benchkit"
	"github.com/xbus-dev/xbus/netbus"
)

// BenchmarkPublish times a Publish among n subscriptions that do not match
// it ("other.<i>.*", window 1): "none" reaches no subscriber, "one" reaches
// one more subscription, read by a goroutine.
func BenchmarkPublish(b *testing.B) {
	for _, n := range []int{10, 1000, 10000} {
		b.Run(fmt.Sprintf("subs=%d", n), func(b *testing.B) {
			bs, err := bus.New()
			if err != nil {
				b.Fatal(err)
			}
			defer bs.Close(context.Background())
			ctx := context.Background()
			for i := range n {
				if _, err := bs.Subscribe(ctx, fmt.Sprintf("other.%d.*", i), bus.WithWindow(1)); err != nil {
					b.Fatal(err)
				}
			}
			b.Run("none", func(b *testing.B) {
				publishLoop(b, bs)
			})
			b.Run("one", func(b *testing.B) {
				s, err := bs.Subscribe(ctx, "prices.*")
				if err != nil {
					b.Fatal(err)
				}
				go func() {
					for range s.Messages() {
					}
				}()
				publishLoop(b, bs)
				s.Close()
			})
		})
	}
}

// BenchmarkPublishRemote is BenchmarkPublish with the n subscriptions on
// another node, across a Unix socket: "none" reaches none of them, "one"
// reaches one more, read by a goroutine there. Allocations count both
// nodes, which share the process.
func BenchmarkPublishRemote(b *testing.B) {
	for _, n := range []int{10, 1000, 10000} {
		b.Run(fmt.Sprintf("subs=%d", n), func(b *testing.B) {
			sock := "unix://" + filepath.Join(b.TempDir(), "s.sock")
			server, err := bus.New(bus.WithLogger(quiet), bus.WithTransport(netbus.New(netbus.Config{Listen: []string{sock}})))
			if err != nil {
				b.Fatal(err)
			}
			defer server.Close(context.Background())
			client, err := bus.New(bus.WithLogger(quiet), bus.WithTransport(netbus.New(netbus.Config{Peers: []string{sock}})))
			if err != nil {
				b.Fatal(err)
			}
			defer client.Close(context.Background())
			ctx := context.Background()
			for i := range n {
				if _, err := server.Subscribe(ctx, fmt.Sprintf("other.%d.*", i), bus.WithWindow(1)); err != nil {
					b.Fatal(err)
				}
			}
			known := func(want int) {
				for deadline := time.Now().Add(time.Minute); ; time.Sleep(time.Millisecond) {
					if got, _ := bus.RemoteSubs(client); got == want {
						return
					}
					if time.Now().After(deadline) {
						b.Fatalf("the client never learned %d subscriptions", want)
					}
				}
			}
			known(n)
			b.Run("none", func(b *testing.B) {
				publishLoop(b, client)
			})
			b.Run("one", func(b *testing.B) {
				s, err := server.Subscribe(ctx, "prices.*")
				if err != nil {
					b.Fatal(err)
				}
				known(n + 1)
				go func() {
					for range s.Messages() {
					}
				}()
				publishLoop(b, client)
				s.Close()
				known(n)
			})
		})
	}
}

// BenchmarkPublishPeers times a Publish to one subscription on each of n
// peers, across Unix sockets, each read by a goroutine there: with two or
// more, each send takes only the room its link has at once, and one that
// must wait waits beside the others. Allocations count every node, which
// share the process.
func BenchmarkPublishPeers(b *testing.B) {
	for _, n := range []int{1, 2, 4} {
		b.Run(fmt.Sprintf("peers=%d", n), func(b *testing.B) {
			var peers []string
			for i := range n {
				sock := "unix://" + filepath.Join(b.TempDir(), fmt.Sprintf("s%d.sock", i))
				server, err := bus.New(bus.WithLogger(quiet), bus.WithTransport(netbus.New(netbus.Config{Listen: []string{sock}})))
				if err != nil {
					b.Fatal(err)
				}
				defer server.Close(context.Background())
				s, err := server.Subscribe(context.Background(), "prices.*")
				if err != nil {
					b.Fatal(err)
				}
				go func() {
					for range s.Messages() {
					}
				}()
				peers = append(peers, sock)
			}
			client, err := bus.New(bus.WithLogger(quiet), bus.WithTransport(netbus.New(netbus.Config{Peers: peers})))
			if err != nil {
				b.Fatal(err)
			}
			defer client.Close(context.Background())
			for deadline := time.Now().Add(time.Minute); ; time.Sleep(time.Millisecond) {
				if got, _ := bus.RemoteSubs(client); got == n {
					break
				}
				if time.Now().After(deadline) {
					b.Fatalf("the client never learned %d subscriptions", n)
				}
			}
			publishLoop(b, client)
		})
	}
}

// publishLoop publishes on "prices.eur" through bs, b.N times, and
// reports allocations and the process's CPU time per publish (on a loaded
// machine it varies far less than wall time).
func publishLoop(b *testing.B, bs *bus.Bus) {
	b.ReportAllocs()
	cpu := benchkit.CPUTime()
	for b.Loop() {
		if err := bs.Publish("prices.eur", 1); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(benchkit.CPUTime()-cpu)/float64(b.N), "cpu-ns/op")
}
