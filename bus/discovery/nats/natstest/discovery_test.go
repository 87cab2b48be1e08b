package natstest

import (
	"context"
	"net"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/xbus-dev/xbus/bus"
)

// TestNodesFindEachOther: two nodes given only a NATS server find each
// other, link over TCP and call a name; nothing links them by hand.
func TestNodesFindEachOther(t *testing.T) {
	srv := runServer(t)
	a, _ := newNode(t, "a", fastConfig(srv.ClientURL()))
	b, _ := newNode(t, "b", fastConfig(srv.ClientURL()))
	if _, err := b.Register("greeter", bus.ActorFunc(greeter)); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := a.WaitFor(ctx, "greeter"); err != nil {
		t.Fatal(err)
	}
	reply, err := a.Ask(ctx, "greeter", "a")
	if err != nil || reply != "hello, a from b" {
		t.Fatalf("ask = %v, %v", reply, err)
	}
	var tcp bool
	for _, l := range a.Links() {
		tcp = tcp || (l.Peer == b.NodeID() && l.Scheme == "tcp" && l.State == bus.LinkReady)
	}
	if !tcp {
		t.Fatalf("a's links: %+v; want one up over tcp to b", a.Links())
	}
	// A name registered later is announced too.
	if _, err := a.Register("echo", bus.ActorFunc(func(c *bus.Context, msg any) error { return c.Reply(msg) })); err != nil {
		t.Fatal(err)
	}
	if err := b.WaitFor(ctx, "echo"); err != nil {
		t.Fatal(err)
	}
	if reply, err := b.Ask(ctx, "echo", "x"); err != nil || reply != "x" {
		t.Fatalf("b asks a's echo: %v, %v", reply, err)
	}
}

// TestGoodbye: a node that closes says so, and the others drop it at once,
// long before its TTL.
func TestGoodbye(t *testing.T) {
	srv := runServer(t)
	slow := fastConfig(srv.ClientURL())
	slow.TTL = time.Hour
	a, _ := newNode(t, "a", slow)
	b, _ := newNode(t, "b", slow)
	if _, err := b.Register("greeter", bus.ActorFunc(greeter)); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := a.WaitFor(ctx, "greeter"); err != nil {
		t.Fatal(err)
	}
	bAddrs := b.Self().Addrs
	closeBus(t, b)
	eventually(t, 20*time.Second, "a forgets b's names after its goodbye", func() bool { return forgot(a, "greeter") })
	if keeps(a, bAddrs) {
		t.Fatalf("a still dials b after its goodbye: %+v", a.Links())
	}
}

