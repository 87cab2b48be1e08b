package supervisor

import (
	"context"
	"encoding/json"
	"errors"
	"runtime"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/xbus-dev/xbus/bus"
)

// hanger blocks in Receive on "hang" until release is closed.
type hanger struct {
	j       *journal
	release chan struct{}
}

func (h *hanger) Receive(c *bus.Context, msg any) error {
	switch msg {
	case "hang":
		h.j.add("hang:blocked")
		<-h.release
	}
	switch msg.(type) {
	case bus.Stopping:
		h.j.add("hang:stopping")
	}
	return nil
}

// TestShutdownDrainsInReverseOrder closes the bus with work queued: every
// child handles its queued messages, and they stop in reverse start order.
func TestShutdownDrainsInReverseOrder(t *testing.T) {
	before := runtime.NumGoroutine()
	b := newBus(t, nil)
	j := &journal{}
	if _, _, err := Start(context.Background(), b, Spec{Name: "tree", Children: threeProbes(j)}); err != nil {
		t.Fatal(err)
	}
	const n = 500
	for i := range n {
		for _, name := range []string{"a", "b", "c"} {
			if err := b.Tell(name, i); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := b.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	var stops []string
	for _, e := range j.all() {
		if strings.HasSuffix(e, ":stopping") {
			stops = append(stops, e)
		}
	}
	if strings.Join(stops, ",") != "c:stopping,b:stopping,a:stopping" {
		t.Fatalf("stop order %v, want c, b, a", stops)
	}
	if d := b.DeadLetters(); d != 0 {
		t.Fatalf("%d dead letters: queued work was dropped instead of drained", d)
	}
	checkGoroutines(t, before)
}

// TestShutdownAbandonsStuckChild: a child stuck in Receive is abandoned
// after its shutdown timeout with a logged error, and the rest of the tree
// still stops.
func TestShutdownAbandonsStuckChild(t *testing.T) {
	logs := &syncBuffer{}
	b := newBus(t, logs)
	j := &journal{}
	release := make(chan struct{})
	defer close(release)
	if _, _, err := Start(context.Background(), b, Spec{Name: "tree", Children: []ChildSpec{
		{Name: "a", New: newProbe("a", j)},
		{Name: "stuck", New: func() bus.Actor { return &hanger{j: j, release: release} }, Shutdown: 20 * time.Millisecond},
	}}); err != nil {
		t.Fatal(err)
	}
	_ = b.Tell("stuck", "hang")
	eventually(t, "stuck blocked", func() bool { return j.count("hang:blocked") == 1 })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := b.Close(ctx); err != nil {
		t.Fatalf("close: %v", err)
	}
	if j.count("a:stopping") != 1 {
		t.Fatalf("journal %v: a must have stopped after stuck was abandoned", j.all())
	}
	out := logs.String()
	for _, want := range []string{"did not drain within its shutdown timeout", "abandoned"} {
		if !strings.Contains(out, want) {
			t.Errorf("logs lack %q:\n%s", want, out)
		}
	}
}

// TestBackoffDelaysRestart runs a supervisor in a synctest bubble: the
// restart waits out its backoff on the fake clock, and the message queued
// meanwhile reaches the restarted instance. (No Ask inside the bubble: the
// bus recycles ask state across goroutines, which a bubble forbids.)
func TestBackoffDelaysRestart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, err := bus.New(bus.WithLogger(discardLogger()))
		if err != nil {
			t.Fatal(err)
		}
		j := &journal{}
		sup, err := New(Spec{Name: "slow", Intensity: Intensity{MaxRestarts: -1},
			Backoff:  Backoff{Initial: time.Second, Jitter: -1, ResetAfter: time.Hour},
			Children: []ChildSpec{{Name: "p", New: newProbe("p", j), Restart: Transient}}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := b.Register("slow", sup); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		_ = b.Tell("p", "panic")
		_ = b.Tell("p", "mark")
		synctest.Wait()
		if c, _ := sup.Status().Child("p"); c.State != Restarting {
			t.Fatalf("child state %v during its backoff, want restarting", c.State)
		}
		time.Sleep(time.Second - time.Nanosecond)
		synctest.Wait()
		if n := j.count("p:started"); n != 1 {
			t.Fatalf("restarted before its backoff was over (%d starts)", n)
		}
		time.Sleep(time.Nanosecond)
		synctest.Wait()
		if n := j.count("p:started"); n != 2 {
			t.Fatalf("%d starts once the backoff is over, want 2", n)
		}
		if got := j.all(); got[len(got)-1] != "p:mark" || got[len(got)-2] != "p:started" {
			t.Fatalf("journal %v: the message queued during the backoff must reach the restarted instance", got)
		}
		// The second failure in a row waits twice as long.
		_ = b.Tell("p", "panic")
		time.Sleep(2*time.Second - time.Nanosecond)
		synctest.Wait()
		if n := j.count("p:started"); n != 2 {
			t.Fatalf("second restart came before 2s")
		}
		time.Sleep(time.Nanosecond)
		synctest.Wait()
		if n := j.count("p:started"); n != 3 {
			t.Fatalf("%d starts after the second backoff, want 3", n)
		}
		// Stop the child first: the drain at Close asks it to stop, and the
		// bus's pooled ask state must not cross the bubble's edge.
		_ = b.Tell("p", "stop")
		synctest.Wait()
		if err := b.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
	})
}

// TestLogs checks the structured fields of the failure and restart logs.
func TestLogs(t *testing.T) {
	logs := &syncBuffer{}
	b := newBus(t, logs)
	j := &journal{}
	if _, _, err := Start(context.Background(), b, Spec{Name: "logged", Backoff: Backoff{Disabled: true},
		Children: []ChildSpec{{Name: "p", New: newProbe("p", j)}}}); err != nil {
		t.Fatal(err)
	}
	_ = b.Tell("p", "panic")
	eventually(t, "restart", func() bool { return j.count("p:started") == 2 })
	eventually(t, "logs", func() bool { return strings.Contains(logs.String(), `"child restarted"`) })
	found := map[string]map[string]any{}
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		found[rec["msg"].(string)] = rec
	}
	failed := found["child failed"]
	if failed == nil || failed["supervisor"] != "logged" || failed["child"] != "p" || failed["directive"] != "restart" ||
		!strings.Contains(failed["reason"].(string), "p told to panic") || failed["level"] != "WARN" {
		t.Errorf("child failed record: %v", failed)
	}
	restarted := found["child restarted"]
	if restarted == nil || restarted["child"] != "p" || restarted["restarts"] != float64(1) {
		t.Errorf("child restarted record: %v", restarted)
	}
}

// TestRun: Run returns the tree's escalation error when the tree gives up,
// and nil at once when its ctx has ended, having closed the bus. (Its
// signal: TestRunSignal.)
func TestRun(t *testing.T) {
	t.Run("gives up", func(t *testing.T) {
		b := newBus(t, nil)
		j := &journal{}
		errc := make(chan error, 1)
		go func() {
			errc <- Run(context.Background(), b, Spec{Name: "daemon", Intensity: Intensity{Period: time.Hour},
				Children: []ChildSpec{{Name: "p", New: newProbe("p", j)}}})
		}()
		eventually(t, "tree started", func() bool { return j.count("p:started") == 1 })
		_ = b.Tell("p", "panic")
		err := <-errc
		var ee *EscalationError
		if !errors.As(err, &ee) || !errors.Is(err, ErrIntensity) {
			t.Fatalf("Run returned %v, want an *EscalationError with ErrIntensity", err)
		}
	})
	t.Run("ctx", func(t *testing.T) {
		b := newBus(t, nil)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if err := Run(ctx, b, Spec{Name: "daemon"}); err != nil {
			t.Fatalf("Run with an ended ctx: %v", err)
		}
		if !b.Closed() {
			t.Fatal("bus not closed")
		}
	})
}
