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

// RunPeer makes this process a benchmark's child when the environment
// variable env is set: it runs peer with its value and exits with the code
// peer returns. Call it from an init function.
//
// peer runs on a goroutine of its own, not on init's: during init the Go
// runtime locks that goroutine to the main thread, and a locked goroutine
// that yields or waits hands its processor to another thread and sleeps,
// so every hand-off in the peer would cost two thread switches more (it
// made an eventfd ping-pong through the netpoller 3–4× slower).
func RunPeer(env string, peer func(arg string) int) {
	v := os.Getenv(env)
	if v == "" {
		return
	}
	rc := make(chan int)
	go func() { rc <- peer(v) }()
	os.Exit(<-rc)
}

// Peer is a benchmark's child process, started by StartPeer.
type Peer struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	// Ready is the first line the child printed, without its newline:
	// "ready", then whatever the peer tells its parent.
	Ready string
}

// StartPeer starts the running executable again with env=value added to
// its environment (so that its RunPeer runs the peer) and files as its
// descriptors 3, 4, ..., and returns once the child printed its first
// line, which must begin with "ready". The child's stderr is this
// process's.
func StartPeer(env, value string, files ...*os.File) (*Peer, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), env+"="+value)
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

// Pid is the child's process id.
func (p *Peer) Pid() int { return p.cmd.Process.Pid }

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
