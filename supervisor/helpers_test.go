package supervisor

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/xbus-dev/xbus/bus"
)

// newBus returns a bus whose logs go to logs (nil: discarded) and closes it
// when the test ends.
func newBus(t *testing.T, logs io.Writer) *bus.Bus {
	t.Helper()
	if logs == nil {
		logs = io.Discard
	}
	b, err := bus.New(bus.WithLogger(slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = b.Close(ctx)
	})
	return b
}

// syncBuffer is a bytes.Buffer safe for the logger and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// journal records what actors did, across instances and goroutines.
type journal struct {
	mu     sync.Mutex
	events []string
}

func (j *journal) add(e string) {
	j.mu.Lock()
	j.events = append(j.events, e)
	j.mu.Unlock()
}

func (j *journal) all() []string {
	j.mu.Lock()
	defer j.mu.Unlock()
	return append([]string(nil), j.events...)
}

func (j *journal) count(e string) int {
	n := 0
	for _, x := range j.all() {
		if x == e {
			n++
		}
	}
	return n
}

// probe is a child that journals its lifecycle as "name:started" and
// "name:stopping", answers "ping", panics on "panic", returns an error on
// an error value, and stops itself on "stop".
type probe struct {
	name string
	j    *journal
	n    int // messages handled by this instance
}

func newProbe(name string, j *journal) func() bus.Actor {
	return func() bus.Actor { return &probe{name: name, j: j} }
}

func (p *probe) Receive(c *bus.Context, msg any) error {
	switch m := msg.(type) {
	case bus.Started:
		p.j.add(p.name + ":started")
		return nil
	case bus.Stopping:
		p.j.add(p.name + ":stopping")
		return nil
	case bus.Restarting:
		p.j.add(p.name + ":restarting")
		return nil
	case string:
		switch m {
		case "panic":
			panic(p.name + " told to panic")
		case "stop":
			c.Stop()
		case "mark":
			p.j.add(p.name + ":mark")
		case "count":
			return c.Reply(p.n)
		}
	case error:
		return m
	}
	p.n++
	if c.IsAsk() {
		return c.Reply("pong")
	}
	return nil
}

// eventually polls cond until it holds; the test's own deadline bounds it.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("never happened: %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// checkGoroutines fails the test if goroutines started during it are still
// running once it has closed everything.
func checkGoroutines(t *testing.T, before int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			buf = buf[:runtime.Stack(buf, true)]
			t.Fatalf("%d goroutines left, %d before:\n%s", runtime.NumGoroutine(), before, buf)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func ask(t *testing.T, b *bus.Bus, to, msg any) any {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, err := b.Ask(ctx, to, msg)
	if err != nil {
		t.Fatalf("ask %v %v: %v", to, msg, err)
	}
	return r
}

func status(t *testing.T, b *bus.Bus, sup any) Status {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := Query(ctx, b, sup)
	if err != nil {
		t.Fatalf("query %v: %v", sup, err)
	}
	return st
}

func contains(s []string, e string) bool {
	for _, x := range s {
		if x == e {
			return true
		}
	}
	return false
}

var _ = strings.Contains

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
