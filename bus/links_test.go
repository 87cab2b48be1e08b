package bus_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/xbus-dev/xbus/bus"
	"github.com/xbus-dev/xbus/netbus"
	"github.com/xbus-dev/xbus/shmbus"
)

// realLink is one way of joining two buses of this process over a real
// transport: shared memory, a Unix socket, or TCP.
type realLink struct {
	name string
	pair func(t *testing.T, server, client []bus.Option) (*bus.Bus, *bus.Bus)
}

func realLinks() []realLink {
	links := []realLink{
		{"unix", func(t *testing.T, so, co []bus.Option) (*bus.Bus, *bus.Bus) {
			sock := "unix://" + filepath.Join(t.TempDir(), "s.sock")
			return joinBuses(t, netbus.New(netbus.Config{Listen: []string{sock}}), func(bus.Transport) bus.Transport {
				return netbus.New(netbus.Config{Peers: []string{sock}})
			}, so, co)
		}},
		{"tcp", func(t *testing.T, so, co []bus.Option) (*bus.Bus, *bus.Bus) {
			return joinBuses(t, netbus.New(netbus.Config{Listen: []string{"tcp://127.0.0.1:0"}}), func(s bus.Transport) bus.Transport {
				return netbus.New(netbus.Config{Peers: s.(*netbus.Transport).Addrs()})
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
	for _, l := range realLinks() {
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
