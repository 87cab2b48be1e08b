//go:build linux

package shmbus_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/xbus-dev/xbus/bus"
	"github.com/xbus-dev/xbus/internal/benchkit"
	"github.com/xbus-dev/xbus/netbus"
	"github.com/xbus-dev/xbus/shmbus"
)

// The benchmarks run between this process and a child (the test binary
// again) and measure shmbus against, in the same run, the same bus over
// netbus on a Unix socket (the same envelope encoding); rounds alternate so
// that a noisy neighbour hurts both alike. `xbus bench shm` (RunBench)
// prints the same measurements as one table.

// quantile is the q-th quantile (0 < q < 1) of l, in nanoseconds.
func quantile(l []time.Duration, q float64) float64 {
	slices.Sort(l)
	return float64(benchkit.Percentile(l, 100*q).Nanoseconds())
}

// BenchmarkAskRTT asks "echo" in the child with 64-byte and 4 KiB bodies,
// alternating rounds of 500 between shmbus and the Unix-socket baseline,
// and reports p50/p99/p99.9 of each and the ratio of medians.
func BenchmarkAskRTT(b *testing.B) {
	for _, size := range []int{64, 4096} {
		b.Run(fmt.Sprintf("%dB", size), func(b *testing.B) {
			shm, uds := dialChild(b)
			msg := string(make([]byte, size))
			awaitRoute(b, shm, "echo", msg)
			awaitRoute(b, uds, "echo", msg)
			ls, lu := askRounds(b, shm, uds, msg, b.N, 500, 0)
			report(b, ls, lu)
		})
	}
}

// BenchmarkAskPaced asks at 1,000 asks/s, where both readers park between
// asks, and reports p50/p99 against the baseline at the same rate and the
// CPU time both processes spend per ask over shmbus.
func BenchmarkAskPaced(b *testing.B) {
	shm, uds := dialChild(b)
	awaitRoute(b, shm, "echo", "x")
	awaitRoute(b, uds, "echo", "x")
	c0 := cpuBoth(b, shm)
	ls, _ := askRounds(b, shm, nil, "x", b.N, b.N, time.Millisecond)
	c1 := cpuBoth(b, shm)
	_, lu := askRounds(b, nil, uds, "x", b.N, b.N, time.Millisecond)
	report(b, ls, lu)
	b.ReportMetric(float64((c1-c0).Nanoseconds())/float64(b.N), "shm-cpu-ns/ask")
}

// BenchmarkAskContended is BenchmarkAskRTT/64B with two CPU-bound
// processes started beside the pair, as on a machine busy with other work:
// spinning readers then take the CPU their peers need, and a reader must
// stop spinning when it does not pay. Baseline: the Unix-socket ask under
// the same contention, in alternating rounds.
func BenchmarkAskContended(b *testing.B) {
	shm, uds := dialChild(b)
	msg := string(make([]byte, 64))
	awaitRoute(b, shm, "echo", msg)
	awaitRoute(b, uds, "echo", msg)
	for range 2 {
		startBurner(b)
	}
	ls, lu := askRounds(b, shm, uds, msg, b.N, 500, 0)
	report(b, ls, lu)
	b.ReportMetric(quantile(ls, .99)/quantile(lu, .99), "x-unix-p99")
}

// BenchmarkAskShm asks the child's "echo" and "echo-inline" (an actor
// WithInline) over shmbus alone, 64-byte bodies, and reports p50/p99 and
// the CPU time per ask of both processes and of the asking one: run it
// under `perf stat` to count the context switches and futex calls a round
// trip costs.
func BenchmarkAskShm(b *testing.B) {
	for _, to := range []string{"echo", "echo-inline"} {
		b.Run(to, func(b *testing.B) {
			shm, _ := dialChild(b)
			msg := string(make([]byte, 64))
			awaitRoute(b, shm, to, msg)
			ctx := context.Background()
			c0, o0 := cpuBoth(b, shm), cpuSelf()
			b.ResetTimer()
			lat, err := benchkit.Latencies(b.N, func() error { _, err := shm.Ask(ctx, to, msg); return err })
			b.StopTimer()
			if err != nil {
				b.Fatal(err)
			}
			o1 := cpuSelf()
			b.ReportMetric(float64((cpuBoth(b, shm)-c0).Nanoseconds())/float64(b.N), "shm-cpu-ns/ask")
			b.ReportMetric(float64((o1-o0).Nanoseconds())/float64(b.N), "asker-cpu-ns/ask")
			b.ReportMetric(quantile(lat, .5), "shm-p50-ns")
			b.ReportMetric(quantile(lat, .99), "shm-p99-ns")
		})
	}
}

