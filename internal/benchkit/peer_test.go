package benchkit

import (
	"fmt"
	"io"
	"os"
	"strings"
	"syscall"
	"testing"
)

const testPeerEnv = "XBUS_BENCHKIT_TEST_PEER"

func init() {
	RunPeer(testPeerEnv, func(arg string) int {
		if arg == "mute" {
			fmt.Println("not ready")
			return 1
		}
		fmt.Println("ready", arg)
		io.Copy(io.Discard, os.Stdin) // until Stop closes it
		return 0
	})
}

// TestStartPeer starts this test binary as a peer, reads what it said, and
// checks that Stop ends it.
func TestStartPeer(t *testing.T) {
	p, err := StartPeer(testPeerEnv, "a b")
	if err != nil {
		t.Fatal(err)
	}
	if p.Ready != "ready a b" {
		t.Errorf("Ready = %q, want %q", p.Ready, "ready a b")
	}
	pid := p.Pid()
	if err := syscall.Kill(pid, 0); err != nil {
		t.Errorf("peer %d not running before Stop: %v", pid, err)
	}
	p.Stop()
	if err := syscall.Kill(pid, 0); err != syscall.ESRCH {
		t.Errorf("peer %d still there after Stop: %v", pid, err)
	}
}

// TestStartPeerNotReady checks that a child whose first line is not
// "ready" is an error, and is not left running.
func TestStartPeerNotReady(t *testing.T) {
	p, err := StartPeer(testPeerEnv, "mute")
	if err == nil || !strings.Contains(err.Error(), "not ready") {
		t.Fatalf("StartPeer = %v, %v; want an error quoting %q", p, err, "not ready")
	}
}
