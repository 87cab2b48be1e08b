//go:build linux

package shmbench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/xbus-dev/xbus/bus"
	"github.com/xbus-dev/xbus/internal/benchkit"
	"github.com/xbus-dev/xbus/internal/shmsys"
	"github.com/xbus-dev/xbus/mailbox"
	"github.com/xbus-dev/xbus/netbus"
	"github.com/xbus-dev/xbus/shmbus"
)

// The benchmark of `xbus bench shm` (RunBench) runs between this process
// and a child: the running executable started again as the peer PeerName
// (benchkit.StartPeer), which runs Peer. The peer is a bus listening over shmbus and, as the same-run
// baseline, over netbus on a Unix socket (the same envelope encoding), or,
// for the raw floors, a loop on shared memory without any bus.

// quiet keeps the bench's buses from logging into its table: at the end
// the peer goes away first, and the buses here warn that they could not
// tell it of their names going.
var quiet = bus.WithLogger(slog.New(slog.DiscardHandler))

// Peer runs the child's side: "bus:<socket path>" or
// "raw:line|futex|eventfd" with the shared page as fd 3 (and eventfds as
// fds 4 and 5). It returns when stdin closes.
func Peer(mode string) int {
	kind, arg, _ := strings.Cut(mode, ":")
	if kind == "raw" {
		if err := rawFloorPeer(arg); err != nil {
			fmt.Fprintln(os.Stderr, "peer:", err)
			return 1
		}
		return 0
	}
	opts := []bus.Option{bus.WithName("shm-bench-peer"), quiet,
		bus.WithTransport(shmbus.New(shmbus.Config{Listen: arg})),
		bus.WithTransport(netbus.New(netbus.Config{Listen: []string{"unix:" + arg + ".net"}}))}
	for _, size := range sweepSizes {
		if size != shmbus.DefaultRingSize {
			opts = append(opts, bus.WithTransport(shmbus.New(shmbus.Config{Listen: sweepPath(arg, size), RingSize: size})))
		}
	}
	if path := os.Getenv(ProfileEnv); path != "" {
		f, err := os.Create(path)
		if err != nil {
			fmt.Fprintln(os.Stderr, "peer:", err)
			return 1
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(os.Stderr, "peer:", err)
			return 1
		}
		defer pprof.StopCPUProfile()
	}
	b, err := bus.New(opts...)
	if err != nil {
		fmt.Fprintln(os.Stderr, "peer:", err)
		return 1
	}
	b.Register("echo", bus.ActorFunc(func(c *bus.Context, msg any) error {
		if !c.IsAsk() {
			return nil
		}
		return c.Reply(msg)
	}))
	b.Register("echo-inline", bus.ActorFunc(func(c *bus.Context, msg any) error {
		if !c.IsAsk() {
			return nil
		}
		return c.Reply(msg)
	}), bus.WithInline())
	// A link's reader never waits on a full mailbox: a tell the counting
	// actors cannot queue is a dead letter, and they count those as taken.
	drops := map[string]*atomic.Int64{"count": {}, "count-inline": {}}
	dead, _ := b.Subscribe(context.Background(), bus.DeadLetterSubject, bus.WithWindow(1<<16))
	go func() {
		for m := range dead.Messages() {
			if d, ok := m.Msg.(bus.DeadLetter); ok && d.Msg != "" && drops[d.To.Name] != nil {
				drops[d.To.Name].Add(1)
			}
		}
	}()
	for _, name := range []string{"count", "count-inline"} {
		var count int64
		opts := []bus.ActorOption{bus.WithMailbox(mailbox.Options{Capacity: 1 << 14})}
		if name == "count-inline" {
			opts = append(opts, bus.WithInline())
		}
		b.Register(name, bus.ActorFunc(func(c *bus.Context, msg any) error {
			if c.IsAsk() {
				return c.Reply(strconv.FormatInt(count+drops[name].Load(), 10))
			}
			if _, ok := msg.(string); ok {
				count++
			}
			return nil
		}), opts...)
	}
	b.Register("cpu", bus.ActorFunc(func(c *bus.Context, msg any) error {
		if !c.IsAsk() {
			return nil
		}
		return c.Reply(strconv.FormatInt(int64(benchkit.CPUTime()), 10))
	}))
	fmt.Println("ready")
	io.Copy(io.Discard, os.Stdin)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	b.Close(ctx)
	return 0
}