// burnEnv makes the test binary a CPU-bound process (burn) until killed.
const burnEnv = "SHMBUS_TEST_BURN"

// burn keeps one CPU busy and never returns.
func burn() {
	runtime.GOMAXPROCS(1)
	for x := uint64(1); ; x = x*6364136223846793005 + 1 {
		burnSink.Store(x)
	}
}

var burnSink atomic.Uint64

// startBurner starts a CPU-bound process, killed when the benchmark ends.
func startBurner(b *testing.B) {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), burnEnv+"=1")
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
}

func report(b *testing.B, ls, lu []time.Duration) {
	b.ReportMetric(quantile(ls, .5), "shm-p50-ns")
	b.ReportMetric(quantile(ls, .99), "shm-p99-ns")
	b.ReportMetric(quantile(ls, .999), "shm-p99.9-ns")
	b.ReportMetric(quantile(lu, .5), "unix-p50-ns")
	b.ReportMetric(quantile(lu, .99), "unix-p99-ns")
	b.ReportMetric(quantile(lu, .5)/quantile(ls, .5), "x-faster-p50")
}

// askRounds asks echo n times on each bus that is not nil, in alternating
// rounds; every > 0 paces the asks.
func askRounds(b *testing.B, shm, uds *bus.Bus, msg string, n, round int, every time.Duration) (ls, lu []time.Duration) {
	ctx := context.Background()
	next := time.Now()
	do := func(bb *bus.Bus, out *[]time.Duration, k int) {
		ask := func() error { _, err := bb.Ask(ctx, "echo", msg); return err }
		if every == 0 {
			lat, err := benchkit.Latencies(k, ask)
			if err != nil {
				b.Fatal(err)
			}
			*out = append(*out, lat...)
			return
		}
		for range k { // paced: each ask is timed from when it was due,
			// so an ask that waited for a slow one before it counts its wait
			next = next.Add(every)
			time.Sleep(time.Until(next))
			if err := ask(); err != nil {
				b.Fatal(err)
			}
			*out = append(*out, time.Since(next))
		}
	}
	b.ResetTimer()
	for k := range benchkit.Rounds(n, round, 1) {
		if shm != nil {
			do(shm, &ls, k)
		}
		if uds != nil {
			do(uds, &lu, k)
		}
	}
	b.StopTimer()
	return ls, lu
}

// cpuBoth is the CPU time used so far by this process and the child.
func cpuBoth(b *testing.B, bb *bus.Bus) time.Duration {
	r, err := bb.Ask(context.Background(), "cpu", "")
	if err != nil {
		b.Fatal(err)
	}
	child, _ := strconv.ParseInt(r.(string), 10, 64)
	return time.Duration(child) + cpuSelf()
}

// cpuSelf is the CPU time used so far by this process alone.
func cpuSelf() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// benchTick is the small struct of the Tell benchmark: about 64 bytes
// through the default codec.
type benchTick struct {
	Seq    uint64
	Price  float64
	Qty    int64
	Symbol string
	Venue  string
}

const benchTickType = "shmbus.benchTick"

// tellBodies are the bodies of BenchmarkTell: 64 bytes as a string, as a
// []byte and as a small struct, each through the default codec.
var tellBodies = []tellBody{
	{"string", string(make([]byte, 64)), "count"},
	{"bytes", make([]byte, 64), "count"},
	{"struct", benchTick{Seq: 1 << 40, Price: 101.25, Qty: 300, Symbol: "EURUSD", Venue: "XLON"}, "count"},
}

// tellBody is a body of the tell benchmarks and the actor it goes to.
type tellBody struct {
	name string
	msg  any
	to   string
}

