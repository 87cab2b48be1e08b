package rpc_test

import (
	"context"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/xbus-dev/xbus/bus"
	"github.com/xbus-dev/xbus/bus/bustest"
	"github.com/xbus-dev/xbus/codec"
	"github.com/xbus-dev/xbus/netbus"
	"github.com/xbus-dev/xbus/shmbus"
)

// TestTransports runs every row over each transport: in process, shared
// memory (shmbus), a Unix socket and TCP (netbus). Rows come from every
// file of the package (addRows), each feature's beside its handlers
// (addServe): one table, so that a feature is proved on every transport or
// not at all.
func TestTransports(t *testing.T) {
	for _, tr := range transports() {
		t.Run(tr.name, func(t *testing.T) {
			a, b := tr.make(t)
			p := &pair{A: a, B: b, Notes: make(chan Note, 1)}
			for _, serve := range serves {
				for _, n := range serve(t, p) {
					if err := a.WaitFor(ctxFor(t), n); err != nil {
						t.Fatalf("%s never reachable: %v", n, err)
					}
				}
			}
			for _, r := range rows {
				if r.remote && a == b {
					continue
				}
				t.Run(r.name, func(t *testing.T) { r.run(t, p) })
			}
		})
	}
}

// pair is the two nodes of one transport: A calls, B serves. In process
// they are one bus.
type pair struct {
	A, B  *bus.Bus
	Notes chan Note // what the "note" handler receives

	vals map[string]any // what a serve function leaves for its rows (set, get)
}

// set keeps v under key for the rows of this transport.
func (p *pair) set(key string, v any) {
	if p.vals == nil {
		p.vals = map[string]any{}
	}
	p.vals[key] = v
}

// get returns what set kept under key.
func get[T any](p *pair, key string) T { return p.vals[key].(T) }

// row is one feature TestTransports runs over every transport.
type row struct {
	name   string
	remote bool // needs two nodes: skipped in process
	run    func(t *testing.T, p *pair)
}

var (
	rows   []row
	serves []func(t *testing.T, p *pair) []string
)

// addRows adds rows to TestTransports, in the order given; a file calls it
// in a package-level var (var _ = addRows(...)).
func addRows(rs ...row) bool {
	rows = append(rows, rs...)
	return true
}

// addServe adds f, which registers handlers on p.B and returns their
// names, to what TestTransports runs once per transport before any row; A
// then waits until it reaches each name.
func addServe(f func(t *testing.T, p *pair) []string) bool {
	serves = append(serves, f)
	return true
}

// mustOK returns a check of a registration's (value, error) that fails t
// on the error.
func mustOK(t *testing.T) func(any, error) {
	return func(_ any, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
}

// transport builds two linked buses: A calls, B handles. In process they
// are one bus.
type transport struct {
	name string
	make func(t *testing.T) (a, b *bus.Bus)
}

func transports() []transport {
	ts := []transport{
		{"inproc", func(t *testing.T) (*bus.Bus, *bus.Bus) {
			b := newBus(t)
			return b, b
		}},
		{"unix", netPair(unixAddr, nil, nil)},
		{"tcp", netPair(tcpAddr, nil, nil)},
	}
	if runtime.GOOS == "linux" {
		ts = append(ts, transport{"shm", shmPair(nil, nil)})
	}
	return append(ts, mixedTransports()...)
}

func unixAddr(t *testing.T) string { return "unix://" + filepath.Join(t.TempDir(), "b.sock") }
func tcpAddr(*testing.T) string    { return "tcp://127.0.0.1:0" }

// mixedTransports are the remote transports with nodes whose transports
// prefer different codecs (Config.Codec), which agree on one in the
// handshake: A's dialing end names first, B's accepting end second.
func mixedTransports() []transport {
	gob := &countingCodec{name: "test-gob"} // a codec B lacks
	var ts []transport
	for _, c := range []struct {
		name string
		a, b bus.Codec
	}{
		{"json-cbor", codec.JSON, codec.Binary()},
		{"cbor-json", codec.Binary(), codec.JSON},
		{"gob-cbor", gob, codec.Binary()},
		{"json-gob", codec.JSON, gob},
	} {
		ts = append(ts,
			transport{"unix/" + c.name, netPair(unixAddr, c.a, c.b)},
			transport{"tcp/" + c.name, netPair(tcpAddr, c.a, c.b)})
		if runtime.GOOS == "linux" {
			ts = append(ts, transport{"shm/" + c.name, shmPair(c.a, c.b)})
		}
	}
	return ts
}

// shmPair links A (dialing, preferring codec a) to B (listening, b) over
// shared memory; a nil codec is the transport's default.
func shmPair(a, b bus.Codec) func(t *testing.T) (*bus.Bus, *bus.Bus) {
	return func(t *testing.T) (*bus.Bus, *bus.Bus) {
		path := filepath.Join(t.TempDir(), "b.sock")
		bb := bustest.NewBus(t, shmbus.New(shmbus.Config{Listen: path, Codec: b}), bus.WithName("b"))
		ab := bustest.NewBus(t, shmbus.New(shmbus.Config{Dial: []string{path}, Codec: a}), bus.WithName("a"))
		return ab, bb
	}
}

// newBus returns a bus without a transport, closed when t ends.
func newBus(t *testing.T, opts ...bus.Option) *bus.Bus {
	t.Helper()
	b, err := bus.New(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		b.Close(ctx)
	})
	return b
}

// netPair links A (dialing, preferring codec a) to B (listening, b) over
// a socket; a nil codec is the transport's default.
func netPair(listen func(*testing.T) string, ac, bc bus.Codec) func(t *testing.T) (*bus.Bus, *bus.Bus) {
	return func(t *testing.T) (*bus.Bus, *bus.Bus) {
		trB := netbus.New(netbus.Config{Listen: []string{listen(t)}, Codec: bc})
		b := bustest.NewBus(t, trB, bus.WithName("b"))
		a := bustest.NewBus(t, netbus.New(netbus.Config{Peers: trB.Addrs(), Codec: ac}), bus.WithName("a"))
		return a, b
	}
}

// ctxFor returns a context that ends with t, or after 20 s.
func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}
