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
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/xbus-dev/xbus/bus"
	"github.com/xbus-dev/xbus/bus/bustest"
	"github.com/xbus-dev/xbus/shmbus"
)

const freezeEnv = "SHMBUS_TEST_FREEZE"

// runFrozenSender is a child process that dials path (freezeEnv is
// "path,mode") with actors "slow" (prints "asked" for an ask and never
// answers) and "drop", tells "sink" "hello" and t0..t19, prints "sent",
// and on a line from stdin freezes as mode says, then prints "frozen" and
// waits to be killed:
//
//   - between: a message in fragments, after its first three fragments;
//   - in-fragment: the same, with the fourth claimed and half written;
//   - in-record: a whole record claimed and half written.
func runFrozenSender(arg string) {
	path, mode, _ := strings.Cut(arg, ",")
	tr := shmbus.New(shmbus.Config{Dial: []string{path}, RingSize: shmbus.MinRingSize})
	frozen := func() {
		fmt.Println("frozen")
		time.Sleep(time.Hour)
	}
	switch mode {
	case "between":
		shmbus.FreezeFragments(tr, 3, false, frozen)
	case "in-fragment":
		shmbus.FreezeFragments(tr, 3, true, frozen)
	}
	b, err := bus.New(bus.WithName("frozen"), bus.WithTransport(tr))
	if err != nil {
		fmt.Println("error:", err)
		return
	}
	b.Register("slow", bus.ActorFunc(func(c *bus.Context, msg any) error {
		if c.IsAsk() {
			fmt.Println("asked")
			time.Sleep(time.Hour)
		}
		return nil
	}))
	b.Register("drop", bus.ActorFunc(func(*bus.Context, any) error { return nil }))
	for b.Tell("sink", "hello") != nil {
		time.Sleep(time.Millisecond)
	}
	for i := range 20 {
		if err := b.Tell("sink", fmt.Sprintf("t%d", i)); err != nil {
			fmt.Println("error:", err)
			return
		}
	}
	fmt.Println("sent")
	bufio.NewReader(os.Stdin).ReadString('\n')
	if mode == "in-record" {
		shmbus.FreezeInRecord(tr, frozen)
	}
	b.Tell("sink", bytes.Repeat([]byte{'B'}, 6*shmbus.MinRingSize))
	fmt.Println("not frozen")
}

// TestKilledInTheMiddle kills (SIGKILL) a peer process stopped at the
// exact point where it has a message in fragments half sent, a fragment
// half written, or a whole record half written in the ring of a real
// shared-memory link, after it has taken an ask of ours and while tells
// of ours wait, unread, in the ring to it (it is stopped first with
// SIGSTOP, so that its reader reads nothing more). Our reader does not
// hang and delivers nothing torn: the sink has exactly the tells the peer
// sent before, in order; the link does not go down as corrupt; the ask in
// flight fails with bus.ErrPeerGone; each unread tell is a dead letter
// wrapping bus.ErrPeerGone, none lost.
func TestKilledInTheMiddle(t *testing.T) {
	for _, mode := range []string{"between", "in-fragment", "in-record"} {
		t.Run(mode, func(t *testing.T) { killedInTheMiddle(t, mode) })
	}
}

func killedInTheMiddle(t *testing.T, mode string) {
	path := filepath.Join(t.TempDir(), "s.sock")
	warns := &warnings{}
	b := bustest.NewBus(t, shmbus.New(shmbus.Config{Listen: path, RingSize: shmbus.MinRingSize}),
		bus.WithName("survivor"), bus.WithLogger(slog.New(warns)))
	var mu sync.Mutex
	var got []any
	b.Register("sink", bus.ActorFunc(func(c *bus.Context, msg any) error {
		switch msg.(type) {
		case string, []byte:
			mu.Lock()
			got = append(got, msg)
			mu.Unlock()
		}
		return nil
	}))
	dead, err := b.Subscribe(context.Background(), bus.DeadLetterSubject, bus.WithWindow(1024))
	if err != nil {
		t.Fatal(err)
	}

	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), freezeEnv+"="+path+","+mode)
	stdin, _ := cmd.StdinPipe()
	out, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	guard := time.AfterFunc(60*time.Second, func() { cmd.Process.Kill() }) // a child that never gets there fails the test rather than hang it
	defer guard.Stop()
	lines := bufio.NewScanner(out)
	expect := func(want string) {
		t.Helper()
		if !lines.Scan() || lines.Text() != want {
			t.Fatalf("child: %q (%v), want %q", lines.Text(), lines.Err(), want)
		}
	}
	expect("sent")

	asked := make(chan error, 1)
	go func() {
		for {
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			_, err := b.Ask(ctx, "slow", "x")
			cancel()
			if errors.Is(err, bus.ErrNoRoute) {
				time.Sleep(10 * time.Millisecond)
				continue
			}
			asked <- err
			return
		}
	}()
	expect("asked")
	io.WriteString(stdin, "go\n")
	expect("frozen")
	if err := cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	waitStopped(t, cmd.Process.Pid)
	const unread = 10
	for i := range unread {
		if err := b.Tell("drop", fmt.Sprintf("u%d", i)); err != nil {
			t.Fatalf("tell %d to the stopped peer: %v", i, err)
		}
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()

	select {
	case err := <-asked:
		if !errors.Is(err, bus.ErrPeerGone) {
			t.Fatalf("ask in flight to the killed peer: %v, want ErrPeerGone", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("the ask in flight to the killed peer still waits after 60 s")
	}
	lost := 0
	for lost < unread {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		m, err := dead.Next(ctx)
		cancel()
		if err != nil {
			t.Fatalf("%d of the %d unread tells are dead letters: %v", lost, unread, err)
		}
		if d := m.Msg.(bus.DeadLetter); d.To.Name == "drop" {
			if !errors.Is(d.Reason, bus.ErrPeerGone) {
				t.Fatalf("dead letter of an unread tell: %v, want ErrPeerGone", d.Reason)
			}
			lost++
		}
	}

	want := []any{"hello"}
	for i := range 20 {
		want = append(want, fmt.Sprintf("t%d", i))
	}
	for range 1000 { // the sink may still be taking them
		mu.Lock()
		n := len(got)
		mu.Unlock()
		if n >= len(want) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond) // anything torn would come now
	mu.Lock()
	defer mu.Unlock()
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("the sink got %d messages %.200v, want exactly the %d sent before the freeze, in order", len(got), got, len(want))
	}
	for range 1000 { // the link's end is logged at Warn, with its reason
		warns.mu.Lock()
		n := len(warns.errs)
		warns.mu.Unlock()
		if n > 0 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	warns.mu.Lock()
	logged := append([]error(nil), warns.errs...)
	warns.mu.Unlock()
	if len(logged) == 0 || warns.find(shmbus.ErrCorrupt) != nil {
		t.Fatalf("the link's end logged %v; want it logged, and not as corrupt", logged)
	}
	if n := b.DeadLetterCount(bus.ErrBadEnvelope); n != 0 {
		t.Fatalf("%d dead letters for bad envelopes", n)
	}
}
