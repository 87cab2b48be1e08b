package netbus

import (
	"bytes"
	"context"
	"errors"
	"io"
	"reflect"
	"testing"
	"time"

	"github.com/xbus-dev/xbus/bus"
	"github.com/xbus-dev/xbus/codec"
)

// A stream of tells with one header goes as one data frame and repeat
// frames carrying only the bodies; each frame on the wire, read as
// docs/wire.md says (a repeat frame takes the header of the data frame
// before it), is the envelope sent, in order, whatever comes between:
// another sender, headers, a publish.
func TestRepeatFramesOnTheWire(t *testing.T) {
	srv := newTestHost(t)
	srvT := startTransport(t, srv, Config{Listen: []string{"tcp://127.0.0.1:0"}})
	nc, rest, err := rawDial(t, srvT.Addrs()[0], hsConfig{})
	if err != nil {
		t.Fatal(err)
	}
	l := srv.link(t)
	c := l.(*link).conns[0]
	a := bus.Ref{Node: srv.id, Name: "a", ID: 1}
	b := bus.Ref{Node: srv.id, Name: "b", ID: 2}
	var sent []bus.Envelope
	tell := func(env bus.Envelope) {
		e := encoded(l, &env)
		if err := l.Send(context.Background(), e); err != nil {
			t.Fatal(err)
		}
		e.Msg = nil
		sent = append(sent, *e)
	}
	// The writer takes nothing while a sender writes: the queue holds every
	// frame below, and one write takes them all.
	holdWriter(c)
	for i := range 5 {
		tell(bus.Envelope{Kind: bus.KindTell, From: a, To: bus.Ref{Name: "sink"}, Msg: Payload{Seq: i}})
	}
	tell(bus.Envelope{Kind: bus.KindTell, From: b, To: bus.Ref{Name: "sink"}, Msg: Payload{Seq: 0}})
	tell(bus.Envelope{Kind: bus.KindTell, From: a, To: bus.Ref{Name: "sink"}, Msg: Payload{Seq: 5}})
	tell(bus.Envelope{Kind: bus.KindTell, From: a, To: bus.Ref{Name: "sink"}, Msg: "a string"}) // another type
	tell(bus.Envelope{Kind: bus.KindTell, From: a, To: bus.Ref{Name: "sink"}, Headers: []bus.Header{{Key: "k", Value: "v"}}, Msg: "h"})
	tell(bus.Envelope{Kind: bus.KindTell, From: a, To: bus.Ref{Name: "sink"}, Headers: []bus.Header{{Key: "k", Value: "v"}}, Msg: "h"})
	tell(bus.Envelope{Kind: bus.KindPublish, To: bus.Ref{Name: "prices.eur"}, Msg: Payload{Seq: 1}})
	tell(bus.Envelope{Kind: bus.KindPublish, To: bus.Ref{Name: "prices.eur"}, Msg: Payload{Seq: 2}})
	tell(bus.Envelope{Kind: bus.KindTell, From: a, To: bus.Ref{Name: "sink"}, Msg: []byte{}}) // an empty body
	tell(bus.Envelope{Kind: bus.KindTell, From: a, To: bus.Ref{Name: "sink"}, Msg: []byte{}})
	releaseWriter(c)

	fr := newFrameReader(io.MultiReader(bytes.NewReader(rest), nc), 1<<20)
	nc.SetReadDeadline(time.Now().Add(30 * time.Second))
	var prev *bus.Envelope
	var types []byte
	for i := 0; i < len(sent); {
		typ, _, p, err := fr.next()
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		var got bus.Envelope
		switch typ {
		case frameData:
			if err := bus.DecodeEnvelope(p, &got); err != nil {
				t.Fatalf("frame %d: %v", i, err)
			}
		case frameRepeat:
			if prev == nil {
				t.Fatalf("frame %d: a repeat frame with no data frame before it", i)
			}
			got = bus.Envelope{Kind: prev.Kind, From: prev.From, To: prev.To, Type: prev.Type, Codec: prev.Codec, Body: bytes.Clone(p)}
		default:
			continue // a ping
		}
		if len(got.Body) == 0 {
			got.Body = nil
		}
		want := sent[i]
		if len(want.Body) == 0 {
			want.Body = nil
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("frame %d (type %d) reads as %+v, sent %+v", i, typ, got, want)
		}
		prev = &got
		types = append(types, typ)
		i++
	}
	R, D := frameRepeat, frameData
	want := []byte{D, R, R, R, R, D, D, D, D, D, D, R, D, R}
	if !bytes.Equal(types, want) {
		t.Fatalf("frame types %v, want %v", types, want)
	}
}

