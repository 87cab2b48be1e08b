package netbus

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/xbus-dev/xbus/bus"
)

// acceptAs accepts one connection on ln and runs the acceptor's side of
// the handshake on it as cfg says, as a peer of its own making would.
func acceptAs(ln net.Listener, cfg hsConfig) (net.Conn, error) {
	nc, err := ln.Accept()
	if err != nil {
		return nil, err
	}
	cfg.MaxFrame = 1 << 20
	rand.Read(cfg.Nonce[:])
	h := newHandshake(cfg)
	nc.Write(h.start())
	buf := make([]byte, 4096)
	for !h.done() {
		n, err := nc.Read(buf)
		if n > 0 {
			out, ferr := h.feed(buf[:n])
			nc.Write(out)
			if ferr != nil {
				return nc, ferr
			}
		}
		if err != nil && !h.done() {
			return nc, err
		}
	}
	return nc, nil
}

// A pooled link has one peer and one codec: a dialer whose connections
// of one pool name different codecs (each handshake alone agreeing on a
// codec of its own) is refused, its connections closed and no link up,
// instead of a link that decodes every body in the first connection's.
func TestPooledLinkAcceptedRefusedWhenCodecsDiffer(t *testing.T) {
	srv := newTestHost(t)
	srvLog := &logRecorder{}
	srv.log = slog.New(srvLog)
	srvT := startTransport(t, srv, Config{Listen: []string{"tcp://127.0.0.1:0"}, Codec: namedCodec{"gob"}})
	node := bus.NewNodeID()
	var id [8]byte
	rand.Read(id[:])
	linkID := binary.BigEndian.Uint64(id[:])
	var ncs []net.Conn
	for i, name := range []string{"gob", "json"} { // agreed: gob (the acceptor's own), then json (the dialer's, built in)
		nc, _, err := rawDial(t, srvT.Addrs()[0], hsConfig{Node: node, LinkID: linkID, Conn: uint8(i), Pool: 2, Codec: name})
		if err != nil {
			t.Fatalf("handshake of connection %d: %v", i, err)
		}
		ncs = append(ncs, nc)
	}
	for i, nc := range ncs {
		// The bound only keeps a failure from hanging: a link up would
		// send heartbeats until it.
		nc.SetReadDeadline(time.Now().Add(30 * time.Second))
		if _, err := io.Copy(io.Discard, nc); err != nil {
			t.Fatalf("connection %d: %v; want it closed by the acceptor", i, err)
		}
	}
	if n := len(srv.upCh); n != 0 {
		t.Fatalf("%d links up over connections that disagree", n)
	}
	if errs := srvLog.matching("refused a pooled link"); len(errs) != 1 || !errors.Is(errs[0], ErrHandshake) {
		t.Fatalf("the acceptor logged %v, want one ErrHandshake", errs)
	}
}

// A dialer whose pooled connections reach an acceptor that names another
// codec, or is another node, on one of them gets an error from Dial and no
// link: an address behind which connections land on different nodes, or a
// peer that lies, cannot make one link of them.
func TestPooledLinkDialedRefusedWhenConnsDisagree(t *testing.T) {
	one, other := bus.NewNodeID(), bus.NewNodeID()
	for _, c := range []struct {
		name   string
		accept [2]hsConfig
	}{
		{"codec", [2]hsConfig{{Node: one, Codec: "gob"}, {Node: one, Codec: "json"}}},
		{"node", [2]hsConfig{{Node: one, Codec: "gob"}, {Node: other, Codec: "gob"}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			accepted := make(chan net.Conn, 2)
			go func() {
				for _, cfg := range c.accept {
					nc, err := acceptAs(ln, cfg)
					if nc != nil {
						accepted <- nc
					}
					if err != nil {
						return
					}
				}
			}()
			cli := newTestHost(t)
			cliT := startTransport(t, cli, Config{Codec: namedCodec{"gob"}, PoolSize: 2})
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			l, err := cliT.Dial(ctx, "tcp://"+ln.Addr().String())
			if !errors.Is(err, ErrHandshake) || l != nil {
				t.Fatalf("dial: %v, %v; want ErrHandshake and no link", l, err)
			}
			if n := len(cli.upCh); n != 0 {
				t.Fatalf("%d links up over connections that disagree", n)
			}
			for range 2 {
				nc := <-accepted
				nc.SetReadDeadline(time.Now().Add(30 * time.Second)) // only keeps a failure from hanging
				if _, err := io.Copy(io.Discard, nc); err != nil {
					t.Fatalf("the dialer left a connection open: %v", err)
				}
				nc.Close()
			}
		})
	}
}
