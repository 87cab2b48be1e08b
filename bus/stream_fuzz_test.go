package bus

import (
	"context"
	"encoding/binary"
	"errors"
	"sync"
	"testing"
	"time"
)

// fuzzLink is a link whose peer is the fuzzer: what the bus sends on it is
// counted, and Close only marks it.
type fuzzLink struct {
	mu     sync.Mutex
	sent   int
	closed error
}

func (l *fuzzLink) Peer() NodeID       { return NodeID{1} }
func (l *fuzzLink) Locality() Locality { return Remote }
func (l *fuzzLink) Scheme() string     { return "tcp" }
func (l *fuzzLink) Codec() Codec       { return JSON }
func (l *fuzzLink) Send(context.Context, *Envelope) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed != nil {
		return ErrPeerGone
	}
	l.sent++
	return nil
}
func (l *fuzzLink) Close(err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed == nil {
		l.closed = err
	}
}

// FuzzStreamFrames feeds a bus the stream envelopes of a hostile peer: opens,
// items, ends, cancels and grants for stream ids it picks, with bodies that
// may not decode. Whatever it sends, no stream end holds more than its
// window, no link carries more than maxStreamsPerLink streams, a peer that
// sends beyond credit or grants beyond the largest window has its link
// closed, and the link's end ends every stream on it.
func FuzzStreamFrames(f *testing.F) {
	f.Add([]byte{0, 1, 0, 1, 1, 0, 1, 1, 0, 2, 1, 0, 3, 1, 0})
	f.Add([]byte{0, 5, 0, 4, 5, 255, 1, 5, 0, 1, 5, 0, 1, 5, 0, 1, 5, 0, 1, 5, 0})
	f.Add([]byte{0, 2, 0, 1, 2, 7, 2, 2, 9, 1, 3, 0, 3, 2, 0})
	f.Fuzz(func(t *testing.T, ops []byte) {
		if len(ops) > 3*512 {
			return
		}
		b, err := New(WithStreamWindow(2))
		if err != nil {
			t.Fatal(err)
		}
		defer func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			b.Close(ctx)
		}()
		if _, err := b.Register("sink", ActorFunc(func(*Context, any) error { return nil })); err != nil {
			t.Fatal(err)
		}
		l := &fuzzLink{}
		for i := 0; i+2 < len(ops); i += 3 {
			op, id, arg := ops[i]%6, uint64(ops[i+1]%8), ops[i+2]
			env := &Envelope{Corr: id}
			switch op {
			case 0: // an open, to the sink or to nobody
				env.Kind, env.To = KindStreamItem, Ref{Name: "sink"}
				if arg%4 == 0 {
					env.To.Name = "nobody"
				}
			case 1: // an item, its body perhaps not one
				env.Kind, env.Type, env.Body = KindStreamItem, "int", []byte{'0' + arg%10}
				if arg%5 == 0 {
					env.Body = []byte{'{'}
				}
			case 2:
				env.Kind = KindStreamEnd
				if arg%2 == 0 {
					env.Body = binary.AppendUvarint(nil, uint64(arg))
				}
			case 3:
				env.Kind = KindCancel
			case 4: // a grant, at times beyond any window
				env.Kind, env.Msg = KindSystem, &sysStreamGrant{ID: id, N: uint64(arg) << (arg % 24)}
				b.handleSystem(l, env.Msg)
				continue
			case 5: // a stray stream id's item
				env.Kind, env.Corr, env.Type, env.Body = KindStreamItem, uint64(arg)<<8|id, "int", []byte("1")
			}
			b.deliver(l, env)
		}
		for _, s := range b.streams.on(l) {
			if n := s.Buffered(); n > int(s.recv.Window()) {
				t.Fatalf("stream %d holds %d items, window %d", s.id, n, s.recv.Window())
			}
		}
		if n := b.streams.perL[l]; n > maxStreamsPerLink {
			t.Fatalf("%d streams on one link", n)
		}
		b.streamsDown(l, ErrPeerGone)
		if s := b.streams.on(l); len(s) != 0 {
			t.Fatalf("%d streams left on a link that went down", len(s))
		}
		l.mu.Lock()
		closed := l.closed
		l.mu.Unlock()
		if closed != nil && !errors.Is(closed, ErrBadEnvelope) {
			t.Fatalf("link closed with %v, want ErrBadEnvelope", closed)
		}
	})
}