// The raw floors: one page of shared memory, words 64 bytes apart.
// Word 0 is the parent's (ping), word 64 the child's (pong). Pings count
// up from 2; a ping of 1 ends the child.
const (
	rawPing = 0
	rawPong = 64
)

func rawWord(mem []byte, off int) *atomic.Uint32 {
	return (*atomic.Uint32)(unsafe.Pointer(&mem[off]))
}

// rawFloorPeer answers every ping of the parent with a pong of the same value,
// by busy-polling a cache line (line), by futex wait and wake (futex), or
// by an eventfd read through the Go netpoller (eventfd).
func rawFloorPeer(mode string) error {
	mem, err := unix.Mmap(3, 0, 4096, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return err
	}
	defer unix.Munmap(mem)
	ping, pong := rawWord(mem, rawPing), rawWord(mem, rawPong)
	fmt.Println("ready")
	switch mode {
	case "line":
		for last := uint32(0); ; {
			v := ping.Load()
			if v == last {
				continue
			}
			if v == 1 {
				return nil
			}
			last = v
			pong.Store(v)
		}
	case "futex":
		for last := uint32(0); ; {
			v := ping.Load()
			if v == last {
				shmsys.FutexWait(ping, last, time.Second)
				continue
			}
			if v == 1 {
				return nil
			}
			last = v
			pong.Store(v)
			shmsys.FutexWake(pong)
		}
	case "eventfd":
		for _, fd := range []int{4, 5} { // exec hands them over blocking
			if err := unix.SetNonblock(fd, true); err != nil {
				return err
			}
		}
		in, out := os.NewFile(4, "ping"), os.NewFile(5, "pong") // through the netpoller
		var b [8]byte
		for {
			if _, err := in.Read(b[:]); err != nil {
				return err
			}
			if ping.Load() == 1 {
				return nil
			}
			if _, err := out.Write(b[:]); err != nil {
				return err
			}
		}
	}
	return fmt.Errorf("unknown raw mode %q", mode)
}

// rawRTT measures round trips of the raw floor mode for about d.
func rawRTT(mode string, d time.Duration) ([]time.Duration, error) {
	fd, mem, err := shmsys.CreateWritableSegment(4096)
	if err != nil {
		return nil, err
	}
	defer shmsys.Unmap(mem)
	files := []*os.File{os.NewFile(uintptr(fd), "page")}
	var efd [2]int // ping, pong
	if mode == "eventfd" {
		for i := range efd {
			if efd[i], err = unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK); err != nil {
				return nil, err
			}
			files = append(files, os.NewFile(uintptr(efd[i]), "eventfd"))
		}
	}
	c, err := benchkit.StartPeer(PeerName, "raw:"+mode, files...)
	var out, in *os.File // ours: we write ping, read pong, through the netpoller
	if err == nil && mode == "eventfd" {
		for i, f := range []**os.File{&out, &in} {
			unix.SetNonblock(efd[i], true) // exec made the description blocking
			d, derr := unix.Dup(efd[i])
			if derr != nil {
				err = derr
				break
			}
			*f = os.NewFile(uintptr(d), "eventfd")
			defer (*f).Close()
		}
	}
	for _, f := range files {
		f.Close()
	}
	if err != nil {
		if c != nil {
			c.Stop()
		}
		return nil, err
	}
	defer c.Stop()
	ping, pong := rawWord(mem, rawPing), rawWord(mem, rawPong)
	defer func() {
		ping.Store(1)
		shmsys.FutexWake(ping)
		if out != nil {
			out.Write([]byte{1, 0, 0, 0, 0, 0, 0, 0})
		}
	}()
	var lat []time.Duration
	var b [8]byte
	b[0] = 1
	start := time.Now()
	for v := uint32(2); time.Since(start) < d; v++ {
		t0 := time.Now()
		ping.Store(v)
		switch mode {
		case "line":
			for pong.Load() != v {
			}
		case "futex":
			shmsys.FutexWake(ping)
			for pong.Load() != v {
				shmsys.FutexWait(pong, v-1, time.Second)
			}
		case "eventfd":
			if _, err := out.Write(b[:]); err != nil {
				return nil, err
			}
			if _, err := in.Read(b[:]); err != nil {
				return nil, err
			}
		}
		lat = append(lat, time.Since(t0))
	}
	return lat, nil
}

// sweepSizes are the ring sizes of the sweep rows; the peer listens with
// each on its own socket (both ends of a link must agree on the size).
var sweepSizes = []int{4 << 10, 16 << 10, shmbus.DefaultRingSize, 256 << 10, 1 << 20}

