package netbench

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/xbus-dev/xbus/bus"
	"github.com/xbus-dev/xbus/internal/benchkit"
	"github.com/xbus-dev/xbus/netbus"
)

// peer is a running peer process, with a client bus linked to it over each
// kind of socket.
type peer struct {
	child *benchkit.Peer // nil until started
	dir   string
	ends  map[string]*end // "TCP", "Unix"
}

// end is this process's side of one kind of socket to the peer.
type end struct {
	raw, floor *RawPinger
	stream     net.Conn // to the peer's streamSink
	bus        *bus.Bus
	body       []byte
}

// startPeer starts the peer process and links to it.
func startPeer() (_ *peer, err error) {
	frame, err := askFrameSize()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "netbench")
	if err != nil {
		return nil, err
	}
	p := &peer{dir: dir, ends: map[string]*end{}}
	defer func() {
		if err != nil {
			p.close()
		}
	}()
	if p.child, err = benchkit.StartPeer(PeerName, strconv.Itoa(frame)+":"+dir); err != nil {
		return nil, err
	}
	// "ready", then the raw echo, the hand-off echo, the stream sink and
	// the bus for each kind of socket.
	addrs := map[string][]string{}
	for _, a := range strings.Fields(p.child.Ready)[1:] {
		network, _, _ := strings.Cut(a, "://")
		addrs[network] = append(addrs[network], a)
	}
	for _, kind := range []string{"TCP", "Unix"} {
		a := addrs[strings.ToLower(kind)]
		if len(a) != 4 {
			return nil, fmt.Errorf("netbench: the peer's %s addresses: %q", kind, p.child.Ready)
		}
		e := &end{body: make([]byte, size)}
		p.ends[kind] = e
		if e.raw, err = dialPinger(a[0], frame, false); err != nil {
			return nil, err
		}
		if e.floor, err = dialPinger(a[1], frame, true); err != nil {
			return nil, err
		}
		network, sa, _ := strings.Cut(a[2], "://")
		if e.stream, err = net.Dial(network, sa); err != nil {
			return nil, err
		}
		t := netbus.New(netbus.Config{})
		if e.bus, err = bus.New(bus.WithName("netbench-"+strings.ToLower(kind)), bus.WithTransport(t), quiet); err != nil {
			return nil, err
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err = e.bus.Connect(a[3])
		for _, name := range []string{"echo", "echo-inline", "count", "cpu"} {
			for err == nil {
				if _, err = e.bus.Ask(ctx, name, e.body); errors.Is(err, bus.ErrNoRoute) && ctx.Err() == nil {
					time.Sleep(time.Millisecond) // the peer's names are on their way
					err = nil
					continue
				}
				break
			}
		}
		cancel()
		if err != nil {
			return nil, fmt.Errorf("netbench: %s link to the peer: %w", kind, err)
		}
	}
	return p, nil
}

func dialPinger(addr string, size int, handoff bool) (*RawPinger, error) {
	network, a, _ := strings.Cut(addr, "://")
	c, err := net.Dial(network, a)
	if err != nil {
		return nil, err
	}
	return NewRawPinger(c, size, handoff), nil
}

func (p *peer) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, e := range p.ends {
		for _, r := range []*RawPinger{e.raw, e.floor} {
			if r != nil {
				r.Close()
			}
		}
		if e.stream != nil {
			e.stream.Close()
		}
		if e.bus != nil {
			e.bus.Close(ctx)
		}
	}
	if p.child != nil {
		p.child.Stop()
	}
	os.RemoveAll(p.dir)
}

// samples are interleaved round trips over one kind of socket.
type samples struct{ raw, floor, ask, inline []time.Duration }

// measure makes rounds of four round trips until d has passed and at least
// rounds rounds are done: a raw ping-pong, the hand-off floor, an ask to
// "echo" and one to "echo-inline". Interleaving them round by round makes
// the machine's drift (on a small VM, its two CPUs move nearer and farther
// apart over minutes) hit all four alike.
func (e *end) measure(d time.Duration, rounds int) (samples, error) {
	var s samples
	ctx := context.Background()
	timed := func(to *[]time.Duration, f func() error) error {
		t0 := time.Now()
		err := f()
		*to = append(*to, time.Since(t0))
		return err
	}
	ask := func(name string) func() error {
		return func() error { _, err := e.bus.Ask(ctx, name, e.body); return err }
	}
	for start := time.Now(); len(s.ask) < rounds || time.Since(start) < d; {
		if err := errors.Join(
			timed(&s.raw, e.raw.Ping),
			timed(&s.floor, e.floor.Ping),
			timed(&s.ask, ask("echo")),
			timed(&s.inline, ask("echo-inline")),
		); err != nil {
			return s, err
		}
	}
	s.sort()
	return s, nil
}

func (s *samples) sort() {
	for _, l := range [][]time.Duration{s.raw, s.floor, s.ask, s.inline} {
		slices.Sort(l)
	}
}

// at is the q-quantile of sorted l.
func at(l []time.Duration, q float64) time.Duration { return l[int(q*float64(len(l)-1))] }
