package bus_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/xbus-dev/xbus/bus"
)

// TestRemoteWatchSeesStopWhileNodeLives: a watcher of an actor on another
// node hears of its stop while that node runs on, and of an actor that was
// never there at once; the node's loss is not needed.
func TestRemoteWatchSeesStopWhileNodeLives(t *testing.T) {
	server, addrs := tcpServer(t, orderTypes(t))
	client := tcpClient(t, orderTypes(t), addrs)
	target, err := server.Register("target", bus.ActorFunc(func(*bus.Context, any) error { return nil }))
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, client, "target")
	missing := bus.Ref{Node: server.NodeID(), Name: "missing", ID: 1 << 40}
	terminated, watching := spawnWatcher(t, client, func(c *bus.Context) {
		c.Watch(target)
		c.Watch(missing)
	})
	next := func(what string) bus.Terminated {
		t.Helper()
		select {
		case m := <-terminated:
			return m
		case <-time.After(10 * time.Second):
			t.Fatalf("no Terminated for %s while its node lives", what)
		}
		return bus.Terminated{}
	}
	if m := next("an actor that was never there"); m.Ref != missing || !errors.Is(m.Reason, bus.ErrNoRoute) {
		t.Fatalf("watching a missing actor: %+v", m)
	}
	// The watch of the target reached the server before the target stops:
	// the notices go in order, and the answer to the one queued after it
	// has come back.
	<-watching
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := server.Stop(target); err != nil {
		t.Fatal(err)
	}
	if m := next("a stopped actor"); m.Ref != target || m.Reason != nil {
		t.Fatalf("watching a stopped actor: %+v", m)
	}
	if _, err := server.Ask(ctx, "target", 1); !errors.Is(err, bus.ErrNoRoute) {
		t.Fatalf("target still routed: %v", err)
	}
}

// TestRemoteUnwatch: after Unwatch, the remote actor's stop is not
// reported; a watch still held is.
func TestRemoteUnwatch(t *testing.T) {
	server, client := linkedPair(t)
	idle := bus.ActorFunc(func(*bus.Context, any) error { return nil })
	dropped, _ := server.Register("dropped", idle)
	kept, _ := server.Register("kept", idle)
	waitFor(t, client, "kept")
	terminated, watching := spawnWatcher(t, client, func(c *bus.Context) {
		c.Watch(dropped)
		c.Watch(kept)
		c.Unwatch(dropped)
	})
	<-watching
	// Stopped in this order, the notices come in this order on the link.
	if err := server.Stop(dropped); err != nil {
		t.Fatal(err)
	}
	if err := server.Stop(kept); err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-terminated:
		if m.Ref != kept {
			t.Fatalf("first Terminated is for %v, want %v (the other was unwatched)", m.Ref, kept)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no Terminated for the actor still watched")
	}
}

// spawnWatcher spawns on b an actor that, once started, calls watch and then
// closes watching; it passes on every Terminated it gets (up to two held).
func spawnWatcher(t *testing.T, b *bus.Bus, watch func(c *bus.Context)) (terminated <-chan bus.Terminated, watching <-chan struct{}) {
	t.Helper()
	term := make(chan bus.Terminated, 2)
	w := make(chan struct{})
	if _, err := b.Spawn(bus.ActorFunc(func(c *bus.Context, msg any) error {
		switch m := msg.(type) {
		case bus.Started:
			watch(c)
			close(w)
		case bus.Terminated:
			term <- m
		}
		return nil
	})); err != nil {
		t.Fatal(err)
	}
	return term, w
}

// TestEndedWatcherIsForgotten: an actor that watches another, on another
// node or on its own, and then stops is no longer held as its watcher; a
// watcher that lives on is. Before, each short-lived watcher of a
// long-lived actor stayed in its list for good, a leak without bound.
func TestEndedWatcherIsForgotten(t *testing.T) {
	server, client := linkedPair(t)
	idle := bus.ActorFunc(func(*bus.Context, any) error { return nil })
	remote, err := server.Register("remote", idle)
	if err != nil {
		t.Fatal(err)
	}
	local, err := client.Register("local", idle)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, client, "remote")
	terminated, watching := spawnWatcher(t, client, func(c *bus.Context) {
		c.Watch(remote)
		c.Watch(local)
	})
	<-watching
	const n = 200
	var watched sync.WaitGroup
	watched.Add(n)
	for range n {
		if _, err := client.Spawn(bus.ActorFunc(func(c *bus.Context, msg any) error {
			if _, ok := msg.(bus.Started); ok {
				c.Watch(remote)
				c.Watch(local)
				c.Watch(remote) // twice: both go
				c.Stop()
				watched.Done()
			}
			return nil
		})); err != nil {
			t.Fatal(err)
		}
	}
	watched.Wait()
	for _, ref := range []bus.Ref{remote, local} {
		eventually(t, "the ended watchers of "+ref.Name+" forgotten", func() error {
			if w := bus.Watchers(client, ref); w != 1 {
				return fmt.Errorf("%d watchers of %s held, want the one alive", w, ref)
			}
			return nil
		})
	}
	if err := server.Stop(remote); err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-terminated:
		if m.Ref != remote {
			t.Fatalf("Terminated for %v, want %v", m.Ref, remote)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the watcher alive had no Terminated for the remote actor")
	}

	// A watcher that lives on keeps no record of the actors it watched
	// once their Terminated came.
	ends := make(chan struct{}, n)
	var watcher bus.Ref
	watcher, err = client.Spawn(bus.ActorFunc(func(c *bus.Context, msg any) error {
		switch m := msg.(type) {
		case bus.Ref:
			c.Watch(m)
		case bus.Terminated:
			ends <- struct{}{}
		}
		return nil
	}))
	if err != nil {
		t.Fatal(err)
	}
	for range n {
		ref, err := server.Spawn(idle)
		if err != nil {
			t.Fatal(err)
		}
		if err := client.Tell(watcher, ref); err != nil {
			t.Fatal(err)
		}
		if err := server.Stop(ref); err != nil {
			t.Fatal(err)
		}
	}
	for i := range n {
		select {
		case <-ends:
		case <-time.After(10 * time.Second):
			t.Fatalf("%d of %d Terminated came", i, n)
		}
	}
	if w := bus.Watching(client, watcher); w != 0 {
		t.Fatalf("the watcher holds %d watches of actors whose Terminated came", w)
	}
}
