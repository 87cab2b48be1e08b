package natstest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/xbus-dev/xbus/bus"
	natsdisc "github.com/xbus-dev/xbus/bus/discovery/nats"
	"github.com/xbus-dev/xbus/netbus"
)

var (
	secret    = []byte("the cluster's shared secret, 32b")
	netSecret = []byte("the links' shared secret")
)

// Add asks for A+B; Sum is its answer. Typed requests use them.
type (
	Add struct{ A, B int }
	Sum struct{ N int }
)

func newTypes() *bus.Types {
	types := bus.NewTypes()
	if err := errors.Join(bus.RegisterType[Add](types, "natstest.Add"), bus.RegisterType[Sum](types, "natstest.Sum")); err != nil {
		panic(err)
	}
	return types
}

// fastConfig announces often and expires quickly, so tests are short.
func fastConfig(url string) natsdisc.Config {
	return natsdisc.Config{URL: url, Secret: secret, Heartbeat: 200 * time.Millisecond, TTL: 1500 * time.Millisecond}
}

// newNode starts a bus that listens on TCP and finds its peers through NATS.
func newNode(t testing.TB, name string, cfg natsdisc.Config, opts ...bus.Option) (*bus.Bus, *natsdisc.Source) {
	t.Helper()
	b, src, err := startNode(name, cfg, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closeBus(t, b) })
	return b, src
}

func startNode(name string, cfg natsdisc.Config, opts ...bus.Option) (*bus.Bus, *natsdisc.Source, error) {
	src, err := natsdisc.New(cfg)
	if err != nil {
		return nil, nil, err
	}
	tr := netbus.New(netbus.Config{Listen: []string{"tcp://127.0.0.1:0"}, Secret: netSecret})
	b, err := bus.New(append([]bus.Option{bus.WithName(name), bus.WithTransport(tr), bus.WithDiscovery(src),
		bus.WithTypes(newTypes()), bus.WithBackoff(20*time.Millisecond, 200*time.Millisecond)}, opts...)...)
	return b, src, err
}

func closeBus(t testing.TB, b *bus.Bus) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := b.Close(ctx); err != nil && !errors.Is(err, bus.ErrClosed) {
		t.Errorf("close %s: %v", b.Name(), err)
	}
}

// greeter answers a string with a greeting that names its node.
func greeter(c *bus.Context, msg any) error {
	if !c.IsAsk() {
		return nil // lifecycle messages
	}
	if s, ok := msg.(string); ok {
		return c.Reply("hello, " + s + " from " + c.Bus().Name())
	}
	return c.Reply(fmt.Sprintf("hello, %v from %s", msg, c.Bus().Name()))
}

func adder(c *bus.Context, msg any) error {
	if !c.IsAsk() {
		return nil
	}
	a, ok := msg.(Add)
	if !ok {
		return fmt.Errorf("add: want an Add, got %T", msg)
	}
	if a.A < 0 || a.B < 0 {
		return errors.New("add: negative operands")
	}
	return c.Reply(Sum{a.A + a.B})
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %s", within, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// forgot reports whether b neither hosts nor knows of name: an Ask to it
// fails at once with a plain ErrNoRoute, not after waiting for a node that
// discovery named to be linked.
func forgot(b *bus.Bus, name string) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err := b.Ask(ctx, name, "?")
	return errors.Is(err, bus.ErrNoRoute) && !strings.Contains(err.Error(), "discovery")
}

// linked reports whether b has a link up to node.
func linked(b *bus.Bus, node bus.NodeID) bool {
	for _, l := range b.Links() {
		if l.Peer == node && l.State == bus.LinkReady {
			return true
		}
	}
	return false
}

// keeps reports whether b keeps any of addrs linked, or dials them.
func keeps(b *bus.Bus, addrs []string) bool {
	for _, l := range b.Links() {
		for _, a := range addrs {
			if l.Addr == a {
				return true
			}
		}
	}
	return false
}

const helperEnv = "XBUS_NATS_HELPER_URL"

// startHelper runs a node in another process (this test binary again) that
// hosts "greeter" and prints its node's id and addresses when it is up.
func startHelper(t *testing.T, url, name string) (cmd *exec.Cmd, id string, addrs []string) {
	t.Helper()
	cmd = exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+url, "XBUS_NATS_HELPER_NAME="+name)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	line := make(chan string, 1)
	go func() {
		buf := make([]byte, 4096)
		n, _ := out.Read(buf)
		line <- string(buf[:n])
	}()
	select {
	case l := <-line:
		f := strings.Fields(l)
		if len(f) < 2 {
			t.Fatalf("helper said %q", l)
		}
		return cmd, f[0], f[1:]
	case <-time.After(30 * time.Second):
		t.Fatal("helper did not start")
	}
	return
}

func runHelper(ctx context.Context) error {
	b, _, err := startNode(os.Getenv("XBUS_NATS_HELPER_NAME"), fastConfig(os.Getenv(helperEnv)))
	if err != nil {
		return err
	}
	if _, err := b.Register("greeter", bus.ActorFunc(greeter)); err != nil {
		return err
	}
	fmt.Println(b.NodeID(), strings.Join(b.Self().Addrs, " "))
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	<-ctx.Done()
	return b.Close(context.Background())
}
