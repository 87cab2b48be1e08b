//go:build linux

package shmbus

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/xbus-dev/xbus/internal/shmsys"
	"github.com/xbus-dev/xbus/mailbox"
)

// The ring-size sweep runs the ring itself, without a bus, between this
// process (the producer) and a child (this test binary started again with
// ringPeerEnv set, which TestMain checks): the parent creates both segments and passes them as
// fds 3 (its own, the ring) and 4 (the child's, the head and parked flag).

const ringPeerEnv = "SHMBUS_RING_PEER"

// RingPeer runs the ring peer when this process was started as one, for
// TestMain (in package shmbus_test), and reports whether it was.
func RingPeer() (code int, ok bool) {
	if arg := os.Getenv(ringPeerEnv); arg != "" {
		return ringPeer(arg), true
	}
	return 0, false
}

// ringPeer consumes the ring of the given size: it counts data records and
// prints the count at every recordLast, spinning for up to 50 µs on an empty
// ring before it parks, until its stdin closes. With arg "size:mailbox" it
// does the least a Tell to an actor must do on the receiving side: it
// copies each record out of shared memory into a string and sends it to a
// mailbox, whose actor counts; recordLast goes through the mailbox too, so
// the count printed includes every record before it. "size:chan" is the
// same with a Go channel of the mailbox's capacity and one goroutine
// receiving from it in place of the mailbox; "size:inline" uses a mailbox
// with Options.Inline, so the reader runs the actor itself whenever its
// mailbox is idle. "size:echo" writes every data record back through the
// child's own ring, from the reader; "size:echo-chan" hands each over a Go
// channel to a goroutine that writes it back (see BenchmarkRingAsk).
func ringPeer(arg string) int {
	arg, mode, _ := strings.Cut(arg, ":")
	size, err := strconv.Atoi(arg)
	if err != nil {
		return 2
	}
	ring, err := shmsys.MapPeerSegment(3, segmentSize(size))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	own, err := unix.Mmap(4, 0, segmentSize(size), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	key, err := readSegmentHeader(ring, size)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ownKey, err := readSegmentHeader(own, size)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	prod, cons, _, bell := rings(own, ring, size, ownKey, key)
	go func() { // stdin closing ends the peer
		var b [1]byte
		os.Stdin.Read(b[:])
		os.Exit(0)
	}()
	fmt.Println("ready")
	var count int64
	handle := func(typ uint32, _ []byte) error {
		if typ == recordLast {
			fmt.Println(count)
		} else {
			count++
		}
		return nil
	}
	switch mode {
	case "chan":
		ch := make(chan countMsg, mailbox.DefaultCapacity)
		go func() {
			c := counter{&count}
			for m := range ch {
				c.Invoke(m)
			}
		}()
		handle = func(typ uint32, p []byte) error {
			ch <- countMsg{s: string(p), last: typ == recordLast}
			return nil
		}
	case "echo": // the reader writes each record back itself
		handle = func(typ uint32, p []byte) error { return offerSpin(prod, nil, recordData, p) }
	case "echo-chan": // the reader hands each record to a goroutine that writes it back
		ch := make(chan []byte, mailbox.DefaultCapacity)
		go func() {
			for m := range ch {
				if err := offerSpin(prod, nil, recordData, m); err != nil {
					fmt.Fprintln(os.Stderr, err)
					os.Exit(1)
				}
			}
		}()
		handle = func(typ uint32, p []byte) error {
			ch <- append([]byte(nil), p...)
			return nil
		}
	case "mailbox", "inline":
		mb, err := newCountingMailbox(&count, mode == "inline")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		handle = func(typ uint32, p []byte) error {
			return mb.Send(context.Background(), countMsg{s: string(p), last: typ == recordLast}, mailbox.Block)
		}
	}
	// A reader that hands records to another goroutine yields after every
	// poll, as the bus's reader does, so that the goroutine runs here
	// rather than wait for another thread to wake and take it.
	yield := mode != "" && mode != "echo"
	for {
		start := time.Now()
		for spins := 0; ; spins++ {
			n, err := cons.poll(256, handle)
			if err != nil {
				fmt.Fprintln(os.Stderr, err)
				return 1
			}
			if n > 0 && cons.roomWanted() { // a one-way producer sleeps for room (offerWait)
				shmsys.FutexWake(cons.w.room)
			}
			if yield {
				runtime.Gosched()
			}
			if n > 0 {
				start, spins = time.Now(), 0
				continue
			}
			if spins&63 == 63 && time.Since(start) > 50*time.Microsecond {
				break
			}
		}
		seq := cons.prepareToPark()
		if n, _ := cons.poll(256, handle); n == 0 {
			shmsys.FutexWait(bell, seq, time.Second)
		}
		cons.unpark()
	}
}

// countMsg is a record handed to the counting actor of the mailbox floor.
type countMsg struct {
	s    string
	last bool
}

// counter is that actor: it counts data records and prints the count at
// the last one.
type counter struct{ n *int64 }

func (c counter) InvokeSystem(countMsg)   {}
func (c counter) Dropped(countMsg, error) {}
func (c counter) Invoke(m countMsg) {
	if m.last {
		fmt.Println(*c.n)
	} else {
		*c.n++
	}
}

// newCountingMailbox is the counting actor's mailbox, run by one long-lived
// goroutine as the bus's workers run mailboxes (a wake-up is a channel
// hand-off, not a new goroutine).
func newCountingMailbox(n *int64, inline bool) (*mailbox.Mailbox[countMsg], error) {
	runs := make(chan func(), 1)
	go func() {
		for run := range runs {
			run()
		}
	}()
	return mailbox.New[countMsg](counter{n}, mailbox.Options{Go: func(run func()) { runs <- run }, Inline: inline})
}

// offerSpin offers one record, yielding while the ring is full, and wakes
// the reader through bell if it had parked (bell is nil for a reader that
// never parks).
func offerSpin(prod *producer, bell *atomic.Uint32, typ uint32, b []byte) error {
	for {
		wake, err := prod.offer(typ, b, nil)
		if err == nil && wake && bell != nil {
			shmsys.FutexWake(bell)
		}
		if !errors.Is(err, errRingFull) {
			return err
		}
		runtime.Gosched()
	}
}

// offerWait offers one record as a link's sender does: while the ring is
// full it waits offerYields times (link.pauseForRoom), then sleeps until the
// reader frees room and wakes it (offerOrSleep; the child's reader does,
// see ringPeer), for at most roomSlice. A producer that only yields takes, on a machine whose CPUs
// are busy, the CPU the reader needs to free room, and the bare ring
// would then move fewer records than a link over it.
func offerWait(prod *producer, bell *atomic.Uint32, typ uint32, b []byte) error {
	for i := 0; ; i++ {
		var wake bool
		var err error
		if i <= offerYields {
			wake, err = prod.offer(typ, b, nil)
		} else {
			wake, _, err = offerOrSleep(prod, typ, b, nil, roomSlice, nil)
		}
		if err == nil && wake && bell != nil {
			shmsys.FutexWake(bell)
		}
		if !errors.Is(err, errRingFull) {
			return err
		}
		if i < offerYields {
			if prod.capacity < pollMinRing {
				runtime.Gosched()
			} else {
				prod.awaitHead(headPolls)
			}
		}
	}
}

// ringPair is the producer side of one ring and its consuming child.
type ringPair struct {
	prod  *producer
	cons  *consumer // of the child's ring: its replies in the echo modes
	bell  *atomic.Uint32
	cmd   *exec.Cmd
	out   *bufio.Reader
	close func()
}

// startRingPeer creates both segments of a ring of the given size and
// starts the child that consumes it, in the given mode (see ringPeer).
func startRingPeer(size int, mode string) (*ringPair, error) {
	fdA, a, err := shmsys.CreateSegment(segmentSize(size))
	if err != nil {
		return nil, err
	}
	fdB, b, err := shmsys.CreateWritableSegment(segmentSize(size))
	if err != nil {
		return nil, err
	}
	initSegment(a, size, 0x9e3779b97f4a7c15)
	initSegment(b, size, 0x7f4a7c159e3779b9)
	prod, cons, bell, _ := rings(a, b, size, 0x9e3779b97f4a7c15, 0x7f4a7c159e3779b9)
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), ringPeerEnv+"="+strconv.Itoa(size)+":"+mode)
	fa, fb := os.NewFile(uintptr(fdA), "ring"), os.NewFile(uintptr(fdB), "head")
	cmd.ExtraFiles = []*os.File{fa, fb}
	cmd.Stderr = os.Stderr
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	err = cmd.Start()
	fa.Close()
	fb.Close()
	if err != nil {
		return nil, err
	}
	p := &ringPair{prod: prod, cons: cons, bell: bell, cmd: cmd, out: bufio.NewReader(stdout)}
	p.close = func() {
		stdin.Close()
		cmd.Wait()
		shmsys.Unmap(a)
		shmsys.Unmap(b)
	}
	if line, err := p.out.ReadString('\n'); line != "ready\n" {
		p.close()
		return nil, fmt.Errorf("ring peer did not start: %q, %v", line, err)
	}
	return p, nil
}

