package netbus

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/xbus-dev/xbus/bus"
	"github.com/xbus-dev/xbus/codec"
)

// startVersion starts a transport that speaks protocol versions up to v.
func startVersion(t *testing.T, h bus.Host, cfg Config, v uint8) *Transport {
	t.Helper()
	tr := New(cfg)
	tr.version = v
	if err := tr.Start(h); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.Close(context.Background()) })
	return tr
}

// Nodes of different versions link, whichever dials, at the older one's
// version on every connection of the pool; a stream of tells (which
// version 4 would send as repeat frames) arrives whole and in order both
// ways, then a fence (which version 5 follows with fence frames), and asks
// are answered. A repeat frame on a version-3 connection, or a fence frame
// on one below 5, would close the link (ErrBadFrame): it stays up.
func TestLinkAcrossVersions(t *testing.T) {
	for _, c := range []struct {
		name             string
		dialer, acceptor uint8
		want             uint8
	}{
		{"old dialer", 3, 4, 3},
		{"old acceptor", 4, 3, 3},
		{"dialer of 4", 4, 5, 4},
		{"acceptor of 4", 5, 4, 4},
		{"both new", 5, 5, 5},
	} {
		t.Run(c.name, func(t *testing.T) {
			srv, cli := newTestHost(t), newTestHost(t)
			srvT := startVersion(t, srv, Config{Listen: []string{"tcp://127.0.0.1:0"}}, c.acceptor)
			cliT := startVersion(t, cli, Config{PoolSize: 2}, c.dialer)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if _, err := cliT.Dial(ctx, srvT.Addrs()[0]); err != nil {
				t.Fatal(err)
			}
			links := []bus.Link{cli.link(t), srv.link(t)}
			for _, l := range links {
				for i, cn := range l.(*link).conns {
					if cn.res.Version != c.want {
						t.Fatalf("connection %d speaks version %d, want %d", i, cn.res.Version, c.want)
					}
				}
			}
			const n = 500
			for _, l := range links {
				from := bus.Ref{Node: l.(*link).t.host.NodeID(), Name: "stream", ID: 1}
				for i := range n {
					env := &bus.Envelope{Kind: bus.KindTell, From: from, To: bus.Ref{Name: "sink"}, Msg: Payload{Seq: i}}
					if err := l.Send(ctx, encoded(l, env)); err != nil {
						t.Fatal(err)
					}
				}
				fence := &bus.Envelope{Kind: bus.KindTell, From: bus.Ref{Node: from.Node, Name: "fence", ID: 2}, To: bus.Ref{Name: "sink"}, Msg: Payload{Seq: n}}
				if err := l.(bus.FencingLink).Fence(ctx, encoded(l, fence)); err != nil {
					t.Fatal(err)
				}
			}
			for i, h := range []*testHost{cli, srv} {
				got, err := h.ask(ctx, links[i], "echo", Payload{Seq: 7})
				if err != nil || got.(Payload).Seq != 7 {
					t.Fatalf("ask: %v, %v", got, err)
				}
			}
			for _, h := range []*testHost{srv, cli} {
				deadline := time.Now().Add(30 * time.Second)
				for {
					h.mu.Lock()
					got := append([]int(nil), h.tells["stream"]...)
					fenced := len(h.tells["fence"]) == 1
					h.mu.Unlock()
					if len(got) == n && fenced {
						for i, s := range got {
							if s != i {
								t.Fatalf("tell %d arrived as number %d", s, i)
							}
						}
						break
					}
					if time.Now().After(deadline) {
						t.Fatalf("%d of %d tells arrived, and the fence: %v", len(got), n, fenced)
					}
					time.Sleep(5 * time.Millisecond)
				}
				if _, downs, _, _ := h.counts(); downs != 0 {
					t.Fatalf("%d links went down", downs)
				}
			}
		})
	}
}

// v3Acceptor plays a node of version 3 (the build before repeat frames) on
// a real socket, byte for byte as that build answers: its hello at once,
// then, once byte 4 of the dialer's hello arrived, a close frame refusing
// any version but 3 (reason 2, not counted), and the socket closed;
// otherwise the rest of the handshake (no secret). It reports each version
// offered to it, and each connection it linked, at the index of the pool
// the dialer gave it.
type v3Acceptor struct {
	ln      net.Listener
	node    bus.NodeID
	offered chan byte
	linked  chan v3Conn
}

type v3Conn struct {
	nc   net.Conn
	conn uint8 // its index in the dialer's pool
}

func newV3Acceptor(t *testing.T) *v3Acceptor {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a := &v3Acceptor{ln: ln, node: bus.NewNodeID(), offered: make(chan byte, 16), linked: make(chan v3Conn, 16)}
	var mu sync.Mutex
	var ncs []net.Conn
	done := make(chan struct{})
	t.Cleanup(func() {
		ln.Close()
		<-done
		mu.Lock()
		defer mu.Unlock()
		for _, nc := range ncs {
			nc.Close()
		}
	})
	go func() {
		defer close(done)
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			ncs = append(ncs, nc)
			mu.Unlock()
			go a.serve(nc)
		}
	}()
	return a
}