// A peer's repeat frames are delivered as the tells they stand for, across
// the reader's batches; a repeat frame with nothing to repeat (first on the
// connection, after an ask, with flags) is a bad frame that closes the
// link.
func TestRepeatFramesFromPeer(t *testing.T) {
	data := func(env bus.Envelope) []byte {
		p, err := encoded(fakeLink{}, &env).AppendBinary(nil)
		if err != nil {
			t.Fatal(err)
		}
		return append(appendFrameHeader(nil, frameData, 0, len(p)), p...)
	}
	repeat := func(msg any) []byte {
		p := encoded(fakeLink{}, &bus.Envelope{Msg: msg}).Body
		return append(appendFrameHeader(nil, frameRepeat, 0, len(p)), p...)
	}
	x, y := bus.Ref{Name: "x", ID: 1}, bus.Ref{Name: "y", ID: 1}
	t.Run("delivered", func(t *testing.T) {
		srv := newTestHost(t)
		srvT := startTransport(t, srv, Config{Listen: []string{"tcp://127.0.0.1:0"}})
		id := bus.NewNodeID()
		x.Node, y.Node = id, id
		nc, _, err := rawDial(t, srvT.Addrs()[0], hsConfig{Node: id})
		if err != nil {
			t.Fatal(err)
		}
		go io.Copy(io.Discard, nc)
		srv.link(t)
		var stream []byte
		stream = append(stream, data(bus.Envelope{Kind: bus.KindTell, From: x, To: bus.Ref{Name: "sink"}, Msg: Payload{Seq: 0}})...)
		for i := 1; i < 300; i++ { // more than a batch
			stream = append(stream, repeat(Payload{Seq: i})...)
		}
		stream = append(stream, appendPing(nil, 0)...)
		stream = append(stream, repeat(Payload{Seq: 300})...) // after a ping: the data frame before it
		stream = append(stream, data(bus.Envelope{Kind: bus.KindTell, From: y, To: bus.Ref{Name: "sink"}, Msg: Payload{Seq: 0}})...)
		stream = append(stream, repeat(Payload{Seq: 1})...)
		for len(stream) > 0 { // in pieces, so that batches end anywhere
			n := min(len(stream), 777)
			if _, err := nc.Write(stream[:n]); err != nil {
				t.Fatal(err)
			}
			stream = stream[n:]
			time.Sleep(time.Millisecond)
		}
		deadline := time.Now().Add(30 * time.Second)
		for srv.deliver.Load() < 303 && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
		srv.mu.Lock()
		defer srv.mu.Unlock()
		if got := srv.tells["x"]; len(got) != 301 || got[0] != 0 || got[300] != 300 {
			t.Fatalf("x's tells: %d, want 0..300", len(got))
		}
		for i, s := range srv.tells["x"] {
			if s != i {
				t.Fatalf("x's tell %d is %d", i, s)
			}
		}
		if got := srv.tells["y"]; !reflect.DeepEqual(got, []int{0, 1}) {
			t.Fatalf("y's tells %v, want [0 1]", got)
		}
	})
	for name, stream := range map[string][]byte{
		"first":      repeat(Payload{}),
		"after ask":  append(data(bus.Envelope{Kind: bus.KindAsk, From: x, To: bus.Ref{Name: "hold"}, Corr: 1, Msg: Payload{}}), repeat(Payload{})...),
		"with flags": append(data(bus.Envelope{Kind: bus.KindTell, From: x, To: bus.Ref{Name: "sink"}, Msg: Payload{}}), func() []byte { f := repeat(Payload{}); f[5] = 1; return f }()...),
	} {
		t.Run(name, func(t *testing.T) {
			srv := newTestHost(t)
			srvT := startTransport(t, srv, Config{Listen: []string{"tcp://127.0.0.1:0"}})
			nc, rest, err := rawDial(t, srvT.Addrs()[0], hsConfig{})
			if err != nil {
				t.Fatal(err)
			}
			srv.link(t)
			nc.Write(stream)
			srv.wantLinkDown(t, ErrBadFrame)
			if err := readClose(t, nc, rest); !errors.Is(err, ErrBadFrame) {
				t.Fatalf("the peer was told %v, want ErrBadFrame", err)
			}
		})
	}
}

// fakeLink is a bus.Link with the default codec, for encoding bodies as a
// peer would.
type fakeLink struct{ bus.Link }

func (fakeLink) Codec() bus.Codec { return codec.Binary() }

// holdWriter keeps c's writer from taking its queue, as a sender writing
// does: what is sent meanwhile waits, to go out in one write.
func holdWriter(c *conn) {
	c.mu.Lock()
	c.writing = true
	c.mu.Unlock()
}

// releaseWriter lets c's writer go on and kicks it.
func releaseWriter(c *conn) {
	c.mu.Lock()
	c.writing = false
	c.mu.Unlock()
	select {
	case c.kick <- struct{}{}:
	default: // the writer has a kick waiting
	}
}