// send offers n records of body to the ring, then a recordLast, and returns
// the child's count once it has consumed them all.
func (p *ringPair) send(n int, body []byte) (int64, error) {
	for range n {
		if err := offerWait(p.prod, p.bell, recordData, body); err != nil {
			return 0, err
		}
	}
	if err := offerWait(p.prod, p.bell, recordLast, nil); err != nil {
		return 0, err
	}
	line, err := p.out.ReadString('\n')
	if err != nil {
		return 0, err
	}
	return strconv.ParseInt(strings.TrimSpace(line), 10, 64)
}

// ringPeerFor starts a ring peer for the benchmark and stops it when the
// benchmark ends.
func ringPeerFor(b *testing.B, size int, mode string) *ringPair {
	p, err := startRingPeer(size, mode)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(p.close)
	return p
}

// sendRates sends 500,000 64-byte records to each pair in turn, 4*b.N
// rounds, checks that each peer counted them all, and returns each pair's
// records per second; names label the pairs in failures.
func sendRates(b *testing.B, pairs []*ringPair, names []string) []float64 {
	body := make([]byte, 64)
	const perRound = 500_000
	elapsed := make([]time.Duration, len(pairs))
	for r := range 4 * b.N {
		for i, p := range pairs {
			t0 := time.Now()
			total, err := p.send(perRound, body)
			elapsed[i] += time.Since(t0)
			if err != nil {
				b.Fatal(err)
			}
			if want := int64((r + 1) * perRound); total != want {
				b.Fatalf("%s: the peer counted %d records, want %d", names[i], total, want)
			}
		}
	}
	rates := make([]float64, len(pairs))
	for i := range pairs {
		rates[i] = float64(4*b.N*perRound) / elapsed[i].Seconds()
	}
	return rates
}

