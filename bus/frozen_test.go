package bus_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/xbus-dev/xbus/bus"
	"github.com/xbus-dev/xbus/netbus"
)

// frozenPeerEnv makes the test binary a peer process (runFrozenPeer).
const frozenPeerEnv = "XBUS_TEST_FROZEN_PEER"

func init() {
	if os.Getenv(frozenPeerEnv) != "" {
		os.Exit(runFrozenPeer())
	}
}

// runFrozenPeer is a node listening on TCP with a "sink" actor; it prints
// "ADDR <address>" and serves until its stdin closes. Its links never time
// out, so that a stopped process keeps them up.
func runFrozenPeer() int {
	tr := netbus.New(netbus.Config{Listen: []string{"tcp://127.0.0.1:0"}, HeartbeatInterval: time.Minute, IdleTimeout: time.Hour})
	b, err := bus.New(bus.WithName("frozen"), bus.WithTransport(tr), bus.WithLogger(quiet))
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
	fmt.Printf("ADDR %s\n", tr.Addrs()[0])
	io.Copy(io.Discard, os.Stdin)
	return 0
}

// TestFrozenPeerStallsNobody links to a peer process, stops it with
// SIGSTOP and fills the link: a Tell to it fails with ErrDeadline within
// the send timeout, an Ask with ErrDeadline at its deadline, and
// Register, Subscribe and stopping an actor, which tell every peer of the
// change, return without waiting on the frozen one.
func TestFrozenPeerStallsNobody(t *testing.T) {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), frozenPeerEnv+"=1")
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

	b, err := bus.New(bus.WithName("here"), bus.WithLogger(quiet), bus.WithSendTimeout(200*time.Millisecond),
		bus.WithTransport(netbus.New(netbus.Config{Peers: []string{addr}, HeartbeatInterval: time.Minute, IdleTimeout: time.Hour})))
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
	for _, msg := range []any{make([]byte, 1<<20), make([]byte, 1<<10), ""} {
		err = nil
		for i := 0; err == nil; i++ {
			if i == 10_000 {
				t.Fatal("a frozen peer took 10,000 tells")
			}
			err = b.Tell("sink", msg)
		}
		if !errors.Is(err, bus.ErrDeadline) {
			t.Fatalf("tell to a frozen peer: %v, want ErrDeadline", err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	_, err = b.Ask(ctx, "sink", "x")
	cancel()
	if !errors.Is(err, bus.ErrDeadline) {
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
