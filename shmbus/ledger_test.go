//go:build linux

package shmbus_test

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/xbus-dev/xbus/bus"
	"github.com/xbus-dev/xbus/bus/bustest"
	"github.com/xbus-dev/xbus/mailbox"
	"github.com/xbus-dev/xbus/shmbus"
)

// TestLedgerAbruptClose: tells stream from A to a stalled actor on B
// through the smallest rings, and A's end of the link is closed under them.
// Each tell is then processed by B, refused to A's sender, or a dead letter
// on either side, exactly: B's reader delivers what the ring still held, and
// A hands back what B's reader never took.
func TestLedgerAbruptClose(t *testing.T) {
	for _, cut := range []int{1000, 7000, 20000} {
		path := filepath.Join(t.TempDir(), "b.sock")
		cfg := shmbus.Config{RingSize: shmbus.MinRingSize}
		cb, ca := cfg, cfg
		cb.Listen, ca.Dial = path, []string{path}
		B := bustest.NewBus(t, shmbus.New(cb))
		tapA := bustest.NewTap(shmbus.New(ca))
		A := bustest.NewBus(t, tapA, bus.WithBackoff(time.Millisecond, 20*time.Millisecond))
		var processed atomic.Int64
		stall := make(chan struct{})
		B.Register("sink", bus.ActorFunc(func(c *bus.Context, msg any) error {
			if _, ok := msg.(int); ok {
				<-stall
				processed.Add(1)
			}
			return nil
		}), bus.WithMailbox(mailbox.Options{Capacity: 1 << 10}))
		for A.Tell("sink", "hello") != nil { // until A knows the name
			time.Sleep(time.Millisecond)
		}
		const senders, each = 4, 7500
		const sent = senders * each
		var tried, refused atomic.Int64
		var wg sync.WaitGroup
		for range senders {
			wg.Go(func() {
				for i := range each {
					tried.Add(1)
					if A.Tell("sink", i) != nil {
						refused.Add(1)
					}
				}
			})
		}
		for tried.Load() < int64(cut) {
			runtime.Gosched()
		}
		bustest.Break(errors.New("link closed by the test"), tapA)
		bustest.Heal(tapA)
		wg.Wait()
		close(stall)
		var got int64
		for range 2000 {
			got = processed.Load() + refused.Load() + int64(A.DeadLetters()+B.DeadLetters())
			if got >= sent {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		time.Sleep(50 * time.Millisecond) // an excess shows up too
		got = processed.Load() + refused.Load() + int64(A.DeadLetters()+B.DeadLetters())
		t.Logf("cut at %d: processed %d, refused %d, dead letters A %d (peer gone %d), B %d",
			cut, processed.Load(), refused.Load(), A.DeadLetters(), A.DeadLetterCount(bus.ErrPeerGone), B.DeadLetters())
		if got != sent {
			t.Errorf("cut at %d: processed %d + refused %d + dead letters %d = %d, want %d", cut,
				processed.Load(), refused.Load(), A.DeadLetters()+B.DeadLetters(), got, sent)
		}
	}
}

const senderEnv = "SHMBUS_TEST_SENDER"

// runSender is a child process that dials path and tells "sink" the numbers
// from 0 up for ever, writing one byte to stdout after each tell accepted.
func runSender(path string) {
	b, err := bus.New(bus.WithName("sender"), bus.WithTransport(shmbus.New(shmbus.Config{Dial: []string{path}, RingSize: shmbus.MinRingSize})))
	if err != nil {
		fmt.Println("error:", err)
		return
	}
	for b.Tell("sink", "hello") != nil {
		time.Sleep(time.Millisecond)
	}
	one := []byte{'.'}
	for i := 0; ; i++ {
		if b.Tell("sink", i) == nil {
			os.Stdout.Write(one)
		}
	}
}

// TestLedgerKilledSender: a child process streams tells to a stalled actor
// and is killed with SIGKILL mid-stream. Every tell it had accepted is
// processed or a dead letter here: the reader delivers what the dead
// process left in its ring. The child reports each accepted tell after Tell
// returns, so one more than it reported may have been accepted.
func TestLedgerKilledSender(t *testing.T) {
	path := filepath.Join(t.TempDir(), "b.sock")
	B := bustest.NewBus(t, shmbus.New(shmbus.Config{Listen: path, RingSize: shmbus.MinRingSize}))
	var processed atomic.Int64
	stall := make(chan struct{})
	B.Register("sink", bus.ActorFunc(func(c *bus.Context, msg any) error {
		if _, ok := msg.(int); ok {
			<-stall
			processed.Add(1)
		}
		return nil
	}), bus.WithMailbox(mailbox.Options{Capacity: 1 << 10}))
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), senderEnv+"="+path)
	out, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	stop := time.AfterFunc(60*time.Second, func() { cmd.Process.Kill() }) // a child that never streams fails the test rather than hang it
	defer stop.Stop()
	buf := make([]byte, 4096)
	var reported int64
	killed := false
	for {
		n, err := out.Read(buf)
		reported += int64(n)
		if !killed && reported >= 20000 {
			cmd.Process.Signal(syscall.SIGKILL)
			killed = true
		}
		if err != nil {
			break
		}
	}
	cmd.Wait()
	if !killed {
		t.Fatalf("the child reported %d tells and stopped", reported)
	}
	close(stall)
	var got int64
	for range 1000 {
		if got = processed.Load() + int64(B.DeadLetters()); got >= reported {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond)
	got = processed.Load() + int64(B.DeadLetters())
	t.Logf("reported %d, processed %d, dead letters %d", reported, processed.Load(), B.DeadLetters())
	if got < reported || got > reported+1 {
		t.Fatalf("the killed sender reported %d tells accepted, processed %d + dead letters %d = %d",
			reported, processed.Load(), B.DeadLetters(), got)
	}
}