// BenchmarkTell sends one-way Tells of 64-byte bodies from 1 and from 4
// goroutines to an actor in the child, over shmbus, over the baseline (the
// same bus over a Unix socket) and, as the floor, as bare 64-byte records
// through a default ring to a child that only counts them (no bus), b.N
// each, in alternating rounds of up to 200,000. It reports messages per
// second the actor took (the clock stops when it has counted them all), the
// ratio to the raw ring, the CPU time both processes spent per message
// (steadier than the rate on a shared machine), and the tells dropped (a full mailbox makes a
// tell from a link a dead letter: counted, not taken; the child's count of
// taken plus dropped must equal what was sent).
func BenchmarkTell(b *testing.B) {
	for _, body := range tellBodies {
		for _, senders := range []int{1, 4} {
			b.Run(fmt.Sprintf("%s/senders=%d", body.name, senders), func(b *testing.B) {
				shm, uds := dialChild(b)
				for _, bb := range []*bus.Bus{shm, uds} {
					if err := bus.RegisterType[benchTick](bb.Types(), benchTickType); err != nil {
						b.Fatal(err)
					}
					awaitRoute(b, bb, "count", "")
				}
				raw, err := shmbus.StartRawRing()
				if err != nil {
					b.Fatal(err)
				}
				defer raw.Close()
				round := min(b.N, 200_000)
				var ts, tu, tr, cs, cu time.Duration
				var ds, du int
				b.ResetTimer()
				for range (b.N + round - 1) / round {
					c0 := cpuBoth(b, shm)
					d, el := tellRound(b, shm, body.to, body.msg, round, senders)
					c1 := cpuBoth(b, shm)
					ds, ts, cs = ds+d, ts+el, cs+c1-c0
					d, el = tellRound(b, uds, body.to, body.msg, round, senders)
					c0 = cpuBoth(b, shm)
					du, tu, cu = du+d, tu+el, cu+c0-c1
					r, err := raw.Rate(round, senders, make([]byte, 64))
					if err != nil {
						b.Fatal(err)
					}
					tr += time.Duration(float64(round) / r * 1e9)
				}
				b.StopTimer()
				n := float64((b.N + round - 1) / round * round)
				s, u, r := (n-float64(ds))/ts.Seconds(), (n-float64(du))/tu.Seconds(), n/tr.Seconds()
				b.ReportMetric(s/1e6, "shm-M/s")
				b.ReportMetric(u/1e6, "unix-M/s")
				b.ReportMetric(r/1e6, "ring-M/s")
				b.ReportMetric(s/r, "x-shm/ring")
				b.ReportMetric(float64(cs.Nanoseconds())/n, "shm-cpu-ns/msg")
				b.ReportMetric(float64(cu.Nanoseconds())/n, "unix-cpu-ns/msg")
				b.ReportMetric(float64(ds), "shm-dropped")
				b.ReportMetric(float64(du), "unix-dropped")
			})
		}
	}
}

// BenchmarkTellShm is BenchmarkTell's shmbus path alone, for CPU profiles
// of both processes (docs/performance.md, "What limits it"): a profile of
// BenchmarkTell mixes in the Unix socket and the bare ring. It reports
// messages per second the actor took, the CPU time both processes spent
// per message and the tells dropped, as BenchmarkTell does, and the CPU
// time per message of the sending process and of the receiving one apart.
// bytes-borrowed sends the []byte body to an actor that borrows it
// (bus.WithBorrowedBytes), bytes-inline to one that also runs on the
// link's reader (bus.WithInline).
func BenchmarkTellShm(b *testing.B) {
	for _, body := range append(tellBodies, tellBody{"bytes-borrowed", make([]byte, 64), "count-borrowed"}, tellBody{"bytes-inline", make([]byte, 64), "count-inline"}) {
		for _, senders := range []int{1, 4} {
			b.Run(fmt.Sprintf("%s/senders=%d", body.name, senders), func(b *testing.B) {
				shm, _ := dialChild(b)
				if err := bus.RegisterType[benchTick](shm.Types(), benchTickType); err != nil {
					b.Fatal(err)
				}
				awaitRoute(b, shm, body.to, "")
				round := min(b.N, 200_000)
				var el, cpu, send time.Duration
				dropped := 0
				b.ResetTimer()
				for range (b.N + round - 1) / round {
					c0, s0 := cpuBoth(b, shm), cpuSelf()
					d, e := tellRound(b, shm, body.to, body.msg, round, senders)
					c1, s1 := cpuBoth(b, shm), cpuSelf()
					dropped, el, cpu, send = dropped+d, el+e, cpu+c1-c0, send+s1-s0
				}
				b.StopTimer()
				n := float64((b.N + round - 1) / round * round)
				b.ReportMetric((n-float64(dropped))/el.Seconds()/1e6, "shm-M/s")
				b.ReportMetric(float64(cpu.Nanoseconds())/n, "shm-cpu-ns/msg")
				b.ReportMetric(float64(send.Nanoseconds())/n, "send-cpu-ns/msg")
				b.ReportMetric(float64((cpu-send).Nanoseconds())/n, "recv-cpu-ns/msg")
				b.ReportMetric(float64(dropped), "shm-dropped")
			})
		}
	}
}