// BenchmarkRingSizes is the ring-size sweep: 64-byte records from one
// producer to a consumer in another process, through rings of 4 KiB to
// 1 MiB, in alternating rounds. It reports million records per second per
// size and each size's ratio to the default (64 KiB), all measured in the
// same run. Run it with -benchtime 1x.
func BenchmarkRingSizes(b *testing.B) {
	sizes := []int{4 << 10, 16 << 10, 64 << 10, 256 << 10, 1 << 20}
	pairs, names := make([]*ringPair, len(sizes)), make([]string, len(sizes))
	for i, size := range sizes {
		pairs[i], names[i] = ringPeerFor(b, size, ""), fmt.Sprintf("ring of %d bytes", size)
	}
	rate := sendRates(b, pairs, names)
	for i, size := range sizes {
		b.ReportMetric(rate[i]/1e6, fmt.Sprintf("M/s-%dKiB", size>>10))
		b.ReportMetric(rate[i]/rate[2], fmt.Sprintf("x64KiB-%dKiB", size>>10))
	}
}

// BenchmarkRingToMailbox is the floor under a one-way Tell to an actor in
// another process: 64-byte records through the default ring, with the
// child consuming them bare (the ring alone), copying each into a string
// sent on a Go channel to a counting goroutine (the baseline), and copying
// each into a string sent to a counting actor's mailbox (no envelope, no
// codec, no routing: only what any Tell to an actor must also do), and
// the same with the mailbox inline (the reader runs the actor). Alternating
// rounds of the four, in the same run; it reports million records per
// second of each and the mailbox's ratio to the channel. Run it with
// -benchtime 1x.
func BenchmarkRingToMailbox(b *testing.B) {
	modes := []string{"", "chan", "mailbox", "inline"}
	pairs := make([]*ringPair, len(modes))
	for i, mode := range modes {
		pairs[i] = ringPeerFor(b, DefaultRingSize, mode)
	}
	rate := sendRates(b, pairs, []string{"ring alone", "chan", "mailbox", "inline"})
	b.ReportMetric(rate[0]/1e6, "M/s-ring")
	b.ReportMetric(rate[1]/1e6, "M/s-ring+chan")
	b.ReportMetric(rate[2]/1e6, "M/s-ring+mailbox")
	b.ReportMetric(rate[3]/1e6, "M/s-ring+inline")
	b.ReportMetric(rate[2]/rate[1], "x-mailbox/chan")
}