func (a *v3Acceptor) serve(nc net.Conn) {
	hello := append([]byte("XBUS"), 3, 0, compS2|compZstd, 0, 0, byte(len("binary")))
	hello = append(hello, a.node[:]...)
	hello = append(hello, make([]byte, 8)...)  // link id: 0
	hello = append(hello, 0, 0x10, 0, 0)       // max frame: 1 MiB
	hello = append(hello, make([]byte, 32)...) // nonce
	hello = append(hello, "binary"...)
	nc.Write(hello)
	theirs := make([]byte, 10)
	if _, err := io.ReadFull(nc, theirs[:5]); err != nil {
		nc.Close()
		return
	}
	a.offered <- theirs[4]
	if theirs[4] != 3 {
		reason := fmt.Sprintf("netbus: unsupported protocol version: peer speaks version %d, this node 3", theirs[4])
		nc.Write(append(append(appendFrameHeader(nil, frameClose, 0, 1+len(reason)), byte(closeVersion)), reason...))
		nc.Close()
		return
	}
	if _, err := io.ReadFull(nc, theirs[5:]); err != nil {
		nc.Close()
		return
	}
	rest := make([]byte, helloFixed-10+int(theirs[9])+2*frameHeaderLen) // the hello's rest, then auth and ready, both empty
	nc.Write(appendFrameHeader(nil, frameAuth, 0, 0))
	if _, err := io.ReadFull(nc, rest); err != nil {
		nc.Close()
		return
	}
	nc.Write(appendFrameHeader(nil, frameReady, 0, 0))
	a.linked <- v3Conn{nc, theirs[8]}
}

