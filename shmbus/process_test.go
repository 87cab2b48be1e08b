//go:build linux

package shmbus_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/xbus-dev/xbus/bus"
	"github.com/xbus-dev/xbus/mailbox"
	"github.com/xbus-dev/xbus/netbus"
	"github.com/xbus-dev/xbus/shmbus"
)

const helperEnv = "SHMBUS_TEST_HELPER"

func TestMain(m *testing.M) {
	if path := os.Getenv(helperEnv); path != "" {
		runHelper(path)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// runHelper is the child process: a bus listening on path with actors
// "echo", "pub", "order" and "slow". It prints "ready" and runs until killed
// or until its stdin closes.
func runHelper(path string) {
	t := shmbus.New(shmbus.Config{Listen: path})
	nt := netbus.New(netbus.Config{Listen: []string{"unix:" + path + ".net"}})
	b, err := bus.New(bus.WithName("child"), bus.WithTransport(t), bus.WithTransport(nt))
	if err != nil {
		fmt.Println("error:", err)
		return
	}
	b.Register("echo", bus.ActorFunc(func(c *bus.Context, msg any) error {
		if !c.IsAsk() {
			return nil // lifecycle messages
		}
		return c.Reply(msg)
	}))
	b.Register("pub", bus.ActorFunc(func(c *bus.Context, msg any) error {
		s, ok := msg.(string)
		if !ok {
			return nil
		}
		return c.Bus().Publish("out."+s, s)
	}))
	b.Register("slow", bus.ActorFunc(func(c *bus.Context, msg any) error {
		if !c.IsAsk() {
			return nil
		}
		time.Sleep(time.Minute)
		return nil
	}))
	next := map[string]int{}
	count, bad := 0, 0
	b.Register("order", bus.ActorFunc(func(c *bus.Context, msg any) error {
		s, ok := msg.(string)
		if !ok {
			return nil
		}
		if s == "report" {
			return c.Reply(fmt.Sprintf("count=%d bad=%d", count, bad))
		}
		id, seq, _ := strings.Cut(s, ":")
		n, _ := strconv.Atoi(seq)
		if n != next[id] {
			bad++
		}
		next[id] = n + 1
		count++
		return nil
	}), bus.WithMailbox(mailbox.Options{Capacity: 1 << 17}))
	fmt.Println("ready")
	bufio.NewReader(os.Stdin).ReadString('\n')
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	b.Close(ctx)
}

// startChild runs the helper and waits until it listens.
func startChild(t testing.TB) (*exec.Cmd, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "shm.sock")
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+path)
	stdin, _ := cmd.StdinPipe()
	out, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stdin.Close(); cmd.Process.Kill(); cmd.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || line != "ready\n" {
		t.Fatalf("child: %q, %v", line, err)
	}
	return cmd, path
}

// askUntilRouted asks name until the peer's names have arrived.
func askUntilRouted(t *testing.T, b *bus.Bus, name string, msg any) any {
	t.Helper()
	for range 500 {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		r, err := b.Ask(ctx, name, msg)
		cancel()
		if errors.Is(err, bus.ErrNoRoute) {
			time.Sleep(10 * time.Millisecond)
			continue
		}
		if err != nil {
			t.Fatalf("ask %s: %v", name, err)
		}
		return r
	}
	t.Fatalf("no route to %s", name)
	return nil
}

func countFds() int {
	ents, _ := os.ReadDir("/proc/self/fd")
	return len(ents)
}

// waitGoroutines waits for the goroutine count to come back to base.
func waitGoroutines(t *testing.T, base int) {
	t.Helper()
	for range 200 {
		if runtime.NumGoroutine() <= base {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	buf := make([]byte, 1<<16)
	t.Fatalf("goroutines leaked: %d > %d\n%s", runtime.NumGoroutine(), base, buf[:runtime.Stack(buf, true)])
}

func TestCrossProcess(t *testing.T) {
	baseG, baseFd := runtime.NumGoroutine(), countFds()
	cmd, path := startChild(t)
	tr := shmbus.New(shmbus.Config{Dial: []string{path}})
	b, err := bus.New(bus.WithName("parent"), bus.WithTransport(tr))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	// Ask by name.
	if r := askUntilRouted(t, b, "echo", "hello"); r != "hello" {
		t.Fatalf("echo replied %v", r)
	}
	// A message bigger than a ring record is fragmented and reassembled.
	big := strings.Repeat("x", 200<<10)
	if r, err := b.Ask(ctx, "echo", big); err != nil || r != big {
		t.Fatalf("big echo: %d bytes, %v", len(fmt.Sprint(r)), err)
	}

	// Tell to the child, which publishes to a subscription of ours.
	sub, err := b.Subscribe(ctx, "out.>")
	if err != nil {
		t.Fatal(err)
	}
	var m bus.Message
	for i := 0; ; i++ { // the child learns of our subscription asynchronously
		if err := b.Tell("pub", "p"+strconv.Itoa(i)); err != nil {
			t.Fatal(err)
		}
		wctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
		m, err = sub.Next(wctx)
		cancel()
		if err == nil || i > 200 {
			break
		}
	}
	if err != nil || !strings.HasPrefix(m.Subject, "out.p") || m.Msg != strings.TrimPrefix(m.Subject, "out.") {
		t.Fatalf("subscription got %+v, %v", m, err)
	}

	// Order: 4 senders, per-sender order on the far side.
	const senders, each = 4, 25000
	var wg sync.WaitGroup
	for s := range senders {
		wg.Go(func() {
			for i := range each {
				if err := b.Tell("order", strconv.Itoa(s)+":"+strconv.Itoa(i)); err != nil {
					t.Errorf("tell: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
	if r := askUntilRouted(t, b, "order", "report"); r != fmt.Sprintf("count=%d bad=0", senders*each) {
		t.Fatalf("order: %v", r)
	}

	// Peer death: an ask in flight fails with ErrPeerGone, not by its deadline.
	actx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	res := make(chan error, 1)
	start := time.Now()
	go func() { _, err := b.Ask(actx, "slow", "x"); res <- err }()
	time.Sleep(100 * time.Millisecond) // let the ask reach the child
	cmd.Process.Signal(syscall.SIGKILL)
	err = <-res
	if !errors.Is(err, bus.ErrPeerGone) {
		t.Fatalf("ask after SIGKILL: %v, want ErrPeerGone", err)
	}
	t.Logf("ask failed %v after start (deadline 30s): %v", time.Since(start), err)
	if err := b.Close(ctx); err != nil {
		t.Fatal(err)
	}
	sub = nil
	// Both segments of the link are unmapped (memfd: nothing on disk to clean).
	if maps, _ := os.ReadFile("/proc/self/maps"); strings.Contains(string(maps), "memfd:xbus-shm") {
		t.Error("a shared segment is still mapped after the peer died")
	}
	waitGoroutines(t, baseG+2) // the child's pipes may still be read by exec
	if n := countFds(); n > baseFd+3 {
		t.Errorf("fds: %d after, %d before", n, baseFd)
	}
}
