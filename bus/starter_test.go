package bus

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// hang bounds a wait that would otherwise hang a broken test; it is no
// speed limit.
const hang = 20 * time.Second

// TestStartedBeforeFirstMessage spawns actors in a burst, each told a
// message by its Ref (and the named ones by their name too) the moment
// Spawn returns, from the spawner and from another goroutine, and checks
// that every actor sees Started before anything else.
func TestStartedBeforeFirstMessage(t *testing.T) {
	b := newBus(t)
	const n = 1000
	var bad atomic.Int64
	var got sync.WaitGroup
	got.Add(2 * n)
	refs := make(chan Ref, n)
	actor := func() Actor {
		started := false
		return ActorFunc(func(_ *Context, m any) error {
			switch m.(type) {
			case Started:
				started = true
			case Stopping:
			default:
				if !started {
					bad.Add(1)
				}
				got.Done()
			}
			return nil
		})
	}
	go func() {
		for ref := range refs {
			if err := b.Tell(ref, "other"); err != nil {
				panic(err)
			}
		}
	}()
	for i := range n {
		var to any
		var ref Ref
		var err error
		if i%2 == 0 {
			name := fmt.Sprintf("s%d", i)
			ref, err = b.Register(name, actor())
			to = name
		} else {
			ref, err = b.Spawn(actor())
			to = ref
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := b.Tell(to, "first"); err != nil {
			t.Fatal(err)
		}
		refs <- ref
	}
	close(refs)
	waitGroup(t, &got, "every actor's two messages")
	if k := bad.Load(); k != 0 {
		t.Fatalf("%d messages of %d ran before their actor's Started", k, 2*n)
	}
}

// TestBlockedStartedHoldsNoOther: while one actor's Started blocks, actors
// spawned after it still get theirs, and an actor whose Started waits for
// the Started of an actor it spawned there, top-level or its child, gets
// it.
func TestBlockedStartedHoldsNoOther(t *testing.T) {
	b := newBus(t)
	release := make(chan struct{})
	blocked := make(chan struct{})
	if _, err := b.Spawn(ActorFunc(func(_ *Context, m any) error {
		if _, ok := m.(Started); ok {
			close(blocked)
			<-release
		}
		return nil
	})); err != nil {
		t.Fatal(err)
	}
	<-blocked
	const n = 200
	var started sync.WaitGroup
	started.Add(n)
	for range n {
		if _, err := b.Spawn(ActorFunc(func(_ *Context, m any) error {
			if _, ok := m.(Started); ok {
				started.Done()
			}
			return nil
		})); err != nil {
			t.Fatal(err)
		}
	}
	waitGroup(t, &started, "the Started of actors spawned behind a blocked one")

	// An actor whose Started waits for the Started of another it spawns,
	// top-level or its child.
	for _, child := range []bool{false, true} {
		otherUp := make(chan struct{})
		waited := make(chan error, 1)
		other := ActorFunc(func(_ *Context, m any) error {
			if _, ok := m.(Started); ok {
				close(otherUp)
			}
			return nil
		})
		if _, err := b.Spawn(ActorFunc(func(c *Context, m any) error {
			if _, ok := m.(Started); !ok {
				return nil
			}
			var err error
			if child {
				_, err = c.Spawn("", other)
			} else {
				_, err = b.Spawn(other)
			}
			if err == nil {
				select {
				case <-otherUp:
				case <-time.After(hang):
					err = fmt.Errorf("the Started of the actor it spawned (a child: %v) never ran while Started waited for it", child)
				}
			}
			waited <- err
			return nil
		})); err != nil {
			t.Fatal(err)
		}
		if err := <-waited; err != nil {
			t.Fatal(err)
		}
	}
	close(release)
}

// TestStartedAsksParent: children whose Started asks their parent, and
// waits for the answer, all get it; the parent answers once its own turn,
// the one that spawned them, has ended.
func TestStartedAsksParent(t *testing.T) {
	b := newBus(t)
	const n = 50
	answers := make(chan error, n)
	if _, err := b.Spawn(ActorFunc(func(c *Context, m any) error {
		switch m.(type) {
		case Started:
			parent := c.Self()
			for range n {
				if _, err := c.Spawn("", ActorFunc(func(_ *Context, m any) error {
					if _, ok := m.(Started); ok {
						ctx, cancel := context.WithTimeout(context.Background(), hang)
						defer cancel()
						r, err := b.Ask(ctx, parent, "hello")
						if err == nil && r != "welcome" {
							err = fmt.Errorf("the parent answered %v", r)
						}
						answers <- err
					}
					return nil
				})); err != nil {
					return err
				}
			}
		case string:
			c.Reply("welcome")
		}
		return nil
	})); err != nil {
		t.Fatal(err)
	}
	for range n {
		select {
		case err := <-answers:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(hang):
			t.Fatal("a child asking its parent from Started got no answer")
		}
	}
}

// TestCloseDuringSpawnBurst closes the bus while a goroutine spawns as fast
// as it can, some actors' Started blocking for a while: Close returns
// without error once every actor that was spawned has started and
// stopped, and later spawns fail with ErrClosed.
func TestCloseDuringSpawnBurst(t *testing.T) {
	b, err := New()
	if err != nil {
		t.Fatal(err)
	}
	var started, stopped atomic.Int64
	actor := func(slow bool) Actor {
		return ActorFunc(func(_ *Context, m any) error {
			switch m.(type) {
			case Started:
				started.Add(1)
				if slow {
					time.Sleep(2 * time.Millisecond)
				}
			case Stopping:
				stopped.Add(1)
			}
			return nil
		})
	}
	spawned := make(chan int64, 1)
	some := make(chan struct{})
	go func() {
		var k int64
		for {
			if _, err := b.Spawn(actor(k%500 == 0)); err != nil {
				if !errors.Is(err, ErrClosed) {
					panic(err)
				}
				spawned <- k
				return
			}
			if k++; k == 2000 {
				close(some)
			}
		}
	}()
	<-some
	ctx, cancel := context.WithTimeout(context.Background(), hang)
	defer cancel()
	if err := b.Close(ctx); err != nil {
		t.Fatalf("Close during a spawn burst: %v", err)
	}
	k := <-spawned
	if s, e := started.Load(), stopped.Load(); s != k || e != k {
		t.Fatalf("%d actors spawned, %d started, %d stopped by Close", k, s, e)
	}
}

func waitGroup(t *testing.T, wg *sync.WaitGroup, what string) {
	t.Helper()
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(hang):
		t.Fatalf("waited %v for %s", hang, what)
	}
}
