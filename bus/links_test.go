package bus_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/xbus-dev/xbus/bus"
	"github.com/xbus-dev/xbus/mailbox"
	"github.com/xbus-dev/xbus/netbus"
	"github.com/xbus-dev/xbus/shmbus"
)

// realLink is one way of joining two buses of this process over a real
// transport: shared memory, a Unix socket, or TCP.
type realLink struct {
	name string
	pair func(t *testing.T, server, client []bus.Option) (*bus.Bus, *bus.Bus)
}

// realLinks lists the real transports; netbus links use nc (with Listen and
// Peers set) on both sides.
func realLinks(nc netbus.Config) []realLink {
	listen := func(addr string) netbus.Config { c := nc; c.Listen = []string{addr}; return c }
	dial := func(addrs []string) netbus.Config { c := nc; c.Peers = addrs; return c }
	links := []realLink{
		{"unix", func(t *testing.T, so, co []bus.Option) (*bus.Bus, *bus.Bus) {
			sock := "unix://" + filepath.Join(t.TempDir(), "s.sock")
			return joinBuses(t, netbus.New(listen(sock)), func(bus.Transport) bus.Transport {
				return netbus.New(dial([]string{sock}))
			}, so, co)
		}},
		{"tcp", func(t *testing.T, so, co []bus.Option) (*bus.Bus, *bus.Bus) {
			return joinBuses(t, netbus.New(listen("tcp://127.0.0.1:0")), func(s bus.Transport) bus.Transport {
				return netbus.New(dial(s.(*netbus.Transport).Addrs()))
			}, so, co)
		}},
	}
	if runtime.GOOS == "linux" {
		links = append([]realLink{{"shm", func(t *testing.T, so, co []bus.Option) (*bus.Bus, *bus.Bus) {
			path := filepath.Join(t.TempDir(), "shm.sock")
			return joinBuses(t, shmbus.New(shmbus.Config{Listen: path}), func(bus.Transport) bus.Transport {
				return shmbus.New(shmbus.Config{Dial: []string{path}})
			}, so, co)
		}}}, links...)
	}
	return links
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// joinBuses starts a server bus on st, then a client bus on the transport
// client makes from st; both close when the test ends.
func joinBuses(t *testing.T, st bus.Transport, client func(bus.Transport) bus.Transport, so, co []bus.Option) (*bus.Bus, *bus.Bus) {
	t.Helper()
	server, err := bus.New(append([]bus.Option{bus.WithName("server"), bus.WithLogger(quiet), bus.WithTransport(st)}, so...)...)
	if err != nil {
		t.Fatal(err)
	}
	cli, err := bus.New(append([]bus.Option{bus.WithName("client"), bus.WithLogger(quiet), bus.WithTransport(client(st))}, co...)...)
	if err != nil {
		server.Close(context.Background())
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		cli.Close(ctx)
		server.Close(ctx)
	})
	return server, cli
}

// eachLink runs f over every real transport.
func eachLink(t *testing.T, f func(t *testing.T, l realLink)) {
	eachLinkWith(t, netbus.Config{}, f)
}

// eachLinkWith is eachLink with netbus configured by nc.
func eachLinkWith(t *testing.T, nc netbus.Config, f func(t *testing.T, l realLink)) {
	for _, l := range realLinks(nc) {
		t.Run(l.name, func(t *testing.T) { f(t, l) })
	}
}

// watchLink makes an actor on client watch ref on the server and returns a
// channel that receives its Terminated: the link went down if it fires.
func watchLink(t *testing.T, client *bus.Bus, ref bus.Ref) <-chan bus.Terminated {
	t.Helper()
	terminated := make(chan bus.Terminated, 1)
	if _, err := client.Spawn(bus.ActorFunc(func(c *bus.Context, msg any) error {
		switch m := msg.(type) {
		case bus.Started:
			c.Watch(ref)
		case bus.Terminated:
			terminated <- m
		}
		return nil
	})); err != nil {
		t.Fatal(err)
	}
	return terminated
}

