package netbus

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/xbus-dev/xbus/bus"
	"github.com/xbus-dev/xbus/codec"
)

// network runs body once over TCP loopback and once over a Unix socket.
func network(t *testing.T, body func(t *testing.T, listen string)) {
	t.Run("tcp", func(t *testing.T) { body(t, "tcp://127.0.0.1:0") })
	t.Run("unix", func(t *testing.T) { body(t, "unix://"+filepath.Join(t.TempDir(), "n.sock")) })
}

// pair starts a listening and a dialing transport and returns both hosts and
// the dialer's link.
func pair(t *testing.T, listen string, srvCfg, cliCfg Config) (srv, cli *testHost, srvT, cliT *Transport, l bus.Link) {
	t.Helper()
	srv, cli = newTestHost(t), newTestHost(t)
	srvCfg.Listen = []string{listen}
	srvT = startTransport(t, srv, srvCfg)
	cliT = startTransport(t, cli, cliCfg)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := cliT.Dial(ctx, srvT.Addrs()[0]); err != nil {
		t.Fatal(err)
	}
	l = cli.link(t)
	srv.link(t)
	return
}

func TestAskAndErrors(t *testing.T) {
	network(t, func(t *testing.T, listen string) {
		before := runtime.NumGoroutine()
		srv, cli, srvT, cliT, l := pair(t, listen, Config{Secret: []byte("k")}, Config{Secret: []byte("k")})
		if l.Peer() != srv.id {
			t.Fatalf("peer %v, want %v", l.Peer(), srv.id)
		}
		wantLoc := bus.Remote
		if listen[:4] == "unix" {
			wantLoc = bus.SameHost
		}
		if l.Locality() != wantLoc {
			t.Fatalf("locality %v, want %v", l.Locality(), wantLoc)
		}
		ctx := context.Background()
		got, err := cli.ask(ctx, l, "echo", Payload{Seq: 7, Data: []byte("hi")})
		if err != nil {
			t.Fatal(err)
		}
		if p := got.(Payload); p.Seq != 7 || string(p.Data) != "hi" {
			t.Fatalf("echo returned %+v", got)
		}
		if got, err := cli.ask(ctx, l, "echo", "a string"); err != nil || got != "a string" {
			t.Fatalf("echo string: %v %v", got, err)
		}
		_, err = cli.ask(ctx, l, "fail", Payload{})
		var re *bus.RemoteError
		if !errors.Is(err, bus.ErrMailboxFull) || !errors.As(err, &re) {
			t.Fatalf("remote error %v (%T) does not match bus.ErrMailboxFull", err, err)
		}
		// A body of a type the far side does not know fails that ask only.
		type unknown struct{ X int }
		if _, err := cli.ask(ctx, l, "echo", unknown{1}); !errors.Is(err, bus.ErrUnknownType) {
			t.Fatalf("unknown type: got %v", err)
		}
		if _, err := cli.ask(ctx, l, "echo", "still up"); err != nil {
			t.Fatal(err)
		}
		cliT.Close(ctx)
		srvT.Close(ctx)
		if _, err := cli.ask(ctx, l, "echo", "x"); !errors.Is(err, bus.ErrPeerGone) {
			t.Fatalf("send on a closed link: %v", err)
		}
		checkGoroutines(t, before)
	})
}