// roundTrips makes n round trips of body to a child in an echo mode and
// returns their durations. With handoff false the caller reads the reply
// off the ring itself. With handoff true a reader goroutine polls the ring
// and hands each reply to the caller, which polls for it as the bus's
// asker does (a flag and runtime.Gosched).
func (p *ringPair) roundTrips(n int, body []byte, handoff bool) ([]time.Duration, error) {
	got := func(uint32, []byte) error { return nil }
	var replies atomic.Int64
	var stop atomic.Bool
	done := make(chan error, 1)
	if handoff {
		go func() {
			for !stop.Load() {
				k, err := p.cons.poll(64, func(uint32, []byte) error { replies.Add(1); return nil })
				if err != nil {
					done <- err
					return
				}
				if k == 0 {
					runtime.Gosched()
				}
			}
			done <- nil
		}()
		defer func() { stop.Store(true); <-done }()
	}
	lat := make([]time.Duration, 0, n)
	for i := range int64(n) {
		t0 := time.Now()
		if err := offerSpin(p.prod, p.bell, recordData, body); err != nil {
			return nil, err
		}
		if handoff {
			for replies.Load() <= i {
				select {
				case err := <-done: // the reader failed
					stop.Store(true)
					done <- err // for the deferred wait
					return nil, err
				default:
				}
				runtime.Gosched()
			}
		} else {
			for {
				k, err := p.cons.poll(1, got)
				if err != nil {
					return nil, err
				}
				if k == 1 {
					break
				}
			}
		}
		lat = append(lat, time.Since(t0))
	}
	return lat, nil
}

// BenchmarkRingAsk is the floor under an ask round trip to an actor in
// another process: 64-byte records through the default rings and back,
// (1) with the ring readers answering and taking the reply themselves (the
// raw ring round trip), (2) with the child's reader handing each record to
// a goroutine over a Go channel, as a bus hands an ask to an actor's
// worker, and the parent's reader handing the reply to the caller, as the
// bus hands it to the asker, and (3) with only the parent's hand-off, the
// shape of an actor registered WithInline. No envelope, codec or routing.
// Alternating rounds in the same run; it reports the p50 of each in
// microseconds. Run it with -benchtime 1x.
func BenchmarkRingAsk(b *testing.B) {
	direct := ringPeerFor(b, DefaultRingSize, "echo")
	pooled := ringPeerFor(b, DefaultRingSize, "echo-chan")
	body := make([]byte, 64)
	kinds := []struct {
		name    string
		p       *ringPair
		handoff bool
	}{{"raw", direct, false}, {"handoffs", pooled, true}, {"inline", direct, true}}
	lat := make([][]time.Duration, len(kinds))
	for range 4 * b.N {
		for i, k := range kinds {
			l, err := k.p.roundTrips(20_000, body, k.handoff)
			if err != nil {
				b.Fatal(err)
			}
			lat[i] = append(lat[i], l...)
		}
	}
	for i, k := range kinds {
		slices.Sort(lat[i])
		b.ReportMetric(float64(lat[i][len(lat[i])/2])/1e3, "µs-p50-"+k.name)
	}
}
