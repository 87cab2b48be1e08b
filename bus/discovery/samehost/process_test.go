//go:build linux

package samehost_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/xbus-dev/xbus/bus"
	"github.com/xbus-dev/xbus/bus/discovery/samehost"
	"github.com/xbus-dev/xbus/mailbox"
)

const (
	helperEnv  = "SAMEHOST_TEST_HELPER"
	socketsEnv = "SAMEHOST_TEST_SOCKETS" // set: listen on a Unix socket, not shared memory
	delayEnv   = "SAMEHOST_TEST_DELAY"   // how long "svc" takes to answer
)

// interval is the scan interval of every node in these tests.
const interval = 50 * time.Millisecond

func TestMain(m *testing.M) {
	if dir := os.Getenv(helperEnv); dir != "" {
		runHelper(dir)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// runHelper is a child process: a node started with the defaults of
// samehost in dir, serving "svc" (which answers with its pid). It prints
// "ready <node id>" and runs until its stdin closes, then closes its bus.
func runHelper(dir string) {
	delay, _ := time.ParseDuration(os.Getenv(delayEnv))
	b, err := newNode(dir, os.Getenv(socketsEnv) != "", slog.New(slog.DiscardHandler))
	if err != nil {
		fmt.Println("error:", err)
		return
	}
	pid := strconv.Itoa(os.Getpid())
	b.Register("svc", bus.ActorFunc(func(c *bus.Context, msg any) error {
		if c.IsAsk() {
			time.Sleep(delay)
			return c.Reply(pid)
		}
		return nil
	}), bus.WithMailbox(mailbox.Options{Capacity: 1 << 12}))
	// Ready once the entry names "svc": Changed rewrites it after Register.
	for {
		data, _ := os.ReadFile(filepath.Join(dir, b.NodeID().String()+".node"))
		if strings.Contains(string(data), `"svc"`) {
			break
		}
		time.Sleep(time.Millisecond)
	}
	fmt.Println("ready", b.NodeID())
	io.Copy(io.Discard, os.Stdin)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	b.Close(ctx)
}

func newNode(dir string, sockets bool, log *slog.Logger) (*bus.Bus, error) {
	return bus.New(bus.WithLogger(log), samehost.Enable(samehost.Config{Dir: dir, Interval: interval, Sockets: sockets}))
}

type child struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	id    string
	pid   string
}

func spawn(t *testing.T, dir string, env ...string) *child {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(append(os.Environ(), helperEnv+"="+dir), env...)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	line, err := bufio.NewReader(out).ReadString('\n')
	id, ok := strings.CutPrefix(strings.TrimSpace(line), "ready ")
	if err != nil || !ok {
		t.Fatalf("child said %q, %v", line, err)
	}
	return &child{cmd: cmd, stdin: stdin, id: id, pid: strconv.Itoa(cmd.Process.Pid)}
}

// logs keeps the messages and errors a bus logs at Warn and Info.
type logs struct {
	mu  sync.Mutex
	got []string
}

func (l *logs) Enabled(_ context.Context, lv slog.Level) bool { return lv >= slog.LevelInfo }
func (l *logs) WithAttrs([]slog.Attr) slog.Handler            { return l }
func (l *logs) WithGroup(string) slog.Handler                 { return l }
func (l *logs) Handle(_ context.Context, r slog.Record) error {
	s := r.Level.String() + " " + r.Message
	r.Attrs(func(a slog.Attr) bool {
		s += " " + a.Key + "=" + a.Value.String()
		return true
	})
	l.mu.Lock()
	l.got = append(l.got, s)
	l.mu.Unlock()
	return nil
}

func (l *logs) has(sub ...string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.ContainsFunc(l.got, func(s string) bool {
		for _, x := range sub {
			if !strings.Contains(s, x) {
				return false
			}
		}
		return true
	})
}

// waitUntil polls cond until it holds; the test's own timeout bounds it.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for start := time.Now(); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Since(start) > 60*time.Second {
			t.Fatalf("gave up waiting: %s", what)
		}
	}
}

func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}

// Processes started with samehost's defaults in one directory find each
// other and link over shared memory; a SIGKILLed one's entry is removed by
// the others and it leaves their tables; one that closes removes its own.
func TestProcessesFindEachOther(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "xbus")
	a, b := spawn(t, dir), spawn(t, dir)
	me, err := newNode(dir, false, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer me.Close(context.Background())

	// Both children serve "svc" and are reached over shm.
	answered := map[string]bool{}
	waitUntil(t, "both children answer", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if r, err := me.Ask(ctx, "svc", "x"); err == nil {
			answered[r.(string)] = true
		}
		return answered[a.pid] && answered[b.pid]
	})
	for _, l := range me.Links() {
		if l.Scheme != "shm" {
			t.Errorf("link %+v is not shared memory", l)
		}
	}
	peers := func() map[string]bool {
		m := map[string]bool{}
		for _, l := range me.Links() {
			if l.State == bus.LinkReady {
				m[l.Peer.String()] = true
			}
		}
		return m
	}
	if p := peers(); !p[a.id] || !p[b.id] {
		t.Fatalf("linked to %v, want %s and %s", p, a.id, b.id)
	}

	// SIGKILL a: its entry and lock are removed, it leaves "svc".
	a.cmd.Process.Signal(syscall.SIGKILL)
	a.cmd.Wait()
	waitUntil(t, "the killed node's files removed", func() bool {
		return !exists(filepath.Join(dir, a.id+".node")) && !exists(filepath.Join(dir, a.id+".lock"))
	})
	waitUntil(t, "the killed node leaves svc", func() bool {
		return !slices.ContainsFunc(me.Instances("svc"), func(r bus.Ref) bool { return r.Node.String() == a.id })
	})
	for range 20 {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		r, err := me.Ask(ctx, "svc", "x")
		cancel()
		if err != nil || r != b.pid {
			t.Fatalf("ask after the kill = %v, %v; want %s", r, err, b.pid)
		}
	}
	if socks, _ := filepath.Glob(filepath.Join(dir, "*.sock")); len(socks) != 2 {
		t.Errorf("sockets left: %v, want b's and mine", socks)
	}

	// b closes: it removes its own files.
	b.stdin.Close()
	b.cmd.Wait()
	if exists(filepath.Join(dir, b.id+".node")) || exists(filepath.Join(dir, b.id+".lock")) {
		t.Fatalf("a closed node left its files")
	}
	waitUntil(t, "the closed node leaves svc", func() bool { return len(me.Instances("svc")) == 0 })
}

// A node that starts later is found by those already running, and the one
// that starts finds them at once: its first scan runs before New returns.
func TestLateNodeFound(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "xbus")
	a := spawn(t, dir)
	me, err := newNode(dir, false, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer me.Close(context.Background())
	// The name is known before the link is up: the Ask waits for it.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if r, err := me.Ask(ctx, "svc", "x"); err != nil || r != a.pid {
		t.Fatalf("first ask = %v, %v", r, err)
	}
}