// Messages of one sender arrive in order, also over a pool of connections
// where different senders take different connections.
func TestOrderWithPool(t *testing.T) {
	network(t, func(t *testing.T, listen string) {
		srv, _, _, _, l := pair(t, listen, Config{}, Config{PoolSize: 4})
		const senders, n = 8, 2000
		var wg sync.WaitGroup
		for s := range senders {
			wg.Go(func() {
				from := bus.Ref{Node: l.Peer(), Name: fmt.Sprintf("sender-%d", s), ID: uint64(s + 1)}
				for i := range n {
					env := &bus.Envelope{Kind: bus.KindTell, From: from, To: bus.Ref{Name: "sink"}, Msg: Payload{Seq: i}}
					if err := l.Send(context.Background(), encoded(l, env)); err != nil {
						t.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
		// An ask on the sender's connection after its tells proves they
		// have all arrived... but asks use another sender; so wait until
		// everything is counted.
		deadline := time.Now().Add(30 * time.Second)
		for {
			srv.mu.Lock()
			total := 0
			for _, v := range srv.tells {
				total += len(v)
			}
			srv.mu.Unlock()
			if total == senders*n {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d of %d tells arrived", total, senders*n)
			}
			time.Sleep(5 * time.Millisecond)
		}
		srv.mu.Lock()
		defer srv.mu.Unlock()
		for name, seqs := range srv.tells {
			for i, s := range seqs {
				if s != i {
					t.Fatalf("%s: message %d arrived as number %d", name, s, i)
				}
			}
		}
		lk := l.(*link)
		used := map[*conn]bool{}
		for s := range senders {
			used[lk.pick(&bus.Envelope{From: bus.Ref{Node: l.Peer(), Name: fmt.Sprintf("sender-%d", s), ID: uint64(s + 1)}})] = true
		}
		if len(lk.conns) != 4 || len(used) < 2 {
			t.Fatalf("pool of %d conns, senders used %d of them", len(lk.conns), len(used))
		}
	})
}

// A graceful close over a pool of connections delivers everything sent
// before it: the peer's close frame on one connection does not cut the
// others, whose frames before their own close frames still arrive.
func TestPoolCloseDeliversAll(t *testing.T) {
	network(t, func(t *testing.T, listen string) {
		srv, _, _, _, l := pair(t, listen, Config{}, Config{PoolSize: 4})
		const senders, n = 8, 200
		for i := range n {
			for s := range senders {
				from := bus.Ref{Node: l.Peer(), Name: fmt.Sprintf("sender-%d", s), ID: uint64(s + 1)}
				env := &bus.Envelope{Kind: bus.KindTell, From: from, To: bus.Ref{Name: "sink"}, Msg: Payload{Seq: i}}
				if err := l.Send(context.Background(), encoded(l, env)); err != nil {
					t.Fatal(err)
				}
			}
		}
		l.Close(nil)
		if err := <-srv.downCh; !errors.Is(err, ErrRejected) {
			t.Fatalf("server's link down with %v, want the client's close", err)
		}
		srv.mu.Lock()
		defer srv.mu.Unlock()
		for s := range senders {
			name := fmt.Sprintf("sender-%d", s)
			if got := len(srv.tells[name]); got != n {
				t.Fatalf("%s: %d of %d tells arrived before the link went down", name, got, n)
			}
		}
	})
}

// A stream of tells, every other one compressed, arrives whole and in
// order: the reader hands over a decompressed body before it decompresses
// the next into the same buffer, and the uncompressed ones where they lie
// in its read buffer.
func TestCompressedStreamInOrder(t *testing.T) {
	for _, comp := range []Compression{S2, Zstd} {
		t.Run(comp.String(), func(t *testing.T) {
			cfg := Config{Compression: comp, CompressMin: 128}
			srv, _, _, _, l := pair(t, "tcp://127.0.0.1:0", cfg, cfg)
			from := bus.Ref{Node: l.Peer(), Name: "streamer", ID: 1}
			const n = 3000
			for i := range n {
				data := bytes.Repeat([]byte{byte(i)}, 8+i%2*512) // odd ones compress
				env := &bus.Envelope{Kind: bus.KindTell, From: from, To: bus.Ref{Name: "sink"}, Msg: Payload{Seq: i, Data: data}}
				if err := l.Send(context.Background(), encoded(l, env)); err != nil {
					t.Fatal(err)
				}
			}
			deadline := time.Now().Add(30 * time.Second)
			for {
				srv.mu.Lock()
				got := len(srv.tells["streamer"])
				srv.mu.Unlock()
				if got == n {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("%d of %d tells arrived", got, n)
				}
				time.Sleep(5 * time.Millisecond)
			}
			srv.mu.Lock()
			defer srv.mu.Unlock()
			for i, s := range srv.tells["streamer"] {
				if s != i {
					t.Fatalf("tell %d arrived as number %d", s, i)
				}
			}
		})
	}
}

func TestCompressionOverLink(t *testing.T) {
	text := bytes.Repeat([]byte("xbus moves messages; "), 200000) // 4 MB
	random := make([]byte, 1<<20)
	rand.Read(random)
	for _, comp := range []Compression{S2, Zstd} {
		t.Run(comp.String(), func(t *testing.T) {
			_, cli, _, _, l := pair(t, "tcp://127.0.0.1:0", Config{Compression: comp}, Config{Compression: comp})
			if got := l.(*link).conns[0].res.SendComp; got != comp.flag() {
				t.Fatalf("negotiated %d, want %d", got, comp.flag())
			}
			for _, data := range [][]byte{text, random, []byte("small")} {
				got, err := cli.ask(context.Background(), l, "echo", Payload{Data: data})
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got.(Payload).Data, data) {
					t.Fatalf("%d bytes came back different", len(data))
				}
			}
		})
	}
}

func TestRefusedSecret(t *testing.T) {
	for _, c := range []struct {
		name     string
		srv, cli []byte
	}{{"wrong", []byte("a"), []byte("b")}, {"missing", []byte("a"), nil}, {"unexpected", nil, []byte("b")}} {
		t.Run(c.name, func(t *testing.T) {
			srv, cli := newTestHost(t), newTestHost(t)
			srvT := startTransport(t, srv, Config{Listen: []string{"tcp://127.0.0.1:0"}, Secret: c.srv})
			cliT := startTransport(t, cli, Config{Secret: c.cli})
			_, err := cliT.Dial(context.Background(), srvT.Addrs()[0])
			if !errors.Is(err, ErrAuth) {
				t.Fatalf("dial: got %v, want ErrAuth", err)
			}
			srvT.Close(context.Background())
			for _, h := range []*testHost{srv, cli} {
				if ups, _, delivered, _ := h.counts(); ups != 0 || delivered != 0 {
					t.Fatalf("refused peer got %d links up and %d messages delivered", ups, delivered)
				}
			}
		})
	}
}

// rawDial handshakes with addr by hand, as a peer that will then misbehave.
func rawDial(t *testing.T, addr string, cfg hsConfig) (net.Conn, []byte, error) {
	t.Helper()
	network, a, _ := parseAddr(addr)
	nc, err := net.Dial(network, a)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	if cfg.Node.IsZero() {
		cfg.Node = bus.NewNodeID()
	}
	cfg.Dialer, cfg.MaxFrame = true, 1<<20
	if cfg.Pool == 0 {
		cfg.Pool = 1
	}
	if cfg.Codec == "" {
		cfg.Codec = codec.Binary().Name()
	}
	h := newHandshake(cfg)
	nc.Write(h.start())
	buf := make([]byte, 4096)
	for !h.done() {
		n, err := nc.Read(buf)
		if n > 0 {
			out, ferr := h.feed(buf[:n])
			nc.Write(out)
			if ferr != nil {
				return nc, nil, ferr
			}
		}
		if err != nil && !h.done() {
			return nc, nil, err
		}
	}
	return nc, h.rest(), nil
}

// readClose reads frames from nc until a close frame and returns the error
// it reports.
func readClose(t *testing.T, nc net.Conn, rest []byte) error {
	t.Helper()
	nc.SetReadDeadline(time.Now().Add(30 * time.Second))
	fr := frameReader{r: ioMulti(rest, nc), max: 1 << 20}
	for {
		typ, flags, p, err := fr.next()
		if err != nil {
			t.Fatalf("no close frame before %v", err)
		}
		if typ == frameClose {
			_, _, reason := parseClose(flags, p)
			return reason
		}
	}
}

func TestRefusedBadMagicAndVersion(t *testing.T) {
	srv := newTestHost(t)
	srvT := startTransport(t, srv, Config{Listen: []string{"tcp://127.0.0.1:0"}})
	for _, c := range []struct {
		hello []byte
		want  error
	}{
		{[]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), ErrBadMagic},
		{append([]byte("XBUS\x00"), make([]byte, 100)...), ErrVersion},
		{append([]byte("XBUS\x09"), make([]byte, 100)...), ErrHandshake}, // a newer offer is answered with 4; this hello breaks the rules (no codec)
		{append([]byte("XBUS\x02"), make([]byte, 100)...), ErrVersion},   // a node of the last version: its refusal has no count, so it reads the reason
	} {
		_, a, _ := parseAddr(srvT.Addrs()[0])
		nc, err := net.Dial("tcp", a)
		if err != nil {
			t.Fatal(err)
		}
		nc.Write(c.hello)
		// The server's hello comes first, then the close frame with the
		// reason, then EOF.
		nc.SetReadDeadline(time.Now().Add(30 * time.Second))
		hello := make([]byte, helloFixed+4)
		if _, err := ioReadFull(nc, hello); err != nil {
			t.Fatal(err)
		}
		if got := readClose(t, nc, nil); !errors.Is(got, c.want) {
			t.Fatalf("%q: server said %v, want %v", c.hello[:5], got, c.want)
		}
		nc.Close()
	}
	if ups, _, delivered, _ := srv.counts(); ups != 0 || delivered != 0 {
		t.Fatalf("%d links up, %d delivered", ups, delivered)
	}
}

// Oversized and corrupt frames close that one link with a clear error; the
// node keeps serving its other links.
func TestBadFramesCloseOnlyThatLink(t *testing.T) {
	env := &bus.Envelope{Kind: bus.KindTell, To: bus.Ref{Name: "sink"}, Type: "netbus.Payload", Body: []byte(`{"Seq":1}`)}
	good, _ := env.AppendBinary(nil)
	cases := []struct {
		name  string
		frame []byte
		want  error
	}{
		{"oversized", appendFrameHeader(nil, frameData, 0, 1<<20+1), ErrFrameTooLarge},
		{"unknown type", appendFrameHeader(nil, 77, 0, 1), ErrBadFrame},
		{"corrupt envelope", append(appendFrameHeader(nil, frameData, 0, 5), 9, 9, 9, 9, 9), ErrBadFrame},
		{"truncated envelope", append(appendFrameHeader(nil, frameData, 0, 4), good[:4]...), ErrBadFrame},
		{"corrupt s2", append(appendFrameHeader(nil, frameData, compS2, 5), 0x10, 1, 2, 3, 4), ErrBadFrame},
		{"zstd bomb", append(appendFrameHeader(nil, frameData, compZstd, 6), 0x80, 0x80, 0x80, 0x40, 0, 0), ErrFrameTooLarge},
	}
	srv, cli, _, _, l := pair(t, "tcp://127.0.0.1:0", Config{MaxFrameSize: 1 << 20}, Config{})
	srvT := l.(*link) // the client's link; the server's address is its peer
	addr := formatAddr(srvT.conns[0].nc.RemoteAddr())
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			nc, rest, err := rawDial(t, addr, hsConfig{})
			if err != nil {
				t.Fatal(err)
			}
			srv.link(t)
			_, _, before, _ := srv.counts()
			nc.Write(c.frame)
			if got := readClose(t, nc, rest); !errors.Is(got, c.want) {
				t.Fatalf("peer told %v, want %v", got, c.want)
			}
			if err := <-srv.downCh; !errors.Is(err, c.want) {
				t.Fatalf("server reported %v, want %v", err, c.want)
			}
			if _, _, after, _ := srv.counts(); after != before {
				t.Fatalf("%d messages delivered from the bad link", after-before)
			}
			// The good link still works.
			if got, err := cli.ask(context.Background(), l, "echo", "ok"); err != nil || got != "ok" {
				t.Fatalf("other link: %v %v", got, err)
			}
		})
	}
}

