//go:build linux

package netbus

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/xbus-dev/xbus/bus"
	"github.com/xbus-dev/xbus/bus/bustest"
	"github.com/xbus-dev/xbus/bus/placement"
	"golang.org/x/sys/unix"
)

// linkTo returns the link w watches up to peer.
func linkTo(t *testing.T, w *bustest.HandBacks, peer bus.NodeID) *link {
	l := w.LinkTo(peer)
	if l == nil {
		t.Fatalf("no link to %s", peer.Short())
	}
	return l.(*link)
}

// wroteAndQueued returns the data frames l's connections wrote whole, and
// the bytes waiting for their writers.
func (l *link) wroteAndQueued() (wrote uint64, queued int) {
	for _, c := range l.conns {
		c.mu.Lock()
		wrote += c.wrote
		queued += len(c.out)
		c.mu.Unlock()
	}
	return wrote, queued
}

// fixSendBuffers fixes each of l's sockets' send buffer at sendBuffer
// bytes: the kernel no longer grows it (TCP's autotuning grows it to
// tcp_wmem's largest, 4 MiB here), so the socket of a peer that reads
// nothing fills after a known amount.
func (l *link) fixSendBuffers(t *testing.T) {
	for _, c := range l.conns {
		if err := c.nc.(interface{ SetWriteBuffer(int) error }).SetWriteBuffer(sendBuffer); err != nil {
			t.Fatal(err)
		}
	}
}

// sendBuffer is the send buffer fixSendBuffers gives a socket: the kernel
// doubles it, and 64 KiB is less than half of MaxQueued's default.
const sendBuffer = 32 << 10

// sendsShut reports whether each of l's sockets can take at most its own
// send buffer more from the writer: over TCP, once the peer's receive
// window is shut (TCP_INFO); a Unix socket's peer holds nothing of its own.
func (l *link) sendsShut(t *testing.T) bool {
	for _, c := range l.conns {
		tc, ok := c.nc.(*net.TCPConn)
		if !ok {
			continue
		}
		rc, err := tc.SyscallConn()
		if err != nil {
			t.Fatal(err)
		}
		var info *unix.TCPInfo
		var getErr error
		if err := rc.Control(func(fd uintptr) { info, getErr = unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO) }); err != nil {
			t.Fatal(err)
		}
		if getErr != nil {
			t.Fatal(getErr)
		}
		if info.Snd_wnd != 0 {
			return false
		}
	}
	return true
}

// TestUnwrittenAsksPlacedAgain: a peer process stops (SIGSTOP) while asks
// by name are sent to it, so they fill the sockets and queue up unwritten
// behind them; then it is killed (SIGKILL: the kernel resets its sockets).
// Every ask its link never wrote is handed back before LinkDown and
// answered by the name's other instance, on another node; only asks the
// socket took, which may have run, fail, with ErrPeerGone, unless marked
// idempotent: then they too are answered by the other instance.
func TestUnwrittenAsksPlacedAgain(t *testing.T) {
	for _, idem := range []bool{false, true} {
		t.Run(fmt.Sprint("idempotent=", idem), func(t *testing.T) {
			network(t, func(t *testing.T, listen string) {
				unwrittenAsksPlacedAgain(t, listen, idem)
			})
		})
	}
}

