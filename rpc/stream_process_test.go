package rpc_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/xbus-dev/xbus/bus"
	"github.com/xbus-dev/xbus/netbus"
	"github.com/xbus-dev/xbus/rpc"
	"github.com/xbus-dev/xbus/shmbus"
)

// processTransports are the transports between processes: the listening
// and the dialing end's, from an address the listening end prints.
var processTransports = []struct {
	name   string
	listen func(dir string) bus.Transport
	addr   func(bus.Transport, string) string
	dial   func(addr string) bus.Transport
}{
	{"shm",
		func(dir string) bus.Transport {
			return shmbus.New(shmbus.Config{Listen: filepath.Join(dir, "shm.sock")})
		},
		func(_ bus.Transport, dir string) string { return filepath.Join(dir, "shm.sock") },
		func(addr string) bus.Transport { return shmbus.New(shmbus.Config{Dial: []string{addr}}) }},
	{"unix",
		func(dir string) bus.Transport {
			return netbus.New(netbus.Config{Listen: []string{"unix://" + filepath.Join(dir, "n.sock")}})
		},
		func(tr bus.Transport, _ string) string { return tr.(*netbus.Transport).Addrs()[0] },
		func(addr string) bus.Transport { return netbus.New(netbus.Config{Peers: []string{addr}}) }},
	{"tcp",
		func(string) bus.Transport { return netbus.New(netbus.Config{Listen: []string{"tcp://127.0.0.1:0"}}) },
		func(tr bus.Transport, _ string) string { return tr.(*netbus.Transport).Addrs()[0] },
		func(addr string) bus.Transport { return netbus.New(netbus.Config{Peers: []string{addr}}) }},
}

func processTransport(name string) (listen func(string) bus.Transport, addr func(bus.Transport, string) string, dial func(string) bus.Transport) {
	for _, p := range processTransports {
		if p.name == name {
			return p.listen, p.addr, p.dial
		}
	}
	panic("no transport " + name)
}

var quietLog = slog.New(slog.NewTextHandler(io.Discard, nil))

// helperMain is the peer process. "server": it listens on
// RPC_TEST_TRANSPORT in RPC_TEST_DIR, serves "ticks" (a server stream of
// ticks until its stream ends), prints "ADDR <address>" and serves until
// stdin closes. "client": it dials RPC_TEST_ADDR, opens a stream to "feed"
// there, prints "READING" once the first item arrived, and reads on.
func helperMain(mode string) int {
	listen, addrOf, dial := processTransport(os.Getenv("RPC_TEST_TRANSPORT"))
	var tr bus.Transport
	if mode == "server" {
		tr = listen(os.Getenv("RPC_TEST_DIR"))
	} else {
		tr = dial(os.Getenv("RPC_TEST_ADDR"))
	}
	b, err := bus.New(bus.WithName("helper-"+mode), bus.WithTransport(tr), bus.WithLogger(quietLog))
	_ = bus.RegisterType[Blast](b.Types(), "rpc_test.Blast")
	_ = bus.RegisterType[Tick](b.Types(), "rpc_test.Tick")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer b.Close(context.Background())
	switch mode {
	case "server":
		if _, err := rpc.HandleServerStream(b, "ticks", func(ctx context.Context, w Watch, send func(Tick) error) error {
			for i := 0; ; i++ {
				if err := send(Tick{i}); err != nil {
					return err
				}
			}
		}); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		// blast tells its asker's sink N ticks, the baseline of stream
		// throughput across the link (stream_bench_test.go).
		if _, err := b.Register("blast", bus.ActorFunc(func(c *bus.Context, msg any) error {
			bl, ok := msg.(Blast)
			if !ok {
				return nil
			}
			for i := range bl.N {
				if err := b.Tell(bl.To, Tick{i}); err != nil {
					return c.Reply(err.Error())
				}
			}
			return c.Reply("")
		})); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		fmt.Printf("ADDR %s\n", addrOf(tr, os.Getenv("RPC_TEST_DIR")))
		io.Copy(io.Discard, os.Stdin)
	case "client":
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := b.WaitFor(ctx, "feed"); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		first := true
		for _, err := range rpc.CallServerStream[Tick](ctx, b, "feed", Watch{}, rpc.StreamWindow(4)) {
			if err != nil {
				fmt.Fprintln(os.Stderr, err)
				return 1
			}
			if first {
				fmt.Println("READING")
				first = false
			}
			time.Sleep(time.Millisecond) // a slow reader: the feed waits on its credit
		}
	}
	return 0
}

