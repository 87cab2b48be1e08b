package netbus

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/xbus-dev/xbus/bus"
	"github.com/xbus-dev/xbus/codec"
)

// Heartbeats and the idle timeout run on fake time: links over net.Pipe
// inside a synctest bubble, where every wait is on a channel or a timer of
// the bubble (a real socket's is not), so time advances exactly when every
// goroutine waits.

// pipeConn is one end of a net.Pipe whose writes do not wait for the peer
// to read, as a socket's do not (up to its buffer): in the handshake both
// ends write their hello before either reads.
type pipeConn struct {
	net.Conn
	q      chan []byte
	closed chan struct{}
	broken chan struct{} // closed when the pump's write failed
	once   sync.Once
}

func newPipeConn(c net.Conn) *pipeConn {
	p := &pipeConn{Conn: c, q: make(chan []byte, 1<<10), closed: make(chan struct{}), broken: make(chan struct{})}
	go func() { // the pump
		for {
			select {
			case b := <-p.q:
				if _, err := c.Write(b); err != nil {
					close(p.broken)
					return
				}
			case <-p.closed:
				return
			}
		}
	}()
	return p
}

func (p *pipeConn) Write(b []byte) (int, error) {
	select {
	case <-p.closed:
		return 0, net.ErrClosed
	case <-p.broken:
		return 0, io.ErrClosedPipe
	case p.q <- append([]byte(nil), b...):
		return len(b), nil
	}
}

func (p *pipeConn) Close() error {
	p.once.Do(func() { close(p.closed) })
	return p.Conn.Close()
}

// pipeLink handshakes t (accepting) with a peer end over a pipe and starts
// t's side of the link. The peer end is returned as it stands after the
// handshake, with the bytes it read past it.
func pipeLink(t *testing.T, tr *Transport, peer hsConfig) (nc net.Conn, rest []byte) {
	t.Helper()
	a, b := net.Pipe()
	mine, theirs := newPipeConn(a), newPipeConn(b)
	var c *conn
	var err error
	var wg sync.WaitGroup
	wg.Go(func() { c, _, err = tr.handshake(context.Background(), mine, hsConfig{}) })
	if peer.Node.IsZero() {
		peer.Node = bus.NewNodeID()
	}
	peer.Codec, peer.Dialer, peer.Pool, peer.MaxFrame = codec.Binary().Name(), true, 1, 1<<20
	h := newHandshake(peer)
	theirs.Write(h.start())
	buf := make([]byte, 4096)
	for !h.done() {
		n, rerr := theirs.Read(buf)
		if n > 0 {
			out, ferr := h.feed(buf[:n])
			theirs.Write(out)
			if ferr != nil {
				t.Fatal(ferr)
			}
		}
		if rerr != nil && !h.done() {
			t.Fatal(rerr)
		}
	}
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tr.startLink([]*conn{c}, "tcp"); err != nil {
		t.Fatal(err)
	}
	return theirs, h.rest()
}

// A peer that reads everything and sends nothing, not even a ping, is
// declared dead after IdleTimeout, to the heartbeat.
func TestIdleTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := newTestHost(t)
		cfg := Config{HeartbeatInterval: 10 * time.Millisecond, IdleTimeout: 50 * time.Millisecond}
		srvT := New(cfg)
		if err := srvT.Start(srv); err != nil {
			t.Fatal(err)
		}
		nc, _ := pipeLink(t, srvT, hsConfig{})
		go io.Copy(io.Discard, nc) // reads, never writes
		srv.link(t)
		start := time.Now()
		if err := <-srv.downCh; !errors.Is(err, ErrIdleTimeout) {
			t.Fatalf("got %v, want ErrIdleTimeout", err)
		}
		if d := time.Since(start); d < cfg.IdleTimeout || d > cfg.IdleTimeout+cfg.HeartbeatInterval {
			t.Fatalf("declared idle after %v; IdleTimeout %v, heartbeat %v", d, cfg.IdleTimeout, cfg.HeartbeatInterval)
		}
		srvT.Close(context.Background())
		nc.Close()
	})
}

// pipePair links two transports over a pipe, acc accepting and dial
// dialing, and returns dial's link.
func pipePair(t *testing.T, acc, dial *Transport) bus.Link {
	t.Helper()
	a, b := net.Pipe()
	var ca, cd *conn
	var erra, errd error
	var wg sync.WaitGroup
	wg.Go(func() { ca, _, erra = acc.handshake(context.Background(), newPipeConn(a), hsConfig{}) })
	wg.Go(func() {
		cd, _, errd = dial.handshake(context.Background(), newPipeConn(b), hsConfig{Dialer: true, LinkID: 1, Pool: 1})
	})
	wg.Wait()
	if erra != nil || errd != nil {
		t.Fatal(erra, errd)
	}
	if _, err := acc.startLink([]*conn{ca}, "tcp"); err != nil {
		t.Fatal(err)
	}
	l, err := dial.startLink([]*conn{cd}, "tcp")
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// Heartbeats keep a quiet but healthy link up across many idle timeouts.
func TestHeartbeatsKeepLinkUp(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv, cli := newTestHost(t), newTestHost(t)
		cfg := Config{HeartbeatInterval: 100 * time.Millisecond, IdleTimeout: 300 * time.Millisecond}
		srvT, cliT := New(cfg), New(cfg)
		if err := srvT.Start(srv); err != nil {
			t.Fatal(err)
		}
		if err := cliT.Start(cli); err != nil {
			t.Fatal(err)
		}
		l := pipePair(t, srvT, cliT)
		const quiet = 10 * time.Second // over 30 idle timeouts, only pings crossing
		time.Sleep(quiet)
		for _, h := range []*testHost{srv, cli} {
			if _, downs, delivered, _ := h.counts(); downs != 0 || delivered != 0 {
				t.Errorf("while quiet: %d links down (%v), %d messages", downs, h.downs, delivered)
			}
		}
		for _, c := range []*conn{l.(*link).conns[0], serverConns(srvT)[0]} {
			// A ping goes out when nothing else did for a heartbeat
			// interval, the ping before included: one every two.
			if n, most := c.recv.Load(), uint64(quiet/cfg.HeartbeatInterval); n < most/2-1 || n > most+1 {
				t.Errorf("%d pings received in %v, heartbeat %v", n, quiet, cfg.HeartbeatInterval)
			}
		}
		if got, err := cli.ask(context.Background(), l, "echo", "x"); err != nil || got != "x" {
			t.Errorf("echo after the quiet: %v %v", got, err)
		}
		cliT.Close(context.Background())
		srvT.Close(context.Background())
	})
}
