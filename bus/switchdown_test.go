package bus_test

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/xbus-dev/xbus/bus"
	"github.com/xbus-dev/xbus/netbus"
)

// fenceless wraps a netbus transport whose links, once armed, never send
// the bus's link messages on TCP: a node switching to a nearer link marks
// the new link, but its fence on the old one never comes, so the peer holds
// what arrives on the new link until that link goes down. It counts, per
// scheme, the envelopes of each kind its links sent.
type fenceless struct {
	*hookTransport
	armed atomic.Bool
	mu    sync.Mutex
	sent  map[string]map[bus.Kind]int
}

func newFenceless(cfg netbus.Config) *fenceless {
	f := &fenceless{hookTransport: newHookTransport(cfg), sent: map[string]map[bus.Kind]int{}}
	f.send = func(l *hookLink, ctx context.Context, env *bus.Envelope) error {
		if l.Scheme() == "tcp" && env.Kind == bus.KindSystem && env.Type == "xbus.link" && f.armed.Load() {
			return nil // the fence that never comes
		}
		err := l.Link.Send(ctx, env)
		if err == nil {
			f.mu.Lock()
			m := f.sent[l.Scheme()]
			if m == nil {
				m = map[bus.Kind]int{}
				f.sent[l.Scheme()] = m
			}
			m[env.Kind]++
			f.mu.Unlock()
		}
		return err
	}
	return f
}

// link returns the last link up with scheme s.
func (f *fenceless) link(s string) bus.Link {
	var out bus.Link
	for _, l := range f.seen() {
		if l.Scheme() == s {
			out = l
		}
	}
	return out
}

func (f *fenceless) count(s string, k bus.Kind) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.sent[s][k]
}

// A stream opened on a link the peer holds (a nearer link whose old link's
// fence has not come) reaches the actor when that link goes down, and
// ends with it: its Context ends, as every stream on a link that goes down
// does, instead of leaving the actor reading a stream nobody can write to;
// an ask held the same way fails with ErrPeerGone.
func TestHeldStreamEndsWithItsLink(t *testing.T) {
	unixAddr := "unix://" + filepath.Join(t.TempDir(), "s.sock")
	sT := netbus.New(netbus.Config{Listen: []string{"tcp://127.0.0.1:0", unixAddr}})
	s := linkedBus(t, bus.WithName("s"), bus.WithTransport(sT))
	var received, ended atomic.Int32
	if _, err := s.Register("sink", bus.ActorFunc(func(c *bus.Context, msg any) error {
		switch m := msg.(type) {
		case *bus.Stream:
			received.Add(1)
			go func() {
				<-m.Context().Done()
				ended.Add(1)
			}()
		case string:
			c.Reply(m)
		}
		return nil
	})); err != nil {
		t.Fatal(err)
	}
	cT := newFenceless(netbus.Config{Peers: sT.Addrs()[:1]})
	c := linkedBus(t, bus.WithName("c"), bus.WithTransport(cT))
	waitFor(t, c, "sink")
	cT.armed.Store(true)
	if err := c.Connect(unixAddr); err != nil {
		t.Fatal(err)
	}
	// Once a tell goes on the Unix link, C has switched to it; S holds it
	// and all that follows on that link.
	eventually(t, "C sending on its Unix link", func() error {
		if err := c.Tell("sink", 1); err != nil {
			return err
		}
		if cT.count("unix", bus.KindTell) == 0 {
			return errors.New("tells still go on TCP")
		}
		return nil
	})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	st, err := c.OpenStream(ctx, "sink", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close(nil)
	askErr := make(chan error, 1)
	go func() {
		_, err := c.Ask(ctx, "sink", "held")
		askErr <- err
	}()
	eventually(t, "the open and the ask sent on the Unix link", func() error {
		if cT.count("unix", bus.KindStreamItem) == 0 || cT.count("unix", bus.KindAsk) == 0 {
			return errors.New("not yet")
		}
		return nil
	})
	if n := received.Load(); n != 0 {
		t.Fatalf("the sink got %d streams while S held its link", n)
	}
	cT.link("unix").Close(errors.New("test: the nearer link goes down"))
	if err := <-askErr; !errors.Is(err, bus.ErrPeerGone) {
		t.Fatalf("the held ask: %v, want ErrPeerGone", err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for received.Load() == 0 || ended.Load() != received.Load() {
		if time.Now().After(deadline) {
			t.Fatalf("the sink got %d streams on the link that went down and %d of them ended", received.Load(), ended.Load())
		}
		time.Sleep(time.Millisecond)
	}
}