// TestKilledNodeExpires: a node killed with SIGKILL says no goodbye; the
// others drop it once its TTL passes, its names with it, and use it again
// when it comes back.
func TestKilledNodeExpires(t *testing.T) {
	srv := runServer(t)
	a, _ := newNode(t, "a", fastConfig(srv.ClientURL()))
	cmd, _, addrs := startHelper(t, srv.ClientURL(), "helper")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := a.WaitFor(ctx, "greeter"); err != nil {
		t.Fatal(err)
	}
	if reply, err := a.Ask(ctx, "greeter", "a"); err != nil || reply != "hello, a from helper" {
		t.Fatalf("ask = %v, %v", reply, err)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	eventually(t, 30*time.Second, "a forgets the killed node's names", func() bool { return forgot(a, "greeter") })
	eventually(t, 30*time.Second, "a stops dialing the killed node", func() bool { return !keeps(a, addrs) })
	startHelper(t, srv.ClientURL(), "helper2")
	if err := a.WaitFor(ctx, "greeter"); err != nil {
		t.Fatal(err)
	}
	if reply, err := a.Ask(ctx, "greeter", "a"); err != nil || reply != "hello, a from helper2" {
		t.Fatalf("ask after restart = %v, %v", reply, err)
	}
}

// TestStrangerCannotHijack: a stranger on the NATS server, without the
// secret, announces a node of its own hosting a name the cluster serves and
// one it does not, forges and garbles announcements, and replays a real
// node's announcements after its goodbye. Every one is refused and counted;
// nothing of it reaches the bus: no link to the stranger, no name learned,
// no node brought back.
func TestStrangerCannotHijack(t *testing.T) {
	srv := runServer(t)
	a, srcA := newNode(t, "a", fastConfig(srv.ClientURL()))
	b, _ := newNode(t, "b", fastConfig(srv.ClientURL()))
	if _, err := b.Register("greeter", bus.ActorFunc(greeter)); err != nil {
		t.Fatal(err)
	}

	// A stranger that captures every announcement.
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	var mu sync.Mutex
	var captured []*nats.Msg
	bSubject := "xbus.discovery.node." + b.NodeID().String()
	if _, err := nc.Subscribe(bSubject, func(m *nats.Msg) {
		mu.Lock()
		captured = append(captured, m)
		mu.Unlock()
	}); err != nil {
		t.Fatal(err)
	}

	// A listener that would see a dial to an address the stranger forges.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	dialed := make(chan struct{}, 1)
	go func() {
		if c, err := ln.Accept(); err == nil {
			c.Close()
			dialed <- struct{}{}
		}
	}()
	// refusedAll publishes msgs and a last garbage one, and checks that a
	// refuses exactly all of them: the subscription handles them in order,
	// so once the last is counted, all were.
	refusedAll := func(what string, msgs []*nats.Msg) {
		t.Helper()
		before := srcA.Refused()
		for _, m := range append(msgs, &nats.Msg{Subject: "xbus.discovery.node.last", Data: []byte("x")}) {
			if err := nc.PublishMsg(m); err != nil {
				t.Fatal(err)
			}
		}
		want := before + uint64(len(msgs)) + 1
		eventually(t, 20*time.Second, what, func() bool { return srcA.Refused() >= want })
		if got := srcA.Refused(); got != want {
			t.Fatalf("%s: refused %d, want %d", what, got-before, want-before)
		}
	}
	forged := `{"v":1,"kind":"hello","node":"` + b.NodeID().String() + `","seq":999999,"time":` +
		"1" + `,"ttl_ms":60000,"addrs":["tcp://` + ln.Addr().String() + `"],"names":["greeter","payments"]}`
	refusedAll("a refuses every forgery", []*nats.Msg{
		{Subject: bSubject, Data: []byte(forged)}, // no MAC
		{Subject: bSubject, Data: []byte(forged), Header: nats.Header{"Xbus-Mac": []string{strings.Repeat("A", 43)}}},
		{Subject: "xbus.discovery.node.9b2d3c1e-0000-4000-8000-000000000001", Data: []byte("{{{ not json"), Header: nats.Header{"Xbus-Mac": []string{"x"}}},
		{Subject: "xbus.discovery.node.x", Data: make([]byte, 300<<10)},
		{Subject: "xbus.discovery.node.y", Data: nil},
	})

	// A whole node with the wrong secret, hosting greeter and payments.
	wrong := fastConfig(srv.ClientURL())
	wrong.Secret = []byte("not the cluster's secret at all!")
	s, _ := newNode(t, "stranger", wrong)
	for _, name := range []string{"greeter", "payments"} {
		if _, err := s.Register(name, bus.ActorFunc(greeter)); err != nil {
			t.Fatal(err)
		}
	}
	seen := srcA.Refused()
	eventually(t, 20*time.Second, "a refuses the stranger node's heartbeats", func() bool { return srcA.Refused() >= seen+3 })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := a.WaitFor(ctx, "greeter"); err != nil {
		t.Fatal(err)
	}
	for range 20 {
		reply, err := a.Ask(ctx, "greeter", "a")
		if err != nil || reply != "hello, a from b" {
			t.Fatalf("ask = %v, %v; want only b to answer", reply, err)
		}
	}
	if !forgot(a, "payments") {
		t.Fatal("a knows of payments, which only the stranger claims")
	}
	if keeps(a, s.Self().Addrs) || linked(a, s.NodeID()) {
		t.Fatalf("a links the stranger: %+v", a.Links())
	}
	closeBus(t, s)
	// Let a handle what the stranger sent up to its close (its goodbye too),
	// so the count below is only the replays'.
	settled := srcA.Refused()
	if err := nc.Publish("xbus.discovery.node.settle", []byte("x")); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, "a handles what came before", func() bool { return srcA.Refused() > settled })

	// b leaves; the stranger replays everything b ever announced.
	bAddrs := b.Self().Addrs
	closeBus(t, b)
	eventually(t, 20*time.Second, "a forgets b", func() bool { return forgot(a, "greeter") && !keeps(a, bAddrs) })
	mu.Lock()
	var replay []*nats.Msg
	for _, m := range captured {
		replay = append(replay, &nats.Msg{Subject: m.Subject, Data: m.Data, Header: m.Header})
	}
	mu.Unlock()
	if len(replay) < 3 {
		t.Fatalf("captured %d of b's announcements", len(replay))
	}
	refusedAll("a refuses every replay", replay)
	if keeps(a, bAddrs) {
		t.Fatalf("a links b again after a replay: %+v", a.Links())
	}
	if !forgot(a, "greeter") {
		t.Fatal("a knows of greeter again after a replay")
	}
	select {
	case <-dialed:
		t.Fatal("a dialed the address the stranger forged")
	default:
	}
}

// TestServerRestart: the NATS server goes away and comes back on the same
// address; the nodes reconnect and go on announcing and serving, and a node
// that starts afterwards finds the one that was there before.
func TestServerRestart(t *testing.T) {
	first := runServer(t)
	port := first.Addr().(*net.TCPAddr).Port
	cfg := fastConfig(first.ClientURL())
	cfg.Options = []nats.Option{nats.ReconnectWait(20 * time.Millisecond)}
	a, srcA := newNode(t, "a", cfg)
	if _, err := a.Register("greeter", bus.ActorFunc(greeter)); err != nil {
		t.Fatal(err)
	}
	first.Shutdown()
	first.WaitForShutdown()
	eventually(t, 20*time.Second, "a sees the server gone", func() bool { return !srcA.Conn().IsConnected() })
	second := runServerOn(t, port)
	eventually(t, 20*time.Second, "a reconnects", func() bool { return srcA.Conn().IsConnected() })

	b, _ := newNode(t, "b", fastConfig(second.ClientURL()))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := b.WaitFor(ctx, "greeter"); err != nil {
		t.Fatal(err)
	}
	if reply, err := b.Ask(ctx, "greeter", "b"); err != nil || reply != "hello, b from a" {
		t.Fatalf("ask = %v, %v", reply, err)
	}
	nc := connect(t, second.ClientURL())
	if m, err := nc.Request("xbus.greeter", []byte(`"nats"`), 10*time.Second); err != nil || string(m.Data) != `"hello, nats from a"` {
		t.Fatalf("request after the restart: %v, %v", m, err)
	}
}
