package benchkit

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"syscall"
	"testing"
)

const testPeer = "benchkit-test"

// TestMain serves the peer this test binary is started as by StartPeer.
func TestMain(m *testing.M) {
	if code, ok := ServePeer(os.Args[1:], map[string]func(string) int{testPeer: func(arg string) int {
		if arg == "nested" { // a peer that tries to start a peer
			_, err := StartPeer(testPeer, "a")
			fmt.Println("ready", err != nil)
			io.Copy(io.Discard, os.Stdin)
			return 0
		}
		if arg == "mute" {
			fmt.Println("not ready")
			return 1
		}
		fmt.Println("ready", arg)
		io.Copy(io.Discard, os.Stdin) // until Stop closes it
		return 0
	}}); ok {
		os.Exit(code)
	}
	os.Exit(m.Run())
}

// TestStartPeer starts this test binary as a peer, reads what it said, and
// checks that Stop ends it.
func TestStartPeer(t *testing.T) {
	p, err := StartPeer(testPeer, "a b")
	if err != nil {
		t.Fatal(err)
	}
	if p.Ready != "ready a b" {
		t.Errorf("Ready = %q, want %q", p.Ready, "ready a b")
	}
	proc := p.Process()
	if err := proc.Signal(syscall.Signal(0)); err != nil {
		t.Errorf("peer %d not running before Stop: %v", proc.Pid, err)
	}
	p.Stop()
	if err := proc.Signal(syscall.Signal(0)); !errors.Is(err, os.ErrProcessDone) {
		t.Errorf("peer %d still there after Stop: %v", proc.Pid, err)
	}
}

// TestStartPeerNotReady checks that a child whose first line is not
// "ready" is an error, and is not left running.
func TestStartPeerNotReady(t *testing.T) {
	p, err := StartPeer(testPeer, "mute")
	if err == nil || !strings.Contains(err.Error(), "not ready") {
		t.Fatalf("StartPeer = %v, %v; want an error quoting %q", p, err, "not ready")
	}
}

// TestPeerCannotStartPeers checks that a peer's StartPeer fails instead of
// starting another generation of children.
func TestPeerCannotStartPeers(t *testing.T) {
	p, err := StartPeer(testPeer, "nested")
	if err != nil {
		t.Fatal(err)
	}
	defer p.Stop()
	if p.Ready != "ready true" {
		t.Errorf("the peer's own StartPeer: %q, want it to fail (ready true)", p.Ready)
	}
}
