package benchkit

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"time"
)

// PeerArg is the first argument of a benchmark's child process: StartPeer
// runs the running executable again as `exe bench-peer name value`. The
// xbus command serves it as a hidden subcommand, a test binary from its
// TestMain (ServePeer); nothing else turns a process into a peer.
const PeerArg = "bench-peer"

// childEnv marks a peer's environment, so that it cannot start peers.
const childEnv = "XBUS_BENCH_PEER_CHILD"

// ServePeer runs the peer that args (os.Args[1:]) ask for, if they are as
// StartPeer passes them and name one of peers, and returns its exit code
// and true; otherwise it returns 0 and false at once.
func ServePeer(args []string, peers map[string]func(value string) int) (code int, ok bool) {
	if len(args) != 3 || args[0] != PeerArg {
		return 0, false
	}
	peer, ok := peers[args[1]]
	if !ok {
		fmt.Fprintf(os.Stderr, "%s: no benchmark peer %q\n", PeerArg, args[1])
		return 2, true
	}
	return peer(args[2]), true
}

// Peer is a benchmark's child process, started by StartPeer.
type Peer struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	// Ready is the first line the child printed, without its newline:
	// "ready", then whatever the peer tells its parent.
	Ready string
}

// StartPeer starts the running executable again as the peer called name,
// with value as its argument and files as its descriptors 3, 4, ..., and
// returns once the child printed its first line, which must begin with
// "ready". The child's stderr is this process's.
//
// A peer may not start peers: a test binary whose TestMain does not serve
// its peers would otherwise run its tests again in every child, each
// starting more children.
func StartPeer(name, value string, files ...*os.File) (*Peer, error) {
	if os.Getenv(childEnv) != "" {
		return nil, fmt.Errorf("benchmark peer %q: this process is itself a peer (does its TestMain call ServePeer?)", name)
	}
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(exe, PeerArg, name, value)
	cmd.Env = append(os.Environ(), childEnv+"=1")
	cmd.ExtraFiles = files
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &Peer{cmd: cmd, stdin: stdin}
	line, err := bufio.NewReader(out).ReadString('\n')
	p.Ready = strings.TrimSuffix(line, "\n")
	if f := strings.Fields(p.Ready); len(f) == 0 || f[0] != "ready" {
		p.Stop()
		return nil, fmt.Errorf("benchmark peer did not start: %q, %v", line, err)
	}
	return p, nil
}

// Process is the child's process.
func (p *Peer) Process() *os.Process { return p.cmd.Process }

// Stop closes the child's stdin, which tells a peer to exit, and waits for
// it; it kills a child that has not exited within 5 s.
func (p *Peer) Stop() {
	p.stdin.Close()
	done := make(chan struct{})
	go func() { p.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		p.cmd.Process.Kill()
		<-done
	}
}