func unwrittenAsksPlacedAgain(t *testing.T, listen string, idem bool) {
	a := startHelper(t, listen, "") // serves whoami, and will stop
	types := bus.NewTypes()
	registerTestTypes(types)
	bT := New(Config{Listen: []string{listenAgain(t, listen)}})
	b, err := bus.New(bus.WithName("b"), bus.WithTransport(bT), bus.WithTypes(types),
		bus.WithLogger(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close(context.Background())
	b.Register("whoami", bus.ActorFunc(func(c *bus.Context, msg any) error {
		if !c.IsAsk() {
			return nil
		}
		return c.Reply(c.Self())
	}))

	// The link to a is cut by the kill, not by the idle timeout.
	cT := bustest.WatchHandBacks(New(Config{HeartbeatInterval: 10 * time.Second, IdleTimeout: time.Minute}))
	var first atomic.Uint64 // the first attempt goes to a's instance, a retry elsewhere
	c, err := bus.New(bus.WithName("client"), bus.WithTransport(cT), bus.WithTypes(types),
		bus.WithPlacementFor("whoami", prefer(&first)), bus.WithRetryBudget(1e6, 1<<20),
		bus.WithLogger(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for _, addr := range []string{a.addr, bT.Addrs()[0]} {
		if _, err := cT.Dial(ctx, addr); err != nil {
			t.Fatal(err)
		}
	}
	var aNode bus.NodeID
	for aNode.IsZero() {
		if refs := c.Instances("whoami"); len(refs) == 2 {
			for _, r := range refs {
				if r.Node != b.NodeID() {
					aNode = r.Node
					first.Store(placement.HashID(r.Node, r.ID))
				}
			}
		}
		if ctx.Err() != nil {
			t.Fatal("the client never learned both instances of whoami")
		}
		time.Sleep(time.Millisecond)
	}
	aLink := linkTo(t, cT, aNode)
	aLink.fixSendBuffers(t)
	if err := a.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	waitStopped(t, a.cmd.Process.Pid)
	wroteBefore, _ := aLink.wroteAndQueued()

	// Asks go to a until its sockets are full and its writer's queue
	// holds at least half of MaxQueued, then a few more wait for room.
	// Full is what the kernel says: the socket's send buffer is fixed and
	// the peer's receive window shut, so at most that buffer (less than
	// half of MaxQueued) of the queue can still be written when a dies.
	// A queue seen half full while the socket still took bytes drained
	// into it before the kill, and no ask was left unwritten.
	askCtx := ctx
	if idem {
		askCtx = bus.WithIdempotent(ctx)
	}
	var (
		wg                  sync.WaitGroup
		fromB, fromA, other atomic.Int64
		peerGone            atomic.Int64
		firstOther          atomic.Value
	)
	ask := func() {
		r, err := bus.AskAs[bus.Ref](askCtx, c, "whoami", Payload{Data: make([]byte, 32<<10)})
		switch {
		case err == nil && r.Node == b.NodeID():
			fromB.Add(1)
		case err == nil:
			fromA.Add(1)
		case errors.Is(err, bus.ErrPeerGone) && !idem:
			peerGone.Add(1)
		default:
			other.Add(1)
			firstOther.CompareAndSwap(nil, err.Error())
		}
	}
	asks, more := 0, -1
	for ; asks < 5000 && more != 0; asks++ {
		wg.Go(ask)
		if more > 0 {
			more--
		} else if asks%16 == 15 {
			for range 100 { // let the writer take what it can
				if _, q := aLink.wroteAndQueued(); q >= aLink.t.cfg.MaxQueued/2 && aLink.sendsShut(t) {
					more = 32
					break
				}
				time.Sleep(time.Millisecond)
			}
		}
	}
	if more != 0 {
		t.Fatalf("%d asks did not fill the writer's queue", asks)
	}
	if err := a.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	a.cmd.Wait()

	wroteAfter, _ := aLink.wroteAndQueued()
	written := int64(wroteAfter - wroteBefore) // at most this many asks can have run
	before, after := cT.Counts(aLink)
	t.Logf("%d asks: %d written to a's socket, %d handed back unwritten; %d answered by b, %d failed with ErrPeerGone",
		asks, written, before+after, fromB.Load(), peerGone.Load())
	if after > 0 {
		t.Errorf("%d asks handed back after LinkDown: they failed instead of being placed again", after)
	}
	if before == 0 {
		t.Errorf("no ask was handed back: the test did not test re-placement")
	}
	if n := other.Load(); n > 0 {
		t.Errorf("%d asks ended otherwise, the first with %v", n, firstOther.Load())
	}
	if n := fromA.Load(); n > 0 {
		t.Errorf("%d asks answered by a stopped process", n)
	}
	if idem && fromB.Load() != int64(asks) {
		t.Errorf("idempotent: %d of %d asks answered by b", fromB.Load(), asks)
	}
	if n := peerGone.Load(); n > written {
		t.Errorf("%d asks failed with ErrPeerGone; only %d were written and may have run", n, written)
	}
	if fromB.Load()+peerGone.Load() != int64(asks) {
		t.Errorf("%d answered by b and %d failed of %d asks", fromB.Load(), peerGone.Load(), asks)
	}
}

// waitStopped waits until every thread of process pid is stopped: a
// signal is delivered after kill returns, and a thread running on another
// processor may read a few more frames first.
func waitStopped(t *testing.T, pid int) {
	deadline := time.Now().Add(time.Minute)
	for {
		tasks, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/stat", pid))
		if err != nil || len(tasks) == 0 {
			t.Fatalf("threads of %d: %v", pid, err)
		}
		running := 0
		for _, f := range tasks {
			b, err := os.ReadFile(f)
			// The state follows the command's closing parenthesis.
			if i := bytes.LastIndexByte(b, ')'); err == nil && (i < 0 || i+2 >= len(b) || b[i+2] != 'T') {
				running++
			}
		}
		if running == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d threads of %d still run after SIGSTOP", running, pid)
		}
		time.Sleep(time.Millisecond)
	}
}

// listenAgain returns another address of listen's kind.
func listenAgain(t *testing.T, listen string) string {
	if listen[:4] == "unix" {
		return "unix://" + t.TempDir() + "/b.sock"
	}
	return listen
}

// prefer places a call's first attempt on the instance whose ID is in
// first, and a later attempt on another.
func prefer(first *atomic.Uint64) placement.Strategy {
	return placement.Func(func(in []placement.Instance, c placement.Call) int {
		for i := range in {
			if (in[i].ID == first.Load()) == (c.Attempt == 0) {
				return i
			}
		}
		return 0
	})
}