type (
	// secret is registered on the client only.
	secret struct{ Word string }
	// shape is registered on both sides under one name, as two different
	// types: its body never decodes on the server.
	shapeA struct{ Name string }
	shapeB int
)

// eventuallyCount waits until f reports at least want.
func eventuallyCount(t *testing.T, what string, want uint64, f func() uint64) {
	t.Helper()
	eventually(t, what, func() error {
		if got := f(); got < want {
			return errors.New("not yet")
		}
		return nil
	})
}

// TestUndecodableBodies: a body the receiver cannot decode (a type it does
// not know, bytes that do not decode into the type it knows by that name)
// refuses its ask at once with a coded error that names the type and says
// how to register it, counts a dead letter with its reason on the
// receiving node, and leaves the link up; the same on every transport.
func TestUndecodableBodies(t *testing.T) {
	eachLink(t, func(t *testing.T, rl realLink) {
		st, ct := bus.NewTypes(), bus.NewTypes()
		if err := bus.RegisterType[secret](ct, "test.secret"); err != nil {
			t.Fatal(err)
		}
		if err := bus.RegisterType[shapeA](ct, "test.shape"); err != nil {
			t.Fatal(err)
		}
		if err := bus.RegisterType[shapeB](st, "test.shape"); err != nil {
			t.Fatal(err)
		}
		server, client := rl.pair(t, []bus.Option{bus.WithTypes(st)}, []bus.Option{bus.WithTypes(ct)})
		echo, err := server.Register("echo", bus.ActorFunc(func(c *bus.Context, msg any) error {
			if c.IsAsk() {
				return c.Reply(msg)
			}
			return nil
		}))
		if err != nil {
			t.Fatal(err)
		}
		waitFor(t, client, "echo")
		down := watchLink(t, client, echo)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()

		_, err = client.Ask(ctx, "echo", secret{"x"})
		if !errors.Is(err, bus.ErrUnknownType) || !strings.Contains(err.Error(), "test.secret") || !strings.Contains(err.Error(), "RegisterType") {
			t.Fatalf("ask of an unknown type: %v, want ErrUnknownType naming test.secret and how to register it", err)
		}
		_, err = client.Ask(ctx, "echo", shapeA{"square"})
		if !errors.Is(err, bus.ErrBadEnvelope) || !strings.Contains(err.Error(), "test.shape") {
			t.Fatalf("ask with a body that does not decode: %v, want ErrBadEnvelope naming test.shape", err)
		}
		for range 3 {
			if err := client.Tell("echo", secret{"y"}); err != nil {
				t.Fatal(err)
			}
			if err := client.Tell("echo", shapeA{"circle"}); err != nil {
				t.Fatal(err)
			}
		}
		// Two asks and three tells of each kind.
		eventuallyCount(t, "unknown types dead-lettered", 4, func() uint64 { return server.DeadLetterCount(bus.ErrUnknownType) })
		eventuallyCount(t, "bad bodies dead-lettered", 4, func() uint64 { return server.DeadLetterCount(bus.ErrBadEnvelope) })
		if r, err := client.Ask(ctx, echo, "still there"); err != nil || r != "still there" {
			t.Fatalf("ask after the bad bodies: %v, %v", r, err)
		}
		select {
		case m := <-down:
			t.Fatalf("the link went down: %v", m.Reason)
		default:
		}
	})
}

