//go:build linux

package shmbus_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/xbus-dev/xbus/bus"
	"github.com/xbus-dev/xbus/mailbox"
	"github.com/xbus-dev/xbus/netbus"
	"github.com/xbus-dev/xbus/shmbus"
)

const (
	helperEnv = "SHMBUS_TEST_HELPER"
	// helperProfileEnv names a file the helper writes its CPU profile to.
	helperProfileEnv = "SHMBUS_TEST_HELPER_CPUPROFILE"
	rawDialEnv       = "SHMBUS_TEST_RAWDIAL"
)

// rawDial connects to path and prints what the server sends first: "EOF"
// when it hangs up, "DATA" when it starts the handshake.
func rawDial(path string) {
	c, err := net.Dial("unix", path)
	if err != nil {
		fmt.Println("dial:", err)
		return
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, err := c.Read(make([]byte, 128))
	switch {
	case n > 0:
		fmt.Println("DATA")
	case errors.Is(err, io.EOF):
		fmt.Println("EOF")
	default:
		fmt.Println("read:", err)
	}
}

// warnings is a slog.Handler that keeps the errors of Warn records.
type warnings struct {
	mu   sync.Mutex
	errs []error
}

func (w *warnings) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelWarn }
func (w *warnings) WithAttrs([]slog.Attr) slog.Handler           { return w }
func (w *warnings) WithGroup(string) slog.Handler                { return w }
func (w *warnings) Handle(_ context.Context, r slog.Record) error {
	r.Attrs(func(a slog.Attr) bool {
		if e, ok := a.Value.Any().(error); ok {
			w.mu.Lock()
			w.errs = append(w.errs, e)
			w.mu.Unlock()
		}
		return true
	})
	return nil
}

func (w *warnings) find(target error) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, e := range w.errs {
		if errors.Is(e, target) {
			return e
		}
	}
	return nil
}

// TestRefuseOtherUser runs a peer as another uid and checks that the
// listener hangs up on it before any handshake byte and logs the refusal
// at Warn with an error wrapping bus.ErrRefused.
func TestRefuseOtherUser(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root to run a child as another user")
	}
	dir, err := os.MkdirTemp("", "shmbus-uid") // t.TempDir's parent is private to us
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	os.Chmod(dir, 0o777)
	bin := filepath.Join(dir, "peer.test")
	data, err := os.ReadFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, data, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "s.sock")
	// The child is this test binary: built with -cover it writes coverage
	// data when it exits, so it needs a directory it may write to.
	cover := filepath.Join(dir, "cover")
	if err := os.Mkdir(cover, 0o777); err != nil {
		t.Fatal(err)
	}
	os.Chmod(cover, 0o777)
	env := []string{rawDialEnv + "=" + path, "GOCOVERDIR=" + cover}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "GOCOVERDIR=") {
			env = append(env, kv)
		}
	}
	warns := &warnings{}
	b, err := bus.New(bus.WithName("uid"), bus.WithLogger(slog.New(warns)), bus.WithTransport(shmbus.New(shmbus.Config{Listen: path})))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close(context.Background())
	os.Chmod(path, 0o777)
	run := func(uid uint32) string {
		cmd := exec.Command(bin, "-test.run=^$")
		cmd.Env = env
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: uid}}
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil || stderr.Len() > 0 {
			t.Fatalf("peer as uid %d: %v\n%s%s", uid, err, out, stderr.String())
		}
		return strings.TrimSpace(string(out))
	}
	if got := run(65534); got != "EOF" {
		t.Fatalf("peer of another uid got %q, want the listener to hang up (EOF)", got)
	}
	if err := warns.find(bus.ErrRefused); err == nil {
		t.Fatalf("no Warn with an error wrapping bus.ErrRefused after refusing another uid; logged: %v", warns.errs)
	} else {
		t.Logf("logged: %v", err)
	}
	if got := run(0); got != "DATA" { // control: the same user is answered
		t.Fatalf("peer of the same uid got %q, want the handshake", got)
	}
}

