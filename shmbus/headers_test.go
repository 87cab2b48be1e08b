//go:build linux

package shmbus

import (
	"context"
	"encoding/binary"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/xbus-dev/xbus/bus"
)

// headerHost checks each envelope it is handed against the header its
// body names: a sender's number and its tell's, from which the sender's
// whole header follows (headerFor).
type headerHost struct {
	*testHost
	mu       sync.Mutex
	next     map[uint32]uint32
	got      int
	wrong    int
	firstBad string
	peer     bus.NodeID
}

func (h *headerHost) Deliver(_ bus.Link, env *bus.Envelope) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(env.Body) >= 8 {
		s, seq := binary.LittleEndian.Uint32(env.Body), binary.LittleEndian.Uint32(env.Body[4:])
		want, corr := headerFor(h.peer, s, seq), uint64(0)
		if asks(s, seq) {
			want.Kind, corr = bus.KindAsk, uint64(seq)+1
		}
		if env.Kind != want.Kind || env.From != want.From || env.To != want.To || env.Type != want.Type || env.Codec != "" || env.Corr != corr || (env.Timeout != 0) != (corr != 0) || len(env.Headers) != 0 || seq != h.next[s] {
			if h.wrong == 0 {
				h.firstBad = fmt.Sprintf("sender %d, tell %d (next %d): got %+v, want %+v", s, seq, h.next[s], *env, want)
			}
			h.wrong++
		}
		h.next[s] = seq + 1
	}
	h.got++
}

// headerFor is the header sender s gives its tell seq: its own sender
// ref, one of three targets, one of two types, and every fifth a publish
// instead of a tell, so that consecutive headers of one sender differ too.
func headerFor(node bus.NodeID, s, seq uint32) bus.Envelope {
	env := bus.Envelope{
		Kind: bus.KindTell,
		From: bus.Ref{Node: node, Name: fmt.Sprint("sender", s), ID: uint64(s) + 1},
		To:   bus.Ref{Name: fmt.Sprint("sink", (s+seq/100)%3)},
		Type: fmt.Sprint("type", s%2),
	}
	if seq%5 == 4 {
		env.Kind, env.To = bus.KindPublish, bus.Ref{Name: fmt.Sprint("subject.", s%3)}
	}
	return env
}

// asks reports whether sender s sends its message seq as an ask.
func asks(s, seq uint32) bool { return s == 0 && seq%7 == 0 }

// TestHeadersOfInterleavedSenders: senders whose headers differ from each
// other's, and change now and then within one sender, share one link,
// whose kept header (bus.HeaderCache) each may find another's: every tell
// arrives with the very header its sender gave it, in order per sender,
// however the senders interleave and however often the kept header
// changes. Asks go between them, whose headers are never kept.
func TestHeadersOfInterleavedSenders(t *testing.T) {
	sh := newTestHost()
	rh := &headerHost{testHost: newTestHost(), next: map[uint32]uint32{}, peer: sh.id}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	l, _ := linkPair(t, ctx, MinRingSize, rh, rh.testHost, sh)

	const senders, per = 6, 3000
	sendFrom(t, ctx, l, senders, per, func(s, seq uint32) bus.Envelope {
		env := headerFor(sh.id, s, seq)
		env.Body = binary.LittleEndian.AppendUint32(binary.LittleEndian.AppendUint32(nil, s), seq)
		if asks(s, seq) { // the same addresses: never kept, never served as kept
			env.Kind, env.Corr, env.Timeout = bus.KindAsk, uint64(seq)+1, time.Second
		}
		return env
	})
	for range 3000 {
		rh.mu.Lock()
		got := rh.got
		rh.mu.Unlock()
		if got >= senders*per {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	rh.mu.Lock()
	defer rh.mu.Unlock()
	if rh.wrong != 0 || rh.got != senders*per {
		t.Fatalf("%d envelopes arrived, want %d; %d with a header not their sender's or out of order, the first: %s",
			rh.got, senders*per, rh.wrong, rh.firstBad)
	}
}
