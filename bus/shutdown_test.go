package bus

import (
	"context"
	"errors"
	"net"
	"runtime"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

// TestCloseStopsInReverseStartOrder: Close stops top-level actors one at a
// time, the last started first, so an actor is never stopped while one
// started after it (which may depend on it) still runs.
func TestCloseStopsInReverseStartOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, err := New()
		if err != nil {
			t.Fatal(err)
		}
		firstStopping := make(chan struct{})
		var laterDone <-chan struct{}
		laterDoneAtFirstStop := make(chan bool, 1)
		_, err = b.Register("first", ActorFunc(func(c *Context, msg any) error {
			if _, ok := msg.(Stopping); ok {
				select {
				case <-laterDone:
					laterDoneAtFirstStop <- true
				default:
					laterDoneAtFirstStop <- false
				}
				close(firstStopping)
			}
			return nil
		}))
		if err != nil {
			t.Fatal(err)
		}
		later, err := b.Register("later", ActorFunc(func(c *Context, msg any) error {
			if _, ok := msg.(Stopping); ok {
				// Stopped together with "first", this would see it stop;
				// stopped first, it waits out the timer.
				select {
				case <-firstStopping:
				case <-time.After(time.Second):
				}
			}
			return nil
		}))
		if err != nil {
			t.Fatal(err)
		}
		laterDone = b.Done(later)
		if err := b.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		if !<-laterDoneAtFirstStop {
			t.Fatal(`"first" was stopped before "later", started after it, had stopped`)
		}
	})
}

// TestNewRefusesNilTransport: a nil transport is a clear error from New,
// not a panic.
func TestNewRefusesNilTransport(t *testing.T) {
	b, err := New(WithTransport(nil))
	if err == nil {
		b.Close(context.Background())
		t.Fatal("New accepted a nil transport")
	}
	if !strings.Contains(err.Error(), "nil transport") {
		t.Fatalf("error %q does not say the transport is nil", err)
	}
}

// listenTransport listens on a TCP port when started and stops listening
// when closed; failing makes Start fail after it has listened.
type listenTransport struct {
	fail bool
	ln   net.Listener
}

func (t *listenTransport) Schemes() []string { return nil }

func (t *listenTransport) Start(Host) error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	t.ln = ln
	if t.fail {
		return errors.New("second address unusable")
	}
	return nil
}

func (t *listenTransport) Close(context.Context) error {
	if t.ln == nil {
		return nil
	}
	return t.ln.Close()
}

// TestNewClosesStartedTransports: when a transport fails to start, New
// closes every transport it started, the failing one included: it may have
// got halfway.
func TestNewClosesStartedTransports(t *testing.T) {
	ok, bad := &listenTransport{}, &listenTransport{fail: true}
	if _, err := New(WithTransport(ok), WithTransport(bad)); err == nil {
		t.Fatal("New succeeded though a transport failed")
	}
	for name, tr := range map[string]*listenTransport{"started": ok, "failing": bad} {
		if tr.ln == nil {
			t.Fatalf("the %s transport was never started", name)
		}
		if c, err := net.Dial("tcp", tr.ln.Addr().String()); err == nil {
			c.Close()
			t.Errorf("the %s transport still listens after New failed", name)
		}
	}
}

// TestSubscriptionCloseReleasesBlockedPublisher: Close of a SlowBlock
// subscription whose window is full returns while a publisher waits for
// room, and releases that publisher.
func TestSubscriptionCloseReleasesBlockedPublisher(t *testing.T) {
	b := newBus(t)
	sub, err := b.Subscribe(context.Background(), "s", WithWindow(1), WithSlowPolicy(SlowBlock))
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Publish("s", 1); err != nil { // fills the window
		t.Fatal(err)
	}
	published := make(chan error, 1)
	go func() { published <- b.Publish("s", 2) }()
	waitBlockedIn(t, "(*Subscription).deliver")
	closed := make(chan struct{})
	go func() { sub.Close(); close(closed) }()
	for _, c := range []struct {
		what string
		ch   <-chan struct{}
	}{{"Close", closed}, {"the blocked Publish", waitErr(published)}} {
		select {
		case <-c.ch:
		case <-time.After(10 * time.Second):
			t.Fatalf("%s never returned: a subscription with a blocked publisher cannot close", c.what)
		}
	}
	if !errors.Is(sub.Err(), ErrClosed) {
		t.Fatalf("Err after Close: %v", sub.Err())
	}
}

func waitErr(c <-chan error) <-chan struct{} {
	done := make(chan struct{})
	go func() { <-c; close(done) }()
	return done
}

// waitBlockedIn waits until some goroutine is parked in a select or on a
// channel inside fn, as a goroutine dump shows it.
func waitBlockedIn(t *testing.T, fn string) {
	t.Helper()
	for range 10000 {
		buf := make([]byte, 1<<20)
		for g := range strings.SplitSeq(string(buf[:runtime.Stack(buf, true)]), "\n\n") {
			if strings.Contains(g, fn) && (strings.Contains(g, "[select") || strings.Contains(g, "[chan send")) {
				return
			}
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatalf("no goroutine blocked in %s", fn)
}