func sweepPath(path string, size int) string {
	if size == shmbus.DefaultRingSize {
		return path
	}
	return fmt.Sprintf("%s.r%d", path, size>>10)
}

// ringSweep measures, for each of sweepSizes, the Ask round trip p50 with
// 64-byte and 4 KiB bodies and the one-way Tell rate from one goroutine,
// over a link with rings of that size, in alternating rounds.
func (p *benchPair) ringSweep(n, tells int) (small, large [][]time.Duration, rate []float64, err error) {
	buses := make([]*bus.Bus, len(sweepSizes))
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		for _, b := range buses {
			if b != nil {
				b.Close(ctx)
			}
		}
	}()
	for i, size := range sweepSizes {
		buses[i], err = bus.New(bus.WithName(fmt.Sprintf("shm-bench-r%d", size>>10)), quiet,
			bus.WithTransport(shmbus.New(shmbus.Config{Dial: []string{sweepPath(p.path, size)}, RingSize: size})))
		if err == nil {
			err = awaitRoute(buses[i], "echo")
		}
		if err != nil {
			return nil, nil, nil, err
		}
	}
	small, large = make([][]time.Duration, len(buses)), make([][]time.Duration, len(buses))
	rate = make([]float64, len(buses))
	ctx := context.Background()
	msgs := []string{string(make([]byte, 64)), string(make([]byte, 4096))}
	for k := range benchkit.Rounds(n, 1000, 1) {
		for i, b := range buses {
			for j, out := range []*[]time.Duration{&small[i], &large[i]} {
				lat, err := benchkit.Latencies(k, func() error { _, err := b.Ask(ctx, "echo", msgs[j]); return err })
				if err != nil {
					return nil, nil, nil, err
				}
				*out = append(*out, lat...)
			}
		}
	}
	for i, b := range buses {
		if rate[i], err = tellRate(b, tells, 1); err != nil {
			return nil, nil, nil, err
		}
	}
	return small, large, rate, nil
}

// benchPair is this process's two buses to the bus peer.
type benchPair struct {
	child    *benchkit.Peer
	path     string // the peer's shmbus socket, in a directory close removes
	shm, uds *bus.Bus
}

func newBenchPair() (*benchPair, error) {
	dir, err := os.MkdirTemp("", "shmbus-bench")
	if err != nil {
		return nil, err
	}
	path := filepath.Join(dir, "s.sock")
	c, err := benchkit.StartPeer(PeerName, "bus:"+path)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	p := &benchPair{child: c, path: path}
	if p.shm, err = bus.New(bus.WithName("shm-bench"), quiet, bus.WithTransport(shmbus.New(shmbus.Config{Dial: []string{path}}))); err != nil {
		p.close()
		return nil, err
	}
	if p.uds, err = bus.New(bus.WithName("unix-bench"), quiet, bus.WithTransport(netbus.New(netbus.Config{Peers: []string{"unix:" + path + ".net"}}))); err != nil {
		p.close()
		return nil, err
	}
	for _, b := range []*bus.Bus{p.shm, p.uds} {
		if err := awaitRoute(b, "echo"); err != nil {
			p.close()
			return nil, err
		}
	}
	return p, nil
}

func awaitRoute(b *bus.Bus, name string) error {
	var err error
	for range 500 {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err = b.Ask(ctx, name, "")
		cancel()
		if err == nil {
			return nil
		}
		time.Sleep(10 * time.Millisecond)
	}
	return fmt.Errorf("shmbus bench: %s never reachable: %w", name, err)
}

func (p *benchPair) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, b := range []*bus.Bus{p.shm, p.uds} {
		if b != nil {
			b.Close(ctx)
		}
	}
	p.child.Stop()
	os.RemoveAll(filepath.Dir(p.path))
}

// askRTT asks echo n times with msg, alternating rounds of round asks
// between shm and the Unix-socket baseline; every > 0 paces the asks.
func (p *benchPair) askRTT(msg string, n, round int, every time.Duration) (shm, uds []time.Duration, err error) {
	ctx := context.Background()
	next := time.Now()
	do := func(b *bus.Bus, out *[]time.Duration, k int) error {
		ask := func() error { _, err := b.Ask(ctx, "echo", msg); return err }
		if every == 0 {
			lat, err := benchkit.Latencies(k, ask)
			*out = append(*out, lat...)
			return err
		}
		for range k { // paced: each ask is timed from when it was due,
			// so an ask that waited for a slow one before it counts its wait
			next = next.Add(every)
			time.Sleep(time.Until(next))
			if err := ask(); err != nil {
				return err
			}
			*out = append(*out, time.Since(next))
		}
		return nil
	}
	for k := range benchkit.Rounds(n, round, 1) {
		if err := do(p.shm, &shm, k); err != nil {
			return nil, nil, err
		}
		if err := do(p.uds, &uds, k); err != nil {
			return nil, nil, err
		}
	}
	return shm, uds, nil
}

