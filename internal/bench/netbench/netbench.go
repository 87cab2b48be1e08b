package netbench

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"

	"github.com/xbus-dev/xbus/bus"
	"github.com/xbus-dev/xbus/netbus"
)

// PeerName names the peer process to benchkit.ServePeer; its value is the
// raw echoes' message size and a directory for the Unix sockets, as
// "size:dir".
const PeerName = "netbench"

// PeerProfileEnv names the environment variable that, set to a file's
// path, makes the peer process write a CPU profile of its run there: the
// receiving side of BenchmarkTellTwoProcesses, the serving side of
// BenchmarkAskTwoProcesses.
const PeerProfileEnv = "XBUS_NETBENCH_PEER_CPUPROFILE"

// size is the body of an ask, in bytes.
const size = 64

// quiet keeps the buses from logging into the table.
var quiet = bus.WithLogger(slog.New(slog.DiscardHandler))

// echo answers every ask with its message.
var echo = bus.ActorFunc(func(c *bus.Context, msg any) error {
	if !c.IsAsk() {
		return nil
	}
	return c.Reply(msg)
})

// Peer is the peer: on TCP loopback and on Unix sockets in dir it serves
// a raw echo, a raw echo with a hand-off, a raw stream sink (streamSink),
// and a bus with the actors "echo", "echo-inline" and those of sinkActors.
// It prints "ready" and its addresses, and returns when stdin closes.
func Peer(arg string) int {
	fail := func(err error) int { fmt.Fprintln(os.Stderr, "netbench peer:", err); return 1 }
	if path := os.Getenv(PeerProfileEnv); path != "" {
		f, err := os.Create(path)
		if err != nil {
			return fail(err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return fail(err)
		}
		defer pprof.StopCPUProfile()
	}
	n, dir, _ := strings.Cut(arg, ":")
	frameSize, err := strconv.Atoi(n)
	if err != nil {
		return fail(fmt.Errorf("%s %q: %v", PeerName, arg, err))
	}
	var addrs []string
	for _, network := range []string{"tcp", "unix"} {
		serves := []func(net.Conn){
			func(s net.Conn) { RawEcho(s, frameSize, false) },
			func(s net.Conn) { RawEcho(s, frameSize, true) },
			streamSink,
		}
		for i, serve := range serves {
			addr := "127.0.0.1:0"
			if network == "unix" {
				addr = filepath.Join(dir, fmt.Sprintf("raw%d.sock", i))
			}
			ln, err := net.Listen(network, addr)
			if err != nil {
				return fail(err)
			}
			defer ln.Close()
			go func() {
				for {
					s, err := ln.Accept()
					if err != nil {
						return
					}
					go func() { defer s.Close(); serve(s) }()
				}
			}()
			addrs = append(addrs, network+"://"+ln.Addr().String())
		}
	}
	t := netbus.New(netbus.Config{Listen: []string{"tcp://127.0.0.1:0", "unix://" + filepath.Join(dir, "bus.sock")}})
	b, err := bus.New(bus.WithName("netbench-peer"), bus.WithTransport(t), quiet)
	if err != nil {
		return fail(err)
	}
	defer b.Close(context.Background())
	b.Register("echo", echo)
	b.Register("echo-inline", echo, bus.WithInline())
	sinkActors(b)
	// Per kind of socket, in this order: the raw echo, the hand-off echo,
	// the stream sink, the bus (startPeer groups them by their scheme).
	fmt.Println("ready", strings.Join(append(addrs, t.Addrs()...), " "))
	io.Copy(io.Discard, os.Stdin)
	return 0
}

// askFrameSize is an ask's frame on the wire for a size-byte body, which
// the raw echoes exchange instead: BenchPair measures it.
var askFrameSize = sync.OnceValues(func() (int, error) {
	p, err := NewBenchPair("tcp://127.0.0.1:0", size)
	if err != nil {
		return 0, err
	}
	defer p.Close()
	return p.FrameSize, nil
})