// tellRound sends n tells of msg to the actor to ("count" or
// "count-borrowed", which answer alike) from senders goroutines and returns
// how many the actor dropped and the time until it had counted every other
// one.
func tellRound(b *testing.B, bb *bus.Bus, to string, msg any, n, senders int) (dropped int, el time.Duration) {
	ctx := context.Background()
	count := func() (taken, dropped int) {
		r, err := bb.Ask(ctx, to, "") // ordered behind this link's tells
		for i := 0; errors.Is(err, bus.ErrMailboxFull) && i < 10_000; i++ {
			time.Sleep(100 * time.Microsecond) // its mailbox is full of our tells
			r, err = bb.Ask(ctx, to, "")
		}
		if err != nil {
			b.Fatal(err)
		}
		if _, err := fmt.Sscan(r.(string), &taken, &dropped); err != nil {
			b.Fatal(err)
		}
		return taken, dropped
	}
	t0, d0 := count()
	per := n / senders
	var wg sync.WaitGroup
	start := time.Now()
	for range senders {
		wg.Go(func() {
			for range per {
				if err := bb.Tell(to, msg); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	t1, d1 := count()
	el = time.Since(start)
	// The child counts its dead letters a moment after they happen.
	for i := 0; (t1-t0)+(d1-d0) < per*senders && i < 1000; i++ {
		time.Sleep(time.Millisecond)
		t1, d1 = count()
	}
	if got := (t1 - t0) + (d1 - d0); got != per*senders {
		b.Fatalf("the child took %d tells and dropped %d, want %d in all", t1-t0, d1-d0, per*senders)
	}
	return d1 - d0, el
}

// dialChild starts the helper process and returns two buses that reach it:
// one over shmbus and, as the same-run baseline, one over netbus on a Unix
// socket. Both are closed when the benchmark ends.
func dialChild(b *testing.B) (shm, uds *bus.Bus) {
	_, path := startChild(b)
	return dialPath(b, path)
}

// dialPath connects two buses to the child listening at path: over shmbus
// and over netbus on the Unix socket beside it.
func dialPath(b *testing.B, path string) (shm, uds *bus.Bus) {
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

// BenchmarkPeerDeath measures how long an ask in flight takes to fail
// after its peer process is killed (SIGKILL): over shared memory the
// control socket's EOF ends the link; the same-run baseline is the same
// ask over netbus on a Unix socket, ended by that socket's EOF. Each
// iteration starts a child. The bound is 100 ms; unit tests do not
// assert times (TestCrossProcess checks the error), this reports them.
func BenchmarkPeerDeath(b *testing.B) {
	var shmTotal, udsTotal time.Duration
	for range b.N {
		cmd, path := startChild(b)
		shm, uds := dialPath(b, path)
		awaitRoute(b, shm, "echo", "x")
		awaitRoute(b, uds, "echo", "x")
		type result struct {
			err error
			at  time.Time
		}
		ask := func(bb *bus.Bus) chan result {
			ch := make(chan result, 1)
			go func() {
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				_, err := bb.Ask(ctx, "slow", "x")
				ch <- result{err, time.Now()}
			}()
			return ch
		}
		rs, ru := ask(shm), ask(uds)
		time.Sleep(50 * time.Millisecond) // both asks are at the child
		killed := time.Now()
		cmd.Process.Signal(syscall.SIGKILL)
		for _, x := range []struct {
			ch    chan result
			total *time.Duration
		}{{rs, &shmTotal}, {ru, &udsTotal}} {
			r := <-x.ch
			if !errors.Is(r.err, bus.ErrPeerGone) {
				b.Fatalf("ask after SIGKILL: %v, want ErrPeerGone", r.err)
			}
			*x.total += r.at.Sub(killed)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		shm.Close(ctx)
		uds.Close(ctx)
		cancel()
	}
	ms := func(d time.Duration) float64 { return float64(d) / float64(b.N) / 1e6 }
	b.ReportMetric(ms(shmTotal), "shm-ms")
	b.ReportMetric(ms(udsTotal), "unix-ms")
	b.ReportMetric(float64(shmTotal)/float64(udsTotal), "x-unix")
}