// inlineRTT asks "echo" and "echo-inline" (registered WithInline: the
// peer's reader runs it) n times each over shared memory with a 64-byte
// body, in alternating rounds.
func (p *benchPair) inlineRTT(n int) (pooled, inline []time.Duration, err error) {
	ctx := context.Background()
	msg := string(make([]byte, 64))
	if err := awaitRoute(p.shm, "echo-inline"); err != nil {
		return nil, nil, err
	}
	for k := range benchkit.Rounds(n, 1000, 1) {
		for _, c := range []struct {
			to  string
			out *[]time.Duration
		}{{"echo", &pooled}, {"echo-inline", &inline}} {
			lat, err := benchkit.Latencies(k, func() error { _, err := p.shm.Ask(ctx, c.to, msg); return err })
			if err != nil {
				return nil, nil, err
			}
			*c.out = append(*c.out, lat...)
		}
	}
	return pooled, inline, nil
}

// peerCPU is the CPU time the peer process has used, asked over b.
func peerCPU(b *bus.Bus) (time.Duration, error) {
	r, err := b.Ask(context.Background(), "cpu", "")
	if err != nil {
		return 0, err
	}
	s, _ := r.(string)
	v, err := strconv.ParseInt(s, 10, 64)
	return time.Duration(v), err
}

// idleCPU is the share of one CPU both processes use while nobody sends
// anything for d, with both links up, after settle without traffic: the
// work that follows traffic (readers spinning out their budget, workers
// retiring, a collection under way) is not idling, and a window of a few
// seconds holds enough of the links' periodic wake-ups (1 s park slices,
// 2 s socket heartbeats) to average them.
func (p *benchPair) idleCPU(settle, d time.Duration) (float64, error) {
	time.Sleep(settle)
	p0, err := peerCPU(p.shm)
	if err != nil {
		return 0, err
	}
	c0 := benchkit.CPUTime()
	time.Sleep(d)
	c1 := benchkit.CPUTime()
	p1, err := peerCPU(p.shm)
	if err != nil {
		return 0, err
	}
	return float64(c1-c0+p1-p0) / float64(d), nil
}

// cpuPerAsk is the CPU time of both processes per ask of n paced asks on b.
func (p *benchPair) cpuPerAsk(b *bus.Bus, n int, every time.Duration) (time.Duration, error) {
	ctx := context.Background()
	peerCPU := func() (time.Duration, error) { return peerCPU(b) }
	p0, err := peerCPU()
	if err != nil {
		return 0, err
	}
	c0 := benchkit.CPUTime()
	next := time.Now()
	for range n {
		next = next.Add(every)
		time.Sleep(time.Until(next))
		if _, err := b.Ask(ctx, "echo", "x"); err != nil {
			return 0, err
		}
	}
	c1 := benchkit.CPUTime()
	p1, err := peerCPU()
	if err != nil {
		return 0, err
	}
	return (c1 - c0 + p1 - p0) / time.Duration(n), nil
}

// tellRate sends n one-way tells from senders goroutines and returns
// messages per second, the clock stopped when the peer has counted them.
func tellRate(b *bus.Bus, n, senders int) (float64, error) { return tellRateTo(b, "count", n, senders) }