// A node dialing an acceptor of version 3 is refused offering its own, dials
// again offering 3 and links; the connections of the pool after the first
// offer 3 at once. On that link it sends no repeat frame, and a repeat
// frame from the acceptor is a bad frame.
func TestDialVersion3Acceptor(t *testing.T) {
	old := newV3Acceptor(t)
	cli := newTestHost(t)
	cliT := startTransport(t, cli, Config{PoolSize: 2, Codec: codec.Binary()})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	l, err := cliT.Dial(ctx, "tcp://"+old.ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	var offers []byte
	for len(offers) < 3 {
		offers = append(offers, <-old.offered)
	}
	if !bytes.Equal(offers, []byte{maxVersion, 3, 3}) {
		t.Fatalf("offers %v, want [%d 3 3]", offers, maxVersion)
	}
	ncs := make([]net.Conn, 2)
	for range ncs {
		c := <-old.linked
		ncs[c.conn] = c.nc
	}
	for i, c := range l.(*link).conns {
		if c.res.Version != 3 {
			t.Fatalf("connection %d speaks version %d", i, c.res.Version)
		}
		// Hold the writer, so that one write takes every tell below: on a
		// connection of version 4 all but the first would be repeat frames.
		holdWriter(c)
	}
	from := bus.Ref{Node: cli.id, Name: "stream", ID: 1}
	const n = 10
	var sent []bus.Envelope
	for i := range n {
		env := encoded(l, &bus.Envelope{Kind: bus.KindTell, From: from, To: bus.Ref{Name: "sink"}, Msg: Payload{Seq: i}})
		if err := l.Send(ctx, env); err != nil {
			t.Fatal(err)
		}
		env.Msg = nil
		sent = append(sent, *env)
	}
	c := l.(*link).pick(&sent[0])
	for _, c := range l.(*link).conns {
		releaseWriter(c)
	}
	nc := ncs[0]
	if c.id.conn == 1 {
		nc = ncs[1]
	}
	nc.SetReadDeadline(time.Now().Add(30 * time.Second))
	fr := newFrameReader(nc, 1<<20)
	for i := 0; i < n; {
		typ, _, p, err := fr.next()
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		if typ == framePing {
			continue
		}
		if typ != frameData {
			t.Fatalf("frame %d is of type %d on a connection of version 3", i, typ)
		}
		var got bus.Envelope
		if err := bus.DecodeEnvelope(p, &got); err != nil {
			t.Fatal(err)
		}
		got.Body = bytes.Clone(got.Body)
		if !reflect.DeepEqual(got, sent[i]) {
			t.Fatalf("frame %d reads as %+v, sent %+v", i, got, sent[i])
		}
		i++
	}
	// The old node knows no repeat frame; one from it is a bad frame.
	p, err := sent[0].AppendBinary(nil)
	if err != nil {
		t.Fatal(err)
	}
	stream := append(appendFrameHeader(nil, frameData, 0, len(p)), p...)
	stream = append(appendFrameHeader(stream, frameRepeat, 0, len(sent[1].Body)), sent[1].Body...)
	nc.Write(stream)
	// The old node answers each connection's close frame by closing it, as
	// a node does, so the link's end waits for no silence.
	if err := readClose(t, nc, nil); !errors.Is(err, ErrBadFrame) {
		t.Fatalf("the peer was told %v, want ErrBadFrame", err)
	}
	for _, x := range ncs {
		if x != nc {
			readClose(t, x, nil)
		}
		x.Close()
	}
	cli.wantLinkDown(t, ErrBadFrame)
}

// A pooled link whose connections agreed on different versions is one
// link: each connection speaks its own. The acceptor writes repeat frames
// on the connection of version 4 only, and takes them there only.
func TestPooledLinkOfMixedVersions(t *testing.T) {
	srv := newTestHost(t)
	srvT := startTransport(t, srv, Config{Listen: []string{"tcp://127.0.0.1:0"}})
	node, linkID := bus.NewNodeID(), uint64(77)
	var ncs [2]net.Conn
	var rests [2][]byte
	for i, v := range []uint8{3, 4} {
		nc, rest, err := rawDial(t, srvT.Addrs()[0], hsConfig{Node: node, LinkID: linkID, Conn: uint8(i), Pool: 2, Version: v})
		if err != nil {
			t.Fatal(err)
		}
		ncs[i], rests[i] = nc, rest
	}
	l := srv.link(t).(*link)
	for i, want := range []uint8{3, 4} {
		if got := l.conns[i].res.Version; got != want {
			t.Fatalf("connection %d speaks version %d, want %d", i, got, want)
		}
	}
	// A sender for each connection.
	var senders [2]bus.Ref
	for id, found := uint64(1), 0; found < 2; id++ {
		r := bus.Ref{Node: srv.id, Name: fmt.Sprintf("s%d", id), ID: id}
		c := l.pick(&bus.Envelope{From: r})
		if senders[c.id.conn].ID == 0 {
			senders[c.id.conn] = r
			found++
		}
	}
	for _, c := range l.conns {
		holdWriter(c)
	}
	for _, from := range senders {
		for i := range 4 {
			if err := l.Send(context.Background(), encoded(l, &bus.Envelope{Kind: bus.KindTell, From: from, To: bus.Ref{Name: "sink"}, Msg: Payload{Seq: i}})); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, c := range l.conns {
		releaseWriter(c)
	}
	D, R := frameData, frameRepeat
	for i, want := range [][]byte{{D, D, D, D}, {D, R, R, R}} {
		ncs[i].SetReadDeadline(time.Now().Add(30 * time.Second))
		fr := newFrameReader(io.MultiReader(bytes.NewReader(rests[i]), ncs[i]), 1<<20)
		var types []byte
		for len(types) < len(want) {
			typ, _, _, err := fr.next()
			if err != nil {
				t.Fatalf("connection %d: %v", i, err)
			}
			if typ != framePing {
				types = append(types, typ)
			}
		}
		if !bytes.Equal(types, want) {
			t.Fatalf("connection %d (version %d): frame types %v, want %v", i, l.conns[i].res.Version, types, want)
		}
	}
	// The peer's repeat frames: taken on the connection of version 4, a
	// bad frame on the one of version 3.
	from := bus.Ref{Node: node, Name: "x", ID: 1}
	streamOf := func() []byte {
		p, err := encoded(fakeLink{}, &bus.Envelope{Kind: bus.KindTell, From: from, To: bus.Ref{Name: "sink"}, Msg: Payload{Seq: 0}}).AppendBinary(nil)
		if err != nil {
			t.Fatal(err)
		}
		b := append(appendFrameHeader(nil, frameData, 0, len(p)), p...)
		body := encoded(fakeLink{}, &bus.Envelope{Msg: Payload{Seq: 1}}).Body
		return append(appendFrameHeader(b, frameRepeat, 0, len(body)), body...)
	}
	ncs[1].Write(streamOf())
	deadline := time.Now().Add(30 * time.Second)
	for {
		srv.mu.Lock()
		got := append([]int(nil), srv.tells["x"]...)
		srv.mu.Unlock()
		if reflect.DeepEqual(got, []int{0, 1}) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("x's tells %v, want [0 1]", got)
		}
		time.Sleep(time.Millisecond)
	}
	ncs[0].Write(streamOf())
	// The peer answers each connection's close frame by closing it, as a
	// node does, so the link's end waits for no silence.
	for i, nc := range ncs {
		if err := readClose(t, nc, nil); i == 0 && !errors.Is(err, ErrBadFrame) {
			t.Fatalf("the peer was told %v on the connection of version 3, want ErrBadFrame", err)
		}
		nc.Close()
	}
	srv.wantLinkDown(t, ErrBadFrame)
}
