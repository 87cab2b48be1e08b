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
)

// Three node processes serving one name, found through the runtime
// directory with no link configured: asks by name reach all three over
// shared memory (over Unix sockets with shared memory disabled); a SIGKILLed
// node leaves the table, every ask in flight to it returns (a reply, or
// ErrPeerGone), none hangs, the two others take the load; a node started
// again in its place is used.
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
	var errs []error
	count := func(pid string) int {
		mu.Lock()
		defer mu.Unlock()
		return answers[pid]
	}
	var stop atomic.Bool
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for !stop.Load() {
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				r, err := me.Ask(ctx, "svc", "x")
				cancel()
				mu.Lock()
				if err == nil {
					answers[r.(string)]++
				} else if !errors.Is(err, bus.ErrNoRoute) { // before the first link is up
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
	gone := 0
	for _, err := range errs {
		if !errors.Is(err, bus.ErrPeerGone) {
			t.Errorf("an ask failed with %v; want a reply or ErrPeerGone", err)
		}
		gone++
	}
	t.Logf("%s: killed node left the table %v after SIGKILL; asks failed with ErrPeerGone: %d; answers per node %v",
		scheme, left.Round(time.Millisecond), gone, answers)
}