// startHelper starts the test binary as a peer process in mode and
// returns it and the first line it prints.
func startHelper(t testing.TB, mode, transport string, env ...string) (*exec.Cmd, string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), append([]string{"RPC_TEST_HELPER=" + mode, "RPC_TEST_TRANSPORT=" + transport}, env...)...)
	cmd.Stderr = os.Stderr
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stdin.Close()
		cmd.Process.Kill()
		cmd.Wait()
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("the %s process said %q: %v", mode, line, err)
	}
	return cmd, strings.TrimSpace(line)
}

// TestStreamPeerKilled kills a peer process mid-stream, over shared
// memory, a Unix socket and TCP: when the handler's process dies, the
// caller's range ends with ErrPeerGone; when the caller's process dies,
// the handler's send fails with ErrPeerGone and its ctx ends. Neither side
// hangs.
func TestStreamPeerKilled(t *testing.T) {
	for _, pt := range processTransports {
		if pt.name == "shm" && runtime.GOOS != "linux" {
			continue
		}
		t.Run(pt.name+"/handler killed", func(t *testing.T) {
			dir := t.TempDir()
			cmd, line := startHelper(t, "server", pt.name, "RPC_TEST_DIR="+dir)
			addr, ok := strings.CutPrefix(line, "ADDR ")
			if !ok {
				t.Fatalf("the server process said %q", line)
			}
			b := newBus(t, bus.WithTransport(pt.dial(addr)), bus.WithLogger(quietLog))
			ctx := ctxFor(t)
			if err := b.WaitFor(ctx, "ticks"); err != nil {
				t.Fatal(err)
			}
			n := 0
			var last error
			for tick, err := range rpc.CallServerStream[Tick](ctx, b, "ticks", Watch{}, rpc.StreamWindow(8)) {
				if err != nil {
					last = err
					break
				}
				if tick.Seq != n {
					t.Fatalf("tick %d, want %d", tick.Seq, n)
				}
				if n++; n == 100 {
					cmd.Process.Kill()
				}
			}
			if !errors.Is(last, bus.ErrPeerGone) {
				t.Fatalf("after %d ticks the stream ended with %v, want ErrPeerGone", n, last)
			}
		})
		t.Run(pt.name+"/caller killed", func(t *testing.T) {
			dir := t.TempDir()
			tr := pt.listen(dir)
			b := newBus(t, bus.WithTransport(tr), bus.WithLogger(quietLog))
			ended := make(chan error, 1)
			if _, err := rpc.HandleServerStream(b, "feed", func(ctx context.Context, w Watch, send func(Tick) error) error {
				for i := 0; ; i++ {
					if err := send(Tick{i}); err != nil {
						<-ctx.Done()
						ended <- err
						return err
					}
				}
			}); err != nil {
				t.Fatal(err)
			}
			cmd, line := startHelper(t, "client", pt.name, "RPC_TEST_ADDR="+pt.addr(tr, dir))
			if line != "READING" {
				t.Fatalf("the client process said %q", line)
			}
			cmd.Process.Kill()
			select {
			case err := <-ended:
				if !errors.Is(err, bus.ErrPeerGone) {
					t.Fatalf("the handler's send failed with %v, want ErrPeerGone", err)
				}
			case <-ctxFor(t).Done():
				t.Fatal("the handler's stream never ended")
			}
		})
	}
}