func TestMain(m *testing.M) {
	if code, ok := shmbus.RingPeer(); ok {
		os.Exit(code)
	}
	if path := os.Getenv(rawDialEnv); path != "" {
		rawDial(path)
		os.Exit(0)
	}
	if path := os.Getenv(helperEnv); path != "" {
		runHelper(path)
		os.Exit(0)
	}
	if os.Getenv(burnEnv) != "" {
		burn()
	}
	if path := os.Getenv(senderEnv); path != "" {
		runSender(path)
		os.Exit(0)
	}
	if arg := os.Getenv(freezeEnv); arg != "" {
		runFrozenSender(arg)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// runHelper is the child process: a bus listening on path with actors
// "echo", "pub", "order" and "slow". It prints "ready" and runs until killed
// or until its stdin closes.
func runHelper(path string) {
	if f := os.Getenv(helperProfileEnv); f != "" { // a CPU profile of the child, for benchmarks
		if out, err := os.Create(f); err == nil {
			pprof.StartCPUProfile(out)
			defer pprof.StopCPUProfile()
		}
	}
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
	b.Register("echo-inline", bus.ActorFunc(func(c *bus.Context, msg any) error {
		if !c.IsAsk() {
			return nil
		}
		return c.Reply(msg)
	}), bus.WithInline())
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
	b.Register("cpu", bus.ActorFunc(func(c *bus.Context, msg any) error {
		if !c.IsAsk() {
			return nil
		}
		var ru syscall.Rusage
		syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
		return c.Reply(strconv.FormatInt(ru.Utime.Nano()+ru.Stime.Nano(), 10))
	}))
	if err := bus.RegisterType[benchTick](b.Types(), benchTickType); err != nil {
		fmt.Println("error:", err)
		return
	}
	// count counts the tells it takes (strings, byte slices, ticks) and
	// answers an ask with "taken dropped": a tell that found its mailbox
	// full is a dead letter, counted in countDrops. count-borrowed does
	// the same, borrowing its []byte bodies (bus.WithBorrowedBytes), and
	// count-inline borrowing them on the link's reader (bus.WithInline).
	var tells, countDrops atomic.Int64
	counter := bus.ActorFunc(func(c *bus.Context, msg any) error {
		if c.IsAsk() {
			return c.Reply(fmt.Sprintf("%d %d", tells.Load(), countDrops.Load()))
		}
		switch msg.(type) {
		case string, []byte, benchTick:
			tells.Add(1)
		}
		return nil
	})
	b.Register("count", counter, bus.WithMailbox(mailbox.Options{Capacity: 1 << 16}))
	b.Register("count-borrowed", counter, bus.WithMailbox(mailbox.Options{Capacity: 1 << 16}), bus.WithBorrowedBytes())
	b.Register("count-inline", counter, bus.WithMailbox(mailbox.Options{Capacity: 1 << 16}), bus.WithBorrowedBytes(), bus.WithInline())
	// A link's reader never waits on a full mailbox: a tell it cannot
	// queue is a dead letter. drops counts them per actor, so that the
	// order actors can report count + dropped = sent.
	var orderDrops, slowDrops, borrowedDrops atomic.Int64
	dead, _ := b.Subscribe(context.Background(), bus.DeadLetterSubject, bus.WithWindow(1<<16))
	go func() {
		for m := range dead.Messages() {
			if d, ok := m.Msg.(bus.DeadLetter); ok && d.Msg != "report" && d.Msg != "" { // not the asks for reports
				switch d.To.Name {
				case "count", "count-borrowed", "count-inline":
					countDrops.Add(1)
				case "order":
					orderDrops.Add(1)
				case "slow-order":
					slowDrops.Add(1)
				case "order-borrowed":
					borrowedDrops.Add(1)
				}
			}
		}
	}()
	next := map[string]int{}
	count, bad := 0, 0
	b.Register("order", bus.ActorFunc(func(c *bus.Context, msg any) error {
		s, ok := msg.(string)
		if !ok {
			return nil
		}
		if s == "report" {
			return c.Reply(fmt.Sprintf("count=%d bad=%d", count+int(orderDrops.Load()), bad))
		}
		id, seq, _ := strings.Cut(s, ":")
		n, _ := strconv.Atoi(seq)
		if n < next[id] {
			bad++
		}
		next[id] = n + 1
		count++
		return nil
	}), bus.WithMailbox(mailbox.Options{Capacity: 1 << 17}))
	// order-borrowed borrows its []byte bodies (bus.WithBorrowedBytes),
	// each "sender:seq|" and then bytes equal to seq%251, and checks that
	// each sender's come whole and in order; it clears each body it took,
	// as a borrower may.
	borrowedNext := map[string]int{}
	borrowedCount, borrowedBad := 0, 0
	b.Register("order-borrowed", bus.ActorFunc(func(c *bus.Context, msg any) error {
		if s, ok := msg.(string); ok && s == "report" {
			return c.Reply(fmt.Sprintf("count=%d bad=%d", borrowedCount+int(borrowedDrops.Load()), borrowedBad))
		}
		p, ok := msg.([]byte)
		if !ok {
			return nil
		}
		head, fill, _ := bytes.Cut(p, []byte("|"))
		id, seq, _ := strings.Cut(string(head), ":")
		n, _ := strconv.Atoi(seq)
		if n != borrowedNext[id] || len(fill) == 0 || bytes.Count(fill, []byte{byte(n % 251)}) != len(fill) {
			borrowedBad++
		}
		borrowedNext[id] = n + 1
		borrowedCount++
		clear(p)
		return nil
	}), bus.WithMailbox(mailbox.Options{Capacity: 1 << 17}), bus.WithBorrowedBytes())
	slowNext := map[string]int{}
	slowCount, slowBad := 0, 0
	b.Register("slow-order", bus.ActorFunc(func(c *bus.Context, msg any) error {
		s, ok := msg.(string)
		if !ok {
			return nil
		}
		if s == "report" {
			return c.Reply(fmt.Sprintf("count=%d bad=%d", slowCount+int(slowDrops.Load()), slowBad))
		}
		id, seq, _ := strings.Cut(s, ":")
		n, _ := strconv.Atoi(seq)
		if n < slowNext[id] {
			slowBad++
		}
		slowNext[id] = n + 1
		if slowCount++; slowCount%500 == 0 {
			time.Sleep(time.Millisecond) // slower than the senders
		}
		return nil
	}), bus.WithMailbox(mailbox.Options{Capacity: 64}))
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
	t.Cleanup(func() {
		stdin.Close()
		if os.Getenv(helperProfileEnv) != "" {
			time.AfterFunc(10*time.Second, func() { cmd.Process.Kill() })
		} else {
			cmd.Process.Kill()
		}
		cmd.Wait()
	})
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

// reportUntil asks name for its report until it is want (the far side's
// count of dead letters may lag its actor by a moment) or 10 s pass, and
// returns the last one. An ask refused by a full mailbox is asked again.
func reportUntil(t *testing.T, b *bus.Bus, name, want string) any {
	t.Helper()
	var r any
	for range 1000 {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		var err error
		r, err = b.Ask(ctx, name, "report")
		cancel()
		if err != nil && !errors.Is(err, bus.ErrNoRoute) && !errors.Is(err, bus.ErrMailboxFull) {
			t.Fatalf("ask %s: %v", name, err)
		}
		if r == want {
			return r
		}
		time.Sleep(10 * time.Millisecond)
	}
	return r
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
	const senders, each = 4, 250_000 // a million messages
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
	if r := reportUntil(t, b, "order", fmt.Sprintf("count=%d bad=0", senders*each)); r != fmt.Sprintf("count=%d bad=0", senders*each) {
		t.Fatalf("order: %v (count: processed + dead letters)", r)
	}

	// A receiver slower than the senders, with a small mailbox: every tell
	// is processed in order or a dead letter on the far side, and the
	// link's reader never waits for the actor.
	const slowEach = 5000
	for s := range senders {
		wg.Go(func() {
			for i := range slowEach {
				if err := b.Tell("slow-order", strconv.Itoa(s)+":"+strconv.Itoa(i)); err != nil {
					t.Errorf("tell: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
	if r := reportUntil(t, b, "slow-order", fmt.Sprintf("count=%d bad=0", senders*slowEach)); r != fmt.Sprintf("count=%d bad=0", senders*slowEach) {
		t.Fatalf("slow receiver: %v, want all %d processed in order or dead letters", r, senders*slowEach)
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

// TestFrozenPeer stops the peer process with SIGSTOP: an ask waiting on it
// and a Tell blocked on its full ring fail with ErrPeerGone, not by their
// deadlines and not never. Before that the link, idle for two timeouts,
// stays up (a parked reader still beats); after SIGCONT the peer
// lives on and can be linked again.
func TestFrozenPeer(t *testing.T) {
	const timeout = 2 * time.Second // long enough for a loaded machine
	cmd, path := startChild(t)
	tr := shmbus.New(shmbus.Config{Dial: []string{path}, PeerTimeout: timeout})
	b, err := bus.New(bus.WithName("parent"), bus.WithTransport(tr))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close(context.Background())
	askUntilRouted(t, b, "echo", "hello")
	time.Sleep(2 * timeout) // idle: both readers park
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	if r, err := b.Ask(ctx, "echo", "still there"); err != nil || r != "still there" {
		t.Fatalf("ask after an idle spell: %v, %v; want the link up", r, err)
	}
	cancel()

	if err := cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	cont := sync.OnceFunc(func() { cmd.Process.Signal(syscall.SIGCONT) })
	defer cont()
	waitStopped(t, cmd.Process.Pid)
	askErr, tellErr := make(chan error, 1), make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, err := b.Ask(ctx, "echo", "x")
		askErr <- err
	}()
	go func() {
		body := strings.Repeat("t", 200)
		for {
			if err := b.Tell("count", body); err != nil { // blocks once the ring is full
				tellErr <- err
				return
			}
		}
	}()
	guard := time.After(60 * time.Second) // against today's hang: no timing is asserted
	for range 2 {
		select {
		case err := <-askErr:
			if !errors.Is(err, bus.ErrPeerGone) {
				t.Fatalf("ask to a stopped peer: %v, want ErrPeerGone", err)
			}
			t.Logf("ask: %v", err)
		case err := <-tellErr:
			if !errors.Is(err, bus.ErrPeerGone) {
				t.Fatalf("tell to a stopped peer: %v, want ErrPeerGone", err)
			}
			t.Logf("tell: %v", err)
		case <-guard:
			t.Fatal("an ask or a tell to a stopped peer still waits after 60 s")
		}
	}

	cont()
	ctx, cancel = context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := tr.Dial(ctx, path); err != nil {
		t.Fatalf("dial the resumed peer: %v", err)
	}
	// The link the parent closed may still be on its way down (Close waits
	// a moment for a peer that was frozen): an ask it takes fails at once
	// with ErrPeerGone, and the next one goes to the new link.
	for i := 0; ; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		r, err := b.Ask(ctx, "echo", "again")
		cancel()
		if err == nil {
			if r != "again" {
				t.Fatalf("echo after SIGCONT replied %v", r)
			}
			break
		}
		if !errors.Is(err, bus.ErrNoRoute) && !errors.Is(err, bus.ErrPeerGone) || i == 500 {
			t.Fatalf("ask echo after SIGCONT: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := cmd.Process.Signal(syscall.Signal(0)); err != nil {
		t.Fatalf("the peer did not survive: %v", err)
	}
}

// waitStopped waits until every thread of process pid is stopped: a signal
// is delivered asynchronously, and a thread still running could answer.
func waitStopped(t *testing.T, pid int) {
	t.Helper()
	for range 1000 {
		tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/stat", pid))
		stopped := len(tasks) > 0
		for _, f := range tasks {
			b, err := os.ReadFile(f)
			// The state follows the command name in parentheses.
			if i := strings.LastIndexByte(string(b), ')'); err != nil || i < 0 || i+2 >= len(b) || b[i+2] != 'T' {
				stopped = false
			}
		}
		if stopped {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("process %d did not stop", pid)
}
