//go:build linux

package shmbus_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/xbus-dev/xbus/bus"
	"github.com/xbus-dev/xbus/internal/benchkit"
	"github.com/xbus-dev/xbus/netbus"
	"github.com/xbus-dev/xbus/shmbus"
)

// BenchmarkAskRTT asks "echo" in a child process over shmbus and, as the
// same-run baseline, over netbus on a Unix socket (same envelope encoding),
// alternating rounds, and reports p50/p99 of each and the ratio of medians.
func BenchmarkAskRTT(b *testing.B) {
	shm, uds := dialChild(b)
	ctx := context.Background()
	msg := string(make([]byte, 64))
	awaitRoute(b, shm, "echo", msg)
	awaitRoute(b, uds, "echo", msg)
	var ls, lu []time.Duration
	round := func(bb *bus.Bus, n int) []time.Duration {
		lat, err := benchkit.Latencies(n, func() error {
			_, err := bb.Ask(ctx, "echo", msg)
			return err
		})
		if err != nil {
			b.Fatal(err)
		}
		return lat
	}
	b.ResetTimer()
	for n := range benchkit.Rounds(b.N, 100, 1) {
		ls = append(ls, round(shm, n)...)
		lu = append(lu, round(uds, n)...)
	}
	b.StopTimer()
	slices.Sort(ls)
	slices.Sort(lu)
	q := func(l []time.Duration, p float64) float64 { return float64(benchkit.Percentile(l, p).Nanoseconds()) }
	b.ReportMetric(q(ls, 50), "shm-p50-ns")
	b.ReportMetric(q(ls, 99), "shm-p99-ns")
	b.ReportMetric(q(lu, 50), "unix-p50-ns")
	b.ReportMetric(q(lu, 99), "unix-p99-ns")
	b.ReportMetric(q(lu, 50)/q(ls, 50), "x-faster-p50")
}

// BenchmarkTell sends b.N one-way Tells of 64-byte strings from one
// goroutine to an actor in a child process, over shmbus and over the netbus
// Unix-socket baseline in the same run, and reports messages per second of
// each (the clock stops when the receiver has counted them all).
func BenchmarkTell(b *testing.B) {
	shm, uds := dialChild(b)
	ctx := context.Background()
	total := 0
	run := func(bb *bus.Bus, id string) float64 {
		awaitRoute(b, bb, "order", "report")
		msg := id + ":" + string(make([]byte, 60))
		t0 := time.Now()
		for range b.N {
			if err := bb.Tell("order", msg); err != nil {
				b.Fatal(err)
			}
		}
		total += b.N
		if _, err := bb.Ask(ctx, "order", "report"); err != nil { // ordered behind the tells
			b.Fatal(err)
		}
		return float64(b.N) / time.Since(t0).Seconds()
	}
	b.ResetTimer()
	s := run(shm, "s")
	u := run(uds, "u")
	b.ReportMetric(s, "shm-msg/s")
	b.ReportMetric(u, "unix-msg/s")
	b.ReportMetric(s/u, "x-shm/unix")
}

// dialChild starts the helper process and returns two buses that reach it:
// one over shmbus and, as the same-run baseline, one over netbus on a Unix
// socket. Both are closed when the benchmark ends.
func dialChild(b *testing.B) (shm, uds *bus.Bus) {
	_, path := startChild(b)
	shm, err := bus.New(bus.WithName("p-shm"), bus.WithTransport(shmbus.New(shmbus.Config{Dial: []string{path}})))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { shm.Close(context.Background()) })
	uds, err = bus.New(bus.WithName("p-unix"), bus.WithTransport(netbus.New(netbus.Config{Peers: []string{"unix:" + path + ".net"}})))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { uds.Close(context.Background()) })
	return shm, uds
}

// awaitRoute asks to with msg until an answer comes back, so that the
// measured loop does not include dialling and the handshake.
func awaitRoute(b *testing.B, bb *bus.Bus, to string, msg any) {
	for range 1000 {
		c, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := bb.Ask(c, to, msg)
		cancel()
		if err == nil {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	b.Fatalf("%s never reachable", to)
}
