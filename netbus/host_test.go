package netbus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/xbus-dev/xbus/bus"
)

// testHost is a minimal bus.Host for transport tests: asks with pending
// replies that fail on LinkDown, an "echo" actor, a "hold" actor that never
// answers, a "fail" actor that answers with bus.ErrMailboxFull, and a record
// of every tell.
type testHost struct {
	id    bus.NodeID
	types *bus.Types
	log   *slog.Logger

	mu      sync.Mutex
	links   []bus.Link
	ups     int
	downs   []error
	pending map[uint64]chan askResult
	tells   map[string][]int // sender name → payloads, in arrival order
	asked   int              // asks received

	corr    atomic.Uint64
	upCh    chan bus.Link
	downCh  chan error
	deliver atomic.Int64
	undeliv atomic.Int64 // envelopes handed back with Undelivered
}

type askResult struct {
	msg any
	err error
}

type Payload struct {
	Seq  int
	Data []byte
}

func newTestHost(t testing.TB) *testHost {
	h := &testHost{id: bus.NewNodeID(), types: bus.NewTypes(), pending: map[uint64]chan askResult{},
		tells: map[string][]int{}, upCh: make(chan bus.Link, 64), downCh: make(chan error, 64)}
	h.log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	if err := h.types.Register("netbus.Payload", Payload{}); err != nil {
		t.Fatal(err)
	}
	return h
}

func (h *testHost) NodeID() bus.NodeID   { return h.id }
func (h *testHost) Types() *bus.Types    { return h.types }
func (h *testHost) Logger() *slog.Logger { return h.log }

// Connect is a no-op: the transport tests dial by hand.
func (h *testHost) Connect(string) error { return nil }

func (h *testHost) LinkUp(l bus.Link) {
	h.mu.Lock()
	h.links = append(h.links, l)
	h.ups++
	h.mu.Unlock()
	h.upCh <- l
}

func (h *testHost) LinkDown(l bus.Link, err error) {
	h.mu.Lock()
	for i, x := range h.links {
		if x == l {
			h.links = append(h.links[:i], h.links[i+1:]...)
			break
		}
	}
	h.downs = append(h.downs, err)
	pending := h.pending
	h.pending = map[uint64]chan askResult{}
	h.mu.Unlock()
	for _, ch := range pending {
		ch <- askResult{err: fmt.Errorf("%w: %w", bus.ErrPeerGone, err)}
	}
	h.downCh <- err
}

func (h *testHost) Undelivered(bus.Link, *bus.Envelope, error) { h.undeliv.Add(1) }

func (h *testHost) Deliver(l bus.Link, env *bus.Envelope) {
	h.deliver.Add(1)
	if err := h.types.DecodeBody(l.Codec(), env); err != nil {
		if env.Kind == bus.KindAsk {
			_ = l.Send(context.Background(), encoded(l, &bus.Envelope{Kind: bus.KindError, Corr: env.Corr, Msg: err}))
		}
		return
	}
	env.Body = nil
	switch env.Kind {
	case bus.KindReply, bus.KindError:
		h.mu.Lock()
		ch := h.pending[env.Corr]
		delete(h.pending, env.Corr)
		h.mu.Unlock()
		if ch == nil {
			return
		}
		if env.Kind == bus.KindError {
			ch <- askResult{err: env.Msg.(error)}
		} else {
			ch <- askResult{msg: env.Msg}
		}
	case bus.KindTell:
		p, ok := env.Msg.(Payload)
		if !ok {
			return
		}
		h.mu.Lock()
		h.tells[env.From.Name] = append(h.tells[env.From.Name], p.Seq)
		h.mu.Unlock()
	case bus.KindAsk:
		h.mu.Lock()
		h.asked++
		h.mu.Unlock()
		reply := &bus.Envelope{Kind: bus.KindReply, From: env.To, To: env.From, Corr: env.Corr, Msg: env.Msg}
		switch env.To.Name {
		case "hold":
			return
		case "fail":
			reply.Kind, reply.Msg = bus.KindError, fmt.Errorf("mailbox of %q: %w", env.To.Name, bus.ErrMailboxFull)
		}
		if err := l.Send(context.Background(), encoded(l, reply)); err != nil && !errors.Is(err, bus.ErrPeerGone) {
			panic(err)
		}
	}
}

// encTypes names the types the tests send; netbus.Payload's Go name is the
// name the hosts register it under.
var encTypes = bus.NewTypes()

// encoded encodes env's body with l's codec, as the bus does before it
// calls Link.Send, and returns env.
func encoded(l bus.Link, env *bus.Envelope) *bus.Envelope {
	body, err := encTypes.EncodeBody(l.Codec(), env, nil)
	if err != nil {
		panic(err)
	}
	env.Body = body
	return env
}

// link returns the first link up, waiting for one.
func (h *testHost) link(t testing.TB) bus.Link {
	t.Helper()
	select {
	case l := <-h.upCh:
		return l
	case <-time.After(30 * time.Second):
		t.Fatal("no link came up")
		return nil
	}
}

func (h *testHost) ask(ctx context.Context, l bus.Link, to string, msg any) (any, error) {
	corr := h.corr.Add(1)
	ch := make(chan askResult, 1)
	h.mu.Lock()
	h.pending[corr] = ch
	h.mu.Unlock()
	env := &bus.Envelope{Kind: bus.KindAsk, From: bus.Ref{Node: h.id, Name: "asker", ID: 1}, To: bus.Ref{Name: to}, Corr: corr, Msg: msg}
	if dl, ok := ctx.Deadline(); ok {
		env.Timeout = max(time.Until(dl), 1)
	}
	if err := l.Send(ctx, encoded(l, env)); err != nil {
		h.mu.Lock()
		delete(h.pending, corr)
		h.mu.Unlock()
		return nil, err
	}
	select {
	case r := <-ch:
		return r.msg, r.err
	case <-ctx.Done():
		h.mu.Lock()
		delete(h.pending, corr)
		h.mu.Unlock()
		return nil, fmt.Errorf("%w: %w", bus.ErrDeadline, ctx.Err())
	}
}

func (h *testHost) counts() (ups, downs int, delivered int64, asked int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.ups, len(h.downs), h.deliver.Load(), h.asked
}

// checkGoroutines fails t if more goroutines run than at the start, once
// the stragglers had a moment to finish.
func checkGoroutines(t testing.TB, before int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		n := runtime.NumGoroutine()
		if n <= before {
			return
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			buf = buf[:runtime.Stack(buf, true)]
			var ours []string
			for _, g := range strings.Split(string(buf), "\n\n") {
				if strings.Contains(g, "netbus") {
					ours = append(ours, g)
				}
			}
			t.Fatalf("%d goroutines, %d before; netbus ones:\n%s", n, before, strings.Join(ours, "\n\n"))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func startTransport(t testing.TB, h bus.Host, cfg Config) *Transport {
	t.Helper()
	tr := New(cfg)
	if err := tr.Start(h); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.Close(context.Background()) })
	return tr
}

// wantLinkDown waits for h's link to go down and fails unless it went down
// with want.
func (h *testHost) wantLinkDown(t *testing.T, want error) {
	t.Helper()
	select {
	case err := <-h.downCh:
		if !errors.Is(err, want) {
			t.Fatalf("link down with %v, want %v", err, want)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the link stayed up")
	}
}