// TestNoHeadOfLineBlocking: on node B one actor's mailbox is full (its
// Receive is stuck) and one subscriber never reads; asks from A to another
// actor on B keep succeeding, an ask to the stuck actor is refused at once
// with ErrMailboxFull, and what B cannot take is counted, on every
// transport.
func TestNoHeadOfLineBlocking(t *testing.T) {
	eachLink(t, func(t *testing.T, rl realLink) {
		server, client := rl.pair(t, nil, nil)
		release, inside := make(chan struct{}), make(chan struct{}, 1)
		defer close(release)
		if _, err := server.Register("stuck", bus.ActorFunc(func(c *bus.Context, msg any) error {
			if _, ok := msg.(int); ok {
				select {
				case inside <- struct{}{}:
				default:
				}
				<-release
			}
			return nil
		}), bus.WithMailbox(mailbox.Options{Capacity: 4})); err != nil {
			t.Fatal(err)
		}
		if _, err := server.Register("echo", bus.ActorFunc(echo)); err != nil {
			t.Fatal(err)
		}
		sub, err := server.Subscribe(context.Background(), "news.>", bus.WithWindow(1)) // SlowBlock, never read
		if err != nil {
			t.Fatal(err)
		}
		waitFor(t, client, "stuck")
		waitFor(t, client, "echo")
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := client.Tell("stuck", -1); err != nil {
			t.Fatal(err)
		}
		<-inside            // the actor is stuck in Receive
		for i := range 20 { // four queued, the rest refused
			if err := client.Tell("stuck", i); err != nil {
				t.Fatal(err)
			}
		}
		eventuallyCount(t, "tells the full mailbox refused", 16, func() uint64 { return server.DeadLetterCount(bus.ErrMailboxFull) })
		if _, err := client.Ask(ctx, "stuck", 99); !errors.Is(err, bus.ErrMailboxFull) {
			t.Fatalf("ask to the full mailbox: %v, want ErrMailboxFull at once", err)
		}
		// The subscription reaches the client with the link; once its
		// buffer and credit are full, the client's publisher waits (up to
		// its ctx), not the server's link reader, and nothing is dropped.
		eventually(t, "a publisher waiting for the subscriber that never reads", func() error {
			pctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
			defer cancel()
			if err := client.PublishContext(pctx, "news.today", "x"); !errors.Is(err, bus.ErrDeadline) {
				return fmt.Errorf("publish: %v", err)
			}
			return nil
		})
		if sub.Dropped() != 0 || server.DeadLetterCount(bus.ErrSlowConsumer) != 0 {
			t.Error("a SlowBlock subscriber lost publishes from a peer")
		}
		for i := range 50 {
			if r, err := client.Ask(ctx, "echo", i); err != nil || r != i {
				t.Fatalf("ask %d to an idle actor behind the stuck one: %v, %v", i, r, err)
			}
		}
	})
}

// TestLedgerWithStalledReceiver: every tell sent to an actor that stalls is
// processed, refused to its sender, or a dead letter with its reason, to
// the message, also when the sender's link is torn down right after the
// last send and the stall outlasts the links' idle timeout; on every
// transport.
func TestLedgerWithStalledReceiver(t *testing.T) {
	nc := netbus.Config{HeartbeatInterval: 250 * time.Millisecond, IdleTimeout: time.Second}
	eachLinkWith(t, nc, func(t *testing.T, rl realLink) {
		server, client := rl.pair(t, nil, []bus.Option{bus.WithSendTimeout(time.Second)})
		release := make(chan struct{})
		var processed atomic.Int64
		if _, err := server.Register("stalled", bus.ActorFunc(func(c *bus.Context, msg any) error {
			if _, ok := msg.([]byte); ok {
				<-release
				processed.Add(1)
			}
			return nil
		}), bus.WithMailbox(mailbox.Options{Capacity: 16})); err != nil {
			t.Fatal(err)
		}
		waitFor(t, client, "stalled")
		const n = 3000
		var refused int64
		payload := make([]byte, 1024)
		for range n {
			if err := client.Tell("stalled", payload); err != nil {
				refused++
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := client.Close(ctx); err != nil { // the sender's links go down
			t.Fatal(err)
		}
		time.Sleep(2 * time.Second) // the stall outlasts the idle timeout
		close(release)
		eventually(t, "the ledger balances", func() error {
			got := processed.Load() + refused + int64(server.DeadLetters()) + int64(client.DeadLetters())
			if got != n {
				return fmt.Errorf("processed %d + refused %d + dead letters %d here, %d there = %d, want %d",
					processed.Load(), refused, server.DeadLetters(), client.DeadLetters(), got, n)
			}
			return nil
		})
	})
}
