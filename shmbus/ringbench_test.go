//go:build linux

package shmbus

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/xbus-dev/xbus/shmbus/internal/shmsys"
)

// The ring-size sweep runs the ring itself, without a bus, between this
// process (the producer) and a child (this test binary started again with
// ringPeerEnv set): the parent creates both segments and passes them as
// fds 3 (its own, the ring) and 4 (the child's, the head and parked flag).

const ringPeerEnv = "SHMBUS_RING_PEER"

func init() {
	if v := os.Getenv(ringPeerEnv); v != "" {
		os.Exit(ringPeer(v))
	}
}

// ringPeer consumes the ring of the given size: it counts data records and
// prints the count at every recordLast, spinning for up to 50 µs on an empty
// ring before it parks, until its stdin closes.
func ringPeer(arg string) int {
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
	_, cons, _, bell := rings(own, ring, size, 0, key)
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
	for {
		start := time.Now()
		for spins := 0; ; spins++ {
			n, err := cons.poll(256, handle)
			if err != nil {
				fmt.Fprintln(os.Stderr, err)
				return 1
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

// ringPair is the producer side of one ring and its consuming child.
type ringPair struct {
	prod  *producer
	bell  *atomic.Uint32
	cmd   *exec.Cmd
	out   *bufio.Reader
	close func()
}

func startRingPair(size int) (*ringPair, error) {
	fdA, a, err := shmsys.CreateSegment(segmentSize(size))
	if err != nil {
		return nil, err
	}
	fdB, b, err := shmsys.CreateSegment(segmentSize(size))
	if err != nil {
		return nil, err
	}
	initSegment(a, size, 0x9e3779b97f4a7c15)
	initSegment(b, size, 0x7f4a7c159e3779b9)
	prod, _, bell, _ := rings(a, b, size, 0x9e3779b97f4a7c15, 0x7f4a7c159e3779b9)
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), ringPeerEnv+"="+strconv.Itoa(size))
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
	p := &ringPair{prod: prod, bell: bell, cmd: cmd, out: bufio.NewReader(stdout)}
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
	offer := func(typ uint32, b []byte) error {
		for {
			wake, err := p.prod.offer(typ, b, nil)
			if err == nil {
				if wake {
					shmsys.FutexWake(p.bell)
				}
				return nil
			}
			if !errors.Is(err, errRingFull) {
				return err
			}
			runtime.Gosched()
		}
	}
	for range n {
		if err := offer(recordData, body); err != nil {
			return 0, err
		}
	}
	if err := offer(recordLast, nil); err != nil {
		return 0, err
	}
	line, err := p.out.ReadString('\n')
	if err != nil {
		return 0, err
	}
	return strconv.ParseInt(strings.TrimSpace(line), 10, 64)
}

// BenchmarkRingSizes is the ring-size sweep: 64-byte records from one
// producer to a consumer in another process, through rings of 4 KiB to
// 1 MiB, in alternating rounds. It reports million records per second per
// size and each size's ratio to the default (64 KiB), all measured in the
// same run. Run it with -benchtime 1x.
func BenchmarkRingSizes(b *testing.B) {
	sizes := []int{4 << 10, 16 << 10, 64 << 10, 256 << 10, 1 << 20}
	pairs := make([]*ringPair, len(sizes))
	for i, size := range sizes {
		p, err := startRingPair(size)
		if err != nil {
			b.Fatal(err)
		}
		defer p.close()
		pairs[i] = p
	}
	body := make([]byte, 64)
	const perRound = 500_000
	rounds := 4 * b.N
	elapsed := make([]time.Duration, len(sizes))
	var counted = make([]int64, len(sizes))
	for r := range rounds {
		for i, p := range pairs {
			t0 := time.Now()
			total, err := p.send(perRound, body)
			elapsed[i] += time.Since(t0)
			if err != nil {
				b.Fatal(err)
			}
			counted[i] = total
			if want := int64((r + 1) * perRound); total != want {
				b.Fatalf("ring of %d bytes: the peer counted %d records, want %d", sizes[i], total, want)
			}
		}
	}
	rate := func(i int) float64 { return float64(counted[i]) / elapsed[i].Seconds() }
	for i, size := range sizes {
		b.ReportMetric(rate(i)/1e6, fmt.Sprintf("M/s-%dKiB", size>>10))
		b.ReportMetric(rate(i)/rate(2), fmt.Sprintf("x64KiB-%dKiB", size>>10))
	}
}
