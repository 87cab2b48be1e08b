//go:build unix

package bus_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/xbus-dev/xbus/bus"
	"github.com/xbus-dev/xbus/netbus"
	"github.com/xbus-dev/xbus/shmbus"
)

// frozenPeerEnv makes the test binary a peer process (runFrozenPeer).
const frozenPeerEnv = "XBUS_TEST_FROZEN_PEER"

// peerSubsEnv makes the peer process subscribe that many times to
// "ticks.>", through windows of 1 (or peerWindowEnv's), SlowBlock (or
// peerPolicyEnv's, a bus.SlowPolicy as a number), and never read.
const (
	peerSubsEnv   = "XBUS_TEST_PEER_SUBS"
	peerWindowEnv = "XBUS_TEST_PEER_WINDOW"
	peerPolicyEnv = "XBUS_TEST_PEER_POLICY"
	// peerReadEnv makes the peer process subscribe to "ticks.>" once more,
	// through a window of 1, SlowBlock (or peerPolicyEnv's), and read: it
	// tells each message it reads to the actor "got" of the node
	// publishing.
	peerReadEnv = "XBUS_TEST_PEER_READ"
	// peerBigEnv makes the peer process subscribe to "big.>" once more,
	// through a window of the number it gives, SlowBlock (or
	// peerPolicyEnv's), and never read.
	peerBigEnv = "XBUS_TEST_PEER_BIG"
)

func init() {
	if os.Getenv(frozenPeerEnv) != "" {
		os.Exit(runFrozenPeer())
	}
}

// runFrozenPeer is a node listening on TCP (and on shared memory at the
// path frozenPeerEnv names, unless it is "1") with a "sink" actor; it prints
// "ADDR <address>" and serves until its stdin closes. Its links never time
// out, so that a stopped process keeps them up.
func runFrozenPeer() int {
	tr := netbus.New(netbus.Config{Listen: []string{"tcp://127.0.0.1:0"}, HeartbeatInterval: time.Minute, IdleTimeout: time.Hour})
	opts := []bus.Option{bus.WithName("frozen"), bus.WithTransport(tr), bus.WithLogger(quiet)}
	if path := os.Getenv(frozenPeerEnv); path != "1" {
		opts = append(opts, bus.WithTransport(shmbus.New(shmbus.Config{Listen: path})))
	}
	b, err := bus.New(opts...)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	b.Register("sink", bus.ActorFunc(func(c *bus.Context, msg any) error {
		if c.IsAsk() {
			return c.Reply(msg)
		}
		return nil
	}))
	n, _ := strconv.Atoi(os.Getenv(peerSubsEnv))
	window, policy := 1, 0
	if w := os.Getenv(peerWindowEnv); w != "" {
		window, _ = strconv.Atoi(w)
	}
	if p := os.Getenv(peerPolicyEnv); p != "" {
		policy, _ = strconv.Atoi(p)
	}
	for range n { // never read
		if _, err := b.Subscribe(context.Background(), "ticks.>", bus.WithWindow(window), bus.WithSlowPolicy(bus.SlowPolicy(policy))); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}
	if big, _ := strconv.Atoi(os.Getenv(peerBigEnv)); big > 0 {
		if _, err := b.Subscribe(context.Background(), "big.>", bus.WithWindow(big), bus.WithSlowPolicy(bus.SlowPolicy(policy))); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}
	if os.Getenv(peerReadEnv) != "" {
		sub, err := b.Subscribe(context.Background(), "ticks.>", bus.WithWindow(1), bus.WithSlowPolicy(bus.SlowPolicy(policy)))
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		go func() {
			for m := range sub.Messages() {
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				if err := b.WaitFor(ctx, "got"); err == nil {
					b.Tell("got", m.Msg)
				}
				cancel()
			}
		}()
	}
	fmt.Printf("ADDR %s\n", tr.Addrs()[0])
	io.Copy(io.Discard, os.Stdin)
	return 0
}

// TestFrozenPeerStallsNobody links to a peer process, stops it with
// SIGSTOP and fills the link: a Tell to it fails with ErrDeadline within
// the send timeout, an Ask with ErrDeadline at its deadline, and
// Register, Subscribe and stopping an actor, which tell every peer of the
// change, return without waiting on the frozen one; over TCP and, on
// Linux, shared memory (whose link may instead be closed as the peer's
// heartbeat stops: ErrPeerGone is a bounded answer too). Unix only: other
// systems cannot stop a process with a signal.
func TestFrozenPeerStallsNobody(t *testing.T) {
	for _, scheme := range frozenSchemes() {
		t.Run(scheme, func(t *testing.T) { testFrozenPeer(t, scheme) })
	}
}

