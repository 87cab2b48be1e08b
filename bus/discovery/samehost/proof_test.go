//go:build linux

package samehost_test

import (
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/xbus-dev/xbus/bus"
	"github.com/xbus-dev/xbus/bus/discovery/samehost"
	"github.com/xbus-dev/xbus/bus/placement"
)

// Three node processes serving one name, found through the runtime
// directory with no link configured: asks by name reach all three over
// shared memory (over Unix sockets with shared memory disabled); a SIGKILLed
// node leaves the table, every ask in flight to it returns, none hangs: an
// idempotent one is placed again on a live node, any other gets a reply or
// ErrPeerGone; the two others take the load; a node started again in its
// place is used.
func TestThreeNodesFoundKilledRestarted(t *testing.T) {
	for _, k := range []struct {
		name    string
		sockets bool
		scheme  string
	}{{"shm", false, "shm"}, {"sockets", true, "unix"}} {
		t.Run(k.name, func(t *testing.T) { threeNodes(t, k.sockets, k.scheme) })
	}
}

func threeNodes(t *testing.T, sockets bool, scheme string) {
	dir := filepath.Join(t.TempDir(), "xbus")
	env := []string{delayEnv + "=1ms"}
	if sockets {
		env = append(env, socketsEnv+"=1")
	}
	kids := []*child{spawn(t, dir, env...), spawn(t, dir, env...), spawn(t, dir, env...)}
	me, err := newNode(dir, sockets, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer me.Close(context.Background())

	var mu sync.Mutex
	answers := map[string]int{} // pid → asks it answered
	var errs []error            // of the asks not marked idempotent
	var idemErrs []error        // of those marked idempotent
	count := func(pid string) int {
		mu.Lock()
		defer mu.Unlock()
		return answers[pid]
	}
	var stop atomic.Bool
	var wg sync.WaitGroup
	for i := range 8 {
		idem := i%2 == 0
		wg.Go(func() {
			for !stop.Load() {
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				if idem {
					ctx = bus.WithIdempotent(ctx)
				}
				r, err := me.Ask(ctx, "svc", "x")
				cancel()
				mu.Lock()
				switch {
				case err == nil:
					answers[r.(string)]++
				case errors.Is(err, bus.ErrNoRoute): // before the first link is up
				case idem:
					idemErrs = append(idemErrs, err)
				default:
					errs = append(errs, err)
				}
				mu.Unlock()
				if err != nil {
					time.Sleep(time.Millisecond)
				}
			}
		})
	}
	defer func() { stop.Store(true); wg.Wait() }()

	for _, k := range kids {
		waitUntil(t, "every node answers", func() bool { return count(k.pid) >= 20 })
	}
	// Every link is of the scheme, and every address kept linked was found
	// in the directory (a link a peer dialed has none).
	for _, l := range me.Links() {
		if l.Scheme != scheme || (l.Addr != "" && !strings.HasPrefix(l.Addr, scheme+"://"+dir+"/")) {
			t.Errorf("link %+v: want %s to an address found in %s", l, scheme, dir)
		}
	}

	dead := kids[0]
	dead.cmd.Process.Signal(syscall.SIGKILL)
	killed := time.Now()
	dead.cmd.Wait()
	waitUntil(t, "the killed node leaves the table", func() bool {
		return !slices.ContainsFunc(me.Instances("svc"), func(r bus.Ref) bool { return r.Node.String() == dead.id })
	})
	left := time.Since(killed)
	for _, k := range kids[1:] {
		n := count(k.pid)
		waitUntil(t, "the others take the load", func() bool { return count(k.pid) >= n+50 })
	}
	waitUntil(t, "the killed node's entry removed", func() bool { return !exists(filepath.Join(dir, dead.id+".node")) })

	again := spawn(t, dir, env...)
	waitUntil(t, "the restarted node is used", func() bool { return count(again.pid) >= 20 })
	stop.Store(true)
	wg.Wait()

	mu.Lock()
	defer mu.Unlock()
	for _, err := range errs {
		if !errors.Is(err, bus.ErrPeerGone) {
			t.Errorf("an ask failed with %v; want a reply or ErrPeerGone", err)
		}
	}
	for _, err := range idemErrs {
		t.Errorf("an idempotent ask failed with %v; want it placed again on a live node", err)
	}
	t.Logf("%s: killed node left the table %v after SIGKILL; asks failed with ErrPeerGone: %d (idempotent ones: %d); answers per node %v",
		scheme, left.Round(time.Millisecond), len(errs), len(idemErrs), answers)
}

// Three node processes serving one name, found through the runtime
// directory, one of them slow: least connections sends the slow one fewer
// asks than round robin does, and fewer than each fast one; over shared
// memory and over Unix sockets. Counts are compared, not times.
func TestSlowNodeGetsFewerAsksAcrossProcesses(t *testing.T) {
	for _, sockets := range []bool{false, true} {
		name := map[bool]string{false: "shm", true: "sockets"}[sockets]
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "xbus")
			var env []string
			if sockets {
				env = append(env, socketsEnv+"=1")
			}
			slow := spawn(t, dir, append(env, delayEnv+"=20ms")...)
			spawn(t, dir, env...)
			spawn(t, dir, env...)
			run := func(s placement.Strategy) map[string]int {
				b, err := bus.New(bus.WithLogger(slog.New(slog.DiscardHandler)),
					samehost.Enable(samehost.Config{Dir: dir, Interval: interval, Sockets: sockets}), bus.WithPlacementFor("svc", s))
				if err != nil {
					t.Fatal(err)
				}
				defer b.Close(context.Background())
				waitUntil(t, "three instances, one link each", func() bool { return len(b.Instances("svc")) == 3 && settled(b, 3) })
				var mu sync.Mutex
				got := map[string]int{}
				var wg sync.WaitGroup
				for range 6 {
					wg.Go(func() {
						for range 40 {
							ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
							r, err := b.Ask(ctx, "svc", "x")
							cancel()
							if err != nil {
								t.Error(err)
								return
							}
							mu.Lock()
							got[r.(string)]++
							mu.Unlock()
						}
					})
				}
				wg.Wait()
				return got
			}
			lc, rr := run(placement.LeastConnections{}), run(placement.RoundRobin{})
			t.Logf("%s: slow node %s; least connections %v, round robin %v", name, slow.pid, lc, rr)
			if !(lc[slow.pid] < rr[slow.pid]) {
				t.Errorf("the slow node got %d asks under least connections, %d under round robin", lc[slow.pid], rr[slow.pid])
			}
			for pid, n := range lc {
				if pid != slow.pid && !(lc[slow.pid] < n) {
					t.Errorf("least connections: the slow node got %d asks, node %s %d", lc[slow.pid], pid, n)
				}
			}
			if len(lc) != 3 || len(rr) != 3 {
				t.Errorf("not every node answered: %v, %v", lc, rr)
			}
		})
	}
}

// settled reports whether b has exactly one link up to each of n peers and
// nothing else: no duplicate still being retired, no address still dialing.
func settled(b *bus.Bus, n int) bool {
	peers := map[bus.NodeID]bool{}
	ls := b.Links()
	for _, l := range ls {
		if l.State != bus.LinkReady {
			return false
		}
		peers[l.Peer] = true
	}
	return len(peers) == n && len(ls) == n
}
