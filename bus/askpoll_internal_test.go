package bus

import (
	"context"
	"runtime"
	"sync/atomic"
	"testing"
)

// parkedLink is a PollingLink whose reader parks at once; it counts the
// polls askers make of it.
type parkedLink struct {
	polls atomic.Int64
}

func (l *parkedLink) Peer() NodeID                          { return NodeID{} }
func (l *parkedLink) Locality() Locality                    { return SameHost }
func (l *parkedLink) Scheme() string                        { return "parked" }
func (l *parkedLink) Codec() Codec                          { return JSON }
func (l *parkedLink) Send(context.Context, *Envelope) error { return nil }
func (l *parkedLink) Close(error)                           {}
func (l *parkedLink) ReaderSpins() bool                     { return false }
func (l *parkedLink) Poll() bool                            { l.polls.Add(1); return false }

// TestAskerPollsNoParkedReader: an asker waiting on a PollingLink whose
// reader parks at once does not poll the ring, even with other asks to its
// peer in flight (which would have it poll a socket's link); it parks, and
// takes its reply once the call completes.
func TestAskerPollsNoParkedReader(t *testing.T) {
	b, err := New(WithName("parked"))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close(context.Background())
	l := &parkedLink{}
	c, seq := b.getCall()
	c.link, c.peer = l, &peer{}
	c.peer.inflight.Store(2)
	go func() {
		for c.state.Load() != seq<<stateBits|callParked {
			runtime.Gosched()
		}
		c.complete(seq, "reply", nil)
	}()
	r, err := b.wait(context.Background(), c, seq)
	if err != nil || r != "reply" {
		t.Fatalf("got %v, %v; want the reply", r, err)
	}
	if n := l.polls.Load(); n != 0 {
		t.Fatalf("the asker polled a link whose reader parks %d times, want none", n)
	}
}