func testFrozenPeer(t *testing.T, scheme string) {
	cmd, tr := startFrozenPeer(t, scheme)
	fill := []any{make([]byte, 1<<20), make([]byte, 1<<10), ""} // over shm the first is sent in fragments, and aborted when its send times out
	b, err := bus.New(bus.WithName("here"), bus.WithLogger(quiet), bus.WithSendTimeout(200*time.Millisecond), bus.WithTransport(tr))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill() // first: a link to a stopped process would wait out its flush
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		b.Close(ctx)
	})
	victim, err := b.Register("victim", bus.ActorFunc(func(*bus.Context, any) error { return nil }))
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, b, "sink")
	if err := cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}

	// Fill the link to the brim, with ever smaller tells: the peer reads
	// nothing more. Every Tell is bounded.
	bounded := func(err error) bool {
		return errors.Is(err, bus.ErrDeadline) || (scheme == "shm" && (errors.Is(err, bus.ErrPeerGone) || errors.Is(err, bus.ErrNoRoute)))
	}
	for _, msg := range fill {
		err = nil
		for i := 0; err == nil; i++ {
			if i == 100_000 {
				t.Fatal("a frozen peer took 100,000 tells")
			}
			err = b.Tell("sink", msg)
		}
		if !bounded(err) {
			t.Fatalf("tell to a frozen peer: %v, want ErrDeadline", err)
		}
		t.Logf("tells of %T ended with %v", msg, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	_, err = b.Ask(ctx, "sink", "x")
	cancel()
	if !bounded(err) {
		t.Fatalf("ask to a frozen peer: %v, want ErrDeadline", err)
	}

	done := make(chan string, 3)
	go func() {
		b.Register("newcomer", bus.ActorFunc(func(*bus.Context, any) error { return nil }))
		done <- "Register"
	}()
	go func() {
		b.Subscribe(context.Background(), "news.>")
		done <- "Subscribe"
	}()
	go func() {
		b.Stop(victim)
		done <- "Stop"
	}()
	// Each takes microseconds; the bound only keeps a failure from hanging.
	bound := time.After(5 * time.Second)
	for range 3 {
		select {
		case <-done:
		case <-bound:
			t.Fatal("Register, Subscribe or Stop waited on the frozen peer")
		}
	}
}

// startFrozenPeer starts a peer process (runFrozenPeer) that serves over
// scheme ("tcp" or "shm"), with env added to its environment, and returns it
// with a transport that links to it.
func startFrozenPeer(t *testing.T, scheme string, env ...string) (*exec.Cmd, bus.Transport) {
	path := "1"
	if scheme == "shm" {
		path = filepath.Join(t.TempDir(), "shm.sock")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(append(os.Environ(), frozenPeerEnv+"="+path), env...)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGCONT)
		stdin.Close()
		cmd.Process.Kill()
		cmd.Wait()
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	addr, ok := strings.CutPrefix(strings.TrimSpace(line), "ADDR ")
	if err != nil || !ok {
		t.Fatalf("peer said %q, %v", line, err)
	}
	if scheme == "shm" {
		return cmd, shmbus.New(shmbus.Config{Dial: []string{path}})
	}
	return cmd, netbus.New(netbus.Config{Peers: []string{addr}, HeartbeatInterval: time.Minute, IdleTimeout: time.Hour})
}

// TestFrozenPeerManyAskers: 128 goroutines ask a peer process stopped with
// SIGSTOP, with bodies that fill the link, while others ask a second,
// healthy peer: every ask to the healthy peer is answered meanwhile, and
// every ask to the stopped one ends when its ctx does (or, waiting for room
// on the full link, with ErrDeadline at the bus's send timeout; over shared
// memory, with ErrPeerGone once the peer's heartbeat stops), none left
// waiting; over TCP and, on Linux, shared memory.
func TestFrozenPeerManyAskers(t *testing.T) {
	for _, scheme := range frozenSchemes() {
		t.Run(scheme, func(t *testing.T) { frozenPeerManyAskers(t, scheme) })
	}
}

func frozenPeerManyAskers(t *testing.T, scheme string) {
	cmd, tr := startFrozenPeer(t, scheme)
	ot := netbus.New(netbus.Config{Listen: []string{"tcp://127.0.0.1:0"}})
	other, err := bus.New(bus.WithName("other"), bus.WithLogger(quiet), bus.WithTransport(ot))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { other.Close(context.Background()) })
	if _, err := other.Register("echo", bus.ActorFunc(echo)); err != nil {
		t.Fatal(err)
	}
	b, err := bus.New(bus.WithName("here"), bus.WithLogger(quiet), bus.WithTransport(tr),
		bus.WithTransport(netbus.New(netbus.Config{Peers: ot.Addrs()})))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill() // first: a link to a stopped process would wait out its flush
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		b.Close(ctx)
	})
	waitFor(t, b, "sink")
	waitFor(t, b, "echo")
	if err := cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}

	const askers = 128
	frozen, stop := context.WithCancel(context.Background())
	ended := make(chan error, askers)
	for i := range askers {
		go func() {
			_, err := b.Ask(frozen, "sink", make([]byte, 16<<10+i))
			ended <- err
		}()
	}
	// The healthy peer answers while the askers wait; the bound only keeps
	// a failure from hanging.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for i := range 200 {
		if r, err := b.Ask(ctx, "echo", i); err != nil || r != i {
			t.Fatalf("ask %d to the healthy peer beside %d askers of a stopped one: %v, %v", i, askers, r, err)
		}
	}
	if n := len(ended); n == askers {
		t.Fatalf("all %d asks to the stopped peer ended before the healthy peer's: the test tested nothing", n)
	}
	stop()
	bound := time.After(time.Minute)
	for range askers {
		select {
		case err := <-ended:
			// ErrDeadline: the bus bounds a send waiting for room on a
			// full link by its send timeout. A reply: the peer answered
			// before the signal stopped it.
			if err != nil && !errors.Is(err, bus.ErrCanceled) && !errors.Is(err, bus.ErrDeadline) && !(scheme == "shm" && errors.Is(err, bus.ErrPeerGone)) {
				t.Fatalf("an ask to the stopped peer ended with %v, want ErrCanceled", err)
			}
		case <-bound:
			t.Fatal("an ask to the stopped peer outlived its ctx")
		}
	}
}

// frozenSchemes are the links a frozen peer is tested over: TCP and, on
// Linux, shared memory.
func frozenSchemes() []string {
	if runtime.GOOS == "linux" {
		return []string{"tcp", "shm"}
	}
	return []string{"tcp"}
}