// tellRateTo is tellRate to the counting actor named to.
func tellRateTo(b *bus.Bus, to string, n, senders int) (float64, error) {
	ctx := context.Background()
	count := func() (int64, error) {
		r, err := b.Ask(ctx, to, "")
		for i := 0; errors.Is(err, bus.ErrMailboxFull) && i < 10_000; i++ {
			time.Sleep(100 * time.Microsecond) // its mailbox is full of our tells
			r, err = b.Ask(ctx, to, "")
		}
		if err != nil {
			return 0, err
		}
		s, _ := r.(string)
		return strconv.ParseInt(s, 10, 64)
	}
	before, err := count()
	if err != nil {
		return 0, err
	}
	msg := string(make([]byte, 64))
	var wg sync.WaitGroup
	errs := make(chan error, senders)
	t0 := time.Now()
	for range senders {
		wg.Go(func() {
			for range n / senders {
				if err := b.Tell(to, msg); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	want := before + int64(n/senders*senders)
	after, err := count() // queued behind every tell of this link
	el := time.Since(t0)
	// The peer counts its dead letters a moment after they happen.
	for i := 0; err == nil && after < want && i < 1000; i++ {
		time.Sleep(time.Millisecond)
		after, err = count()
	}
	close(errs)
	if err == nil {
		err = <-errs
	}
	if err != nil {
		return 0, err
	}
	if got, want := after-before, int64(n/senders*senders); got != want {
		return 0, fmt.Errorf("shmbus bench: peer counted %d tells, want %d", got, want)
	}
	return float64(after-before) / el.Seconds(), nil
}

// p50p99 are the quantiles of the latency rows that report two.
var p50p99 = []struct {
	label string
	q     float64
}{{"p50", .5}, {"p99", .99}}

// quantile is the q-th quantile (0 < q < 1) of l, which it sorts.
func quantile(l []time.Duration, q float64) time.Duration {
	slices.Sort(l)
	return benchkit.Percentile(l, 100*q)
}

// RunBench measures shmbus between this process and a child process (this
// executable, started again): Ask round trips with 64-byte and 4 KiB bodies
// at full speed and at 1,000 asks/s, CPU time per paced ask, one-way Tell
// throughput from 1 and 4 goroutines, each against the same bus over a
// Unix socket (netbus) measured in the same run, and the raw floors: a
// cache line, futex and eventfd ping-pong between two processes. quick
// shrinks every count for a smoke test.
func RunBench(out benchkit.Out, quick bool) error {
	scale := func(full, q int) int {
		if quick {
			return q
		}
		return full
	}
	rawDur := time.Duration(scale(int(500*time.Millisecond), int(20*time.Millisecond)))
	raws := map[string][]time.Duration{}
	for _, m := range []string{"line", "futex", "eventfd"} {
		out.Progress("raw %s ping-pong between two processes", m)
		l, err := rawRTT(m, rawDur)
		if err != nil {
			return fmt.Errorf("shmbus bench: raw %s: %w", m, err)
		}
		raws[m] = l
	}
	out.Progress("starting the peer process")
	p, err := newBenchPair()
	if err != nil {
		return err
	}
	defer p.close()
	ns := func(d time.Duration) float64 { return float64(max(d, 1)) }
	for _, size := range []int{64, 4096} {
		n := scale(200_000, 2_000)
		out.Progress("%d asks with %d-byte bodies, alternating rounds with the Unix socket", n, size)
		msg := string(make([]byte, size))
		s, u, err := p.askRTT(msg, n, 1000, 0)
		if err != nil {
			return err
		}
		for _, q := range []struct {
			label string
			q     float64
		}{{"p50", .5}, {"p99", .99}, {"p99.9", .999}} {
			sq, uq := quantile(s, q.q), quantile(u, q.q)
			r := benchkit.Row{Name: fmt.Sprintf("Ask round trip %s, %d B (Unix socket)", q.label, size), Unit: benchkit.Nanos, Xbus: ns(sq), Baseline: ns(uq)}
			if size == 64 && q.label == "p99" {
				r.Target, r.Status = "< 5µs", benchkit.Verdict(sq < 5*time.Microsecond)
			}
			out.Row(r)
			if size == 64 && q.label == "p50" {
				line := quantile(raws["line"], .5)
				out.Row(benchkit.Row{Name: "Ask round trip p50, 64 B (raw cache-line ping-pong)", Unit: benchkit.Nanos,
					Xbus: ns(sq), Baseline: ns(line), Target: "≤ 3×", Status: benchkit.Verdict(sq <= 3*line)})
			}
		}
	}
	{
		n := scale(100_000, 1_000)
		out.Progress("%d asks to an actor WithInline and to the same actor not inline", n)
		pooled, inline, err := p.inlineRTT(n)
		if err != nil {
			return err
		}
		for _, q := range p50p99 {
			out.Row(benchkit.Row{Name: "Ask round trip " + q.label + ", 64 B, actor WithInline (the same actor, not inline)", Unit: benchkit.Nanos,
				Xbus: ns(quantile(inline, q.q)), Baseline: ns(quantile(pooled, q.q))})
		}
	}
	{
		n := scale(3000, 60)
		out.Progress("%d asks at 1,000/s, latency from each ask's scheduled time", n)
		s, u, err := p.askRTT("x", n, 200, time.Millisecond)
		if err != nil {
			return err
		}
		for _, q := range p50p99 {
			sq, uq := quantile(s, q.q), quantile(u, q.q)
			out.Row(benchkit.Row{Name: "Ask at 1,000/s " + q.label + " (Unix socket)", Unit: benchkit.Nanos,
				Xbus: ns(sq), Baseline: ns(uq), Target: "≤ 1.0×", Status: benchkit.Verdict(sq <= uq)})
		}
		out.Progress("CPU time per ask at 1,000/s")
		cs, err := p.cpuPerAsk(p.shm, scale(2000, 50), time.Millisecond)
		if err != nil {
			return err
		}
		cu, err := p.cpuPerAsk(p.uds, scale(2000, 50), time.Millisecond)
		if err != nil {
			return err
		}
		out.Row(benchkit.Row{Name: "CPU per ask at 1,000/s, both processes (Unix socket)", Unit: benchkit.Nanos, Xbus: ns(cs), Baseline: ns(cu)})
		settle, window := time.Duration(scale(2000, 10))*time.Millisecond, time.Duration(scale(5000, 100))*time.Millisecond // in ms: 5 s overflows a 32-bit int
		out.Progress("CPU while idle: %v after %v without traffic", window, settle)
		idle, err := p.idleCPU(settle, window)
		if err != nil {
			return err
		}
		out.Row(benchkit.Row{Name: fmt.Sprintf("CPU while idle, both processes, %v after %v without traffic (shm and Unix links up)", window, settle), Unit: benchkit.CPU, Xbus: 100 * idle,
			Target: "< 1 %", Status: benchkit.Verdict(idle < 0.01)})
	}
	for _, senders := range []int{1, 4} {
		n := scale(1_000_000, 10_000)
		out.Progress("%d one-way tells from %d sender(s)", n, senders)
		s, err := tellRate(p.shm, n, senders)
		if err != nil {
			return err
		}
		u, err := tellRate(p.uds, n, senders)
		if err != nil {
			return err
		}
		out.Row(benchkit.Row{Name: fmt.Sprintf("one-way Tell, 64 B, %d sender%s (Unix socket)", senders, plural(senders)), Unit: benchkit.PerSec,
			Xbus: s, Baseline: u, Target: "≥ 10 M/s", Status: benchkit.Verdict(s >= 10e6)})
	}
	{
		n := scale(1_000_000, 10_000)
		out.Progress("%d one-way tells to an actor WithInline and not inline", n)
		i, err := tellRateTo(p.shm, "count-inline", n, 1)
		if err != nil {
			return err
		}
		s, err := tellRate(p.shm, n, 1)
		if err != nil {
			return err
		}
		out.Row(benchkit.Row{Name: "one-way Tell, 64 B, 1 sender, actor WithInline (the same actor, not inline)", Unit: benchkit.PerSec, Xbus: i, Baseline: s})
	}
	{
		out.Progress("ring sizes %v", sweepSizes)
		small, large, rate, err := p.ringSweep(scale(20_000, 500), scale(300_000, 5_000))
		if err != nil {
			return err
		}
		def := slices.Index(sweepSizes, shmbus.DefaultRingSize)
		for i, size := range sweepSizes {
			name := fmt.Sprintf("ring %d KiB: ", size>>10)
			out.Row(benchkit.Row{Name: name + "Ask p50, 64 B (64 KiB ring)", Unit: benchkit.Nanos, Xbus: ns(quantile(small[i], .5)), Baseline: ns(quantile(small[def], .5))})
			out.Row(benchkit.Row{Name: name + "Ask p50, 4 KiB (64 KiB ring)", Unit: benchkit.Nanos, Xbus: ns(quantile(large[i], .5)), Baseline: ns(quantile(large[def], .5))})
			out.Row(benchkit.Row{Name: name + "Tell, 1 sender (64 KiB ring)", Unit: benchkit.PerSec, Xbus: rate[i], Baseline: rate[def]})
		}
	}
	for _, m := range []struct{ key, name string }{
		{"line", "raw floor: cache-line ping-pong RTT"},
		{"futex", "raw: futex wait/wake ping-pong RTT"},
		{"eventfd", "raw: eventfd (netpoller) ping-pong RTT"},
	} {
		for _, q := range p50p99 {
			out.Row(benchkit.Row{Name: m.name + " " + q.label, Unit: benchkit.Nanos, Xbus: ns(quantile(raws[m.key], q.q))})
		}
	}
	return nil
}

// plural is the ending of a count's noun.
func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}