func TestConfigValidation(t *testing.T) {
	for _, c := range []Config{
		{PoolSize: 300},
		{MaxFrameSize: 10},
		{HeartbeatInterval: time.Second, IdleTimeout: time.Second},
		{Listen: []string{"no-port"}},
		{Compression: 9},
	} {
		if err := New(c).Start(newTestHost(t)); err == nil {
			t.Errorf("%+v: no error", c)
		}
	}
}

// A lone ask or reply is written by its sender straight to the socket, and
// what the socket does not take goes to the front of the writer's queue,
// before frames queued meanwhile. Asks and replies far larger than a socket
// buffer, while another goroutine streams tells, must all arrive whole and in
// order.
func TestDirectWritesOfLargeFrames(t *testing.T) {
	network(t, func(t *testing.T, listen string) {
		before := runtime.NumGoroutine()
		srv, cli, srvT, cliT, l := pair(t, listen, Config{}, Config{})
		ctx := context.Background()
		big := make([]byte, 3<<20)
		rand.Read(big)
		var tells int
		var stop atomic.Bool
		var wg sync.WaitGroup
		wg.Go(func() {
			body := make([]byte, 1024)
			for i := 0; !stop.Load(); i++ {
				tells++
				runtime.Gosched()
				env := &bus.Envelope{Kind: bus.KindTell, From: bus.Ref{Node: cli.id, Name: "teller", ID: 2}, To: bus.Ref{Name: "sink"}, Msg: Payload{Seq: i, Data: body}}
				if err := l.Send(ctx, encoded(l, env)); err != nil {
					t.Error(err)
					return
				}
			}
		})
		for i := range 12 {
			data := []byte(fmt.Sprintf("small %d", i))
			if i%2 == 0 {
				data = big[:len(big)-i]
			}
			got, err := cli.ask(ctx, l, "echo", Payload{Seq: i, Data: data})
			if err != nil {
				t.Fatal(err)
			}
			if p := got.(Payload); p.Seq != i || !bytes.Equal(p.Data, data) {
				t.Fatalf("ask %d: %d bytes came back different", i, len(data))
			}
		}
		stop.Store(true)
		wg.Wait()
		deadline := time.Now().Add(20 * time.Second)
		for {
			srv.mu.Lock()
			got := slices.Clone(srv.tells["teller"])
			srv.mu.Unlock()
			if len(got) == tells {
				for i, seq := range got {
					if seq != i {
						t.Fatalf("tell %d arrived as number %d", seq, i)
					}
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d of %d tells arrived", len(got), tells)
			}
			time.Sleep(time.Millisecond)
		}
		if d := l.(*link).asksOut.Load(); d != 0 {
			t.Errorf("%d asks counted in flight after all replies came", d)
		}
		cliT.Close(ctx)
		srvT.Close(ctx)
		checkGoroutines(t, before)
	})
}

// slowHost is a testHost that takes a while over each message it is
// handed, as a loaded node does.
type slowHost struct {
	*testHost
	delay time.Duration
}

func (h *slowHost) Deliver(l bus.Link, env *bus.Envelope) {
	time.Sleep(h.delay)
	h.testHost.Deliver(l, env)
}

// A graceful close over a pool delivers everything sent before it even
// when the receiver takes longer than the linger to work through one
// connection's backlog: the peer's close frame on the other connection
// does not cut a reader that is still handing over what came before its
// own.
func TestPoolCloseDeliversAllToSlowHost(t *testing.T) {
	network(t, func(t *testing.T, listen string) {
		srv := &slowHost{testHost: newTestHost(t), delay: 2 * time.Millisecond}
		cli := newTestHost(t)
		srvT := startTransport(t, srv, Config{Listen: []string{listen}})
		cliT := startTransport(t, cli, Config{PoolSize: 2})
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := cliT.Dial(ctx, srvT.Addrs()[0]); err != nil {
			t.Fatal(err)
		}
		l := cli.link(t)
		srv.link(t)
		// One sender on each connection: "quick" sends one tell, whose
		// connection reads its close frame at once; "busy" sends a backlog
		// that takes the host longer than lingerTimeout.
		lk := l.(*link)
		quick := bus.Ref{Node: l.Peer(), Name: "quick", ID: 1}
		var busy bus.Ref
		for id := uint64(2); ; id++ {
			busy = bus.Ref{Node: l.Peer(), Name: "busy", ID: id}
			if lk.pick(&bus.Envelope{From: busy}) != lk.pick(&bus.Envelope{From: quick}) {
				break
			}
		}
		n := int(2*lingerTimeout/srv.delay) + 100
		for i := range n {
			if err := l.Send(ctx, encoded(l, &bus.Envelope{Kind: bus.KindTell, From: busy, To: bus.Ref{Name: "sink"}, Msg: Payload{Seq: i}})); err != nil {
				t.Fatal(err)
			}
		}
		if err := l.Send(ctx, encoded(l, &bus.Envelope{Kind: bus.KindTell, From: quick, To: bus.Ref{Name: "sink"}, Msg: Payload{}})); err != nil {
			t.Fatal(err)
		}
		l.Close(nil)
		if err := <-srv.downCh; !errors.Is(err, ErrRejected) {
			t.Fatalf("server's link down with %v, want the client's close", err)
		}
		srv.mu.Lock()
		defer srv.mu.Unlock()
		if got := len(srv.tells["busy"]); got != n {
			t.Fatalf("%d of %d tells arrived before the link went down", got, n)
		}
		if got := len(srv.tells["quick"]); got != 1 {
			t.Fatalf("%d of 1 tell arrived", got)
		}
	})
}
