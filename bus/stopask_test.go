package bus

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"
)

// TestStopAnswersAbandonedAsk: an actor that blocks in Receive on an ask
// made with a context that never ends, then is stopped: the ask counts as
// canceled for it, and once the stop gives up on it (its shutdown
// timeout) the asker gets ErrActorStopped, not marked as never delivered,
// and only that: the actor's late reply reaches nobody, not even the next
// ask made on the recycled call.
func TestStopAnswersAbandonedAsk(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, err := New()
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close(context.Background())
		running, release := make(chan struct{}), make(chan struct{})
		sawCancel := make(chan bool, 1)
		hook := make(chan struct{})
		stuck, err := b.Register("stuck", ActorFunc(func(c *Context, msg any) error {
			if msg != "work" {
				return nil
			}
			c.AfterCancel(func() { close(hook) })
			close(running)
			<-release
			sawCancel <- c.Canceled()
			return c.Reply("late")
		}), WithShutdownTimeout(time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := b.Register("echo", ActorFunc(func(c *Context, msg any) error {
			if s, ok := msg.(string); ok {
				return c.Reply(s)
			}
			return nil
		})); err != nil {
			t.Fatal(err)
		}
		type outcome struct {
			reply any
			err   error
		}
		got := make(chan outcome, 2)
		go func() {
			r, err := b.Ask(context.Background(), "stuck", "work")
			got <- outcome{r, err}
			// The next ask from here takes the call just recycled.
			r, err = b.Ask(context.Background(), "echo", "mine")
			got <- outcome{r, err}
		}()
		<-running
		stopped := make(chan struct{})
		go func() { _ = b.Stop(stuck); close(stopped) }()
		<-hook // AfterCancel runs as the stop begins, the actor still blocked
		o := <-got
		if !errors.Is(o.err, ErrActorStopped) || o.reply != nil {
			t.Fatalf("ask to an abandoned actor: %v, %v; want ErrActorStopped", o.reply, o.err)
		}
		if NeverDelivered(o.err) {
			t.Fatalf("%v is marked as never delivered; the actor was running it", o.err)
		}
		<-stopped
		o = <-got
		synctest.Wait()
		close(release)
		if !<-sawCancel {
			t.Fatal("Context.Canceled was false for an ask whose actor was stopped")
		}
		if o.err != nil || o.reply != "mine" {
			t.Fatalf("the next ask got %v, %v; want mine", o.reply, o.err)
		}
		synctest.Wait()
		select {
		case o := <-got:
			t.Fatalf("a second answer: %v, %v", o.reply, o.err)
		default:
		}
	})
}

// TestStopCancelsServedAsk: an actor waiting on AfterCancel for the ask it
// runs ends its work when it is stopped, and its asker gets its answer
// before the stop completes, long before the shutdown timeout.
func TestStopCancelsServedAsk(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, err := New()
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close(context.Background())
		running := make(chan struct{})
		ref, err := b.Register("waits", ActorFunc(func(c *Context, msg any) error {
			if msg != "work" {
				return nil
			}
			canceled := make(chan struct{})
			c.AfterCancel(func() { close(canceled) })
			close(running)
			<-canceled
			return c.Reply("gave up")
		}), WithShutdownTimeout(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() {
			r, err := b.Ask(context.Background(), "waits", "work")
			if err == nil && r != "gave up" {
				err = errors.New("wrong reply")
			}
			done <- err
		}()
		<-running
		start := time.Now()
		if err := b.Stop(ref); err != nil {
			t.Fatal(err)
		}
		if err := <-done; err != nil {
			t.Fatalf("ask: %v; want the actor's reply", err)
		}
		if time.Since(start) >= time.Hour { // synctest's clock: the stop did not wait out the timeout
			t.Fatal("the stop waited out its shutdown timeout")
		}
	})
}

// TestStopContext: an actor's StopContext is one context for all its
// messages, tells as well as asks; it ends when the actor is stopped, so
// an actor waiting on it in Receive for a tell lets the stop complete
// long before its shutdown timeout; made after the stop began, it has
// ended already.
func TestStopContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, err := New()
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close(context.Background())
		first := make(chan context.Context, 1)
		running := make(chan struct{})
		ended := make(chan error, 2)
		ref, err := b.Register("waits", ActorFunc(func(c *Context, msg any) error {
			switch msg {
			case "first":
				first <- c.StopContext()
			case "work":
				ctx := c.StopContext()
				if ctx != <-first {
					ended <- errors.New("a second StopContext")
				}
				close(running)
				<-ctx.Done()
				ended <- ctx.Err()
			}
			return nil
		}), WithShutdownTimeout(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		if err := b.Tell(ref, "first"); err != nil {
			t.Fatal(err)
		}
		if err := b.Tell(ref, "work"); err != nil {
			t.Fatal(err)
		}
		<-running
		start := time.Now()
		if err := b.Stop(ref); err != nil {
			t.Fatal(err)
		}
		if time.Since(start) >= time.Hour { // synctest's clock
			t.Fatal("the stop waited out its shutdown timeout")
		}
		if err := <-ended; !errors.Is(err, context.Canceled) {
			t.Fatalf("StopContext ended with %v, want context.Canceled", err)
		}

		release, lateRunning := make(chan struct{}), make(chan struct{})
		late, err := b.Register("late", ActorFunc(func(c *Context, msg any) error {
			if msg == "work" {
				close(lateRunning)
				<-release
				ended <- c.StopContext().Err()
			}
			return nil
		}), WithShutdownTimeout(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		if err := b.Tell(late, "work"); err != nil {
			t.Fatal(err)
		}
		<-lateRunning
		stopped := make(chan struct{})
		go func() { _ = b.Stop(late); close(stopped) }()
		synctest.Wait() // the stop has begun: it waits for the actor
		close(release)
		if err := <-ended; !errors.Is(err, context.Canceled) {
			t.Fatalf("StopContext made after the stop began: %v, want context.Canceled", err)
		}
		<-stopped
	})
}

// TestStopAbandonedActorEnds: an actor stuck in Receive past its shutdown
// timeout is ended for everyone but its goroutine: what was queued for it
// fails at once (an ask with ErrActorStopped, never delivered; a tell is
// a dead letter), its name routes to the other instance only, its Ref to
// nothing (ErrNoRoute), its watcher gets Terminated and Done closes; when
// Receive finally returns, nothing more happens.
func TestStopAbandonedActorEnds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, err := New()
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close(context.Background())
		running, release := make(chan struct{}), make(chan struct{})
		stuck, err := b.Register("svc", ActorFunc(func(c *Context, msg any) error {
			if msg == "work" {
				close(running)
				<-release
			}
			if c.IsAsk() {
				return c.Reply("stuck")
			}
			return nil
		}), WithShutdownTimeout(time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := b.Register("svc", ActorFunc(func(c *Context, msg any) error {
			if c.IsAsk() {
				return c.Reply("other")
			}
			return nil
		})); err != nil {
			t.Fatal(err)
		}
		terminated := make(chan Terminated, 2)
		if _, err := b.Register("watcher", ActorFunc(func(c *Context, msg any) error {
			switch m := msg.(type) {
			case Ref:
				c.Watch(m)
				return c.Reply("watching")
			case Terminated:
				terminated <- m
			}
			return nil
		})); err != nil {
			t.Fatal(err)
		}
		if _, err := b.Ask(context.Background(), "watcher", stuck); err != nil {
			t.Fatal(err)
		}

		answers := make(chan error, 2)
		go func() {
			_, err := b.Ask(context.Background(), stuck, "work")
			answers <- err
		}()
		<-running
		if err := b.Tell(stuck, "queued tell"); err != nil {
			t.Fatal(err)
		}
		queued := make(chan error, 1)
		go func() {
			_, err := b.Ask(context.Background(), stuck, "queued ask")
			queued <- err
		}()
		synctest.Wait() // the ask is queued behind "work"
		dead := b.DeadLetterCount(ErrActorStopped)

		if err := b.Stop(stuck); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if err := <-answers; !errors.Is(err, ErrActorStopped) || NeverDelivered(err) {
			t.Fatalf("the ask it was running: %v; want ErrActorStopped, not never delivered", err)
		}
		select {
		case err := <-queued:
			if !errors.Is(err, ErrActorStopped) || !NeverDelivered(err) {
				t.Fatalf("the ask queued behind: %v; want ErrActorStopped, never delivered", err)
			}
		default:
			t.Fatal("the ask queued for an abandoned actor is still waiting")
		}
		if n := b.DeadLetterCount(ErrActorStopped) - dead; n != 2 {
			t.Errorf("%d dead letters for the abandoned actor's queue, want 2 (the tell and the ask)", n)
		}
		if refs := b.Instances("svc"); len(refs) != 1 || refs[0] == stuck {
			t.Fatalf("instances of svc after the abandonment: %v; want only the other", refs)
		}
		for range 10 {
			if r, err := b.Ask(context.Background(), "svc", "x"); err != nil || r != "other" {
				t.Fatalf("ask to svc: %v, %v; want the other instance's answer", r, err)
			}
		}
		if err := b.Tell(stuck, "late"); !errors.Is(err, ErrNoRoute) {
			t.Fatalf("tell to the abandoned actor's Ref: %v, want ErrNoRoute", err)
		}
		if _, err := b.Ask(context.Background(), stuck, "late"); !errors.Is(err, ErrNoRoute) {
			t.Fatalf("ask to the abandoned actor's Ref: %v, want ErrNoRoute", err)
		}
		select {
		case m := <-terminated:
			if m.Ref != stuck {
				t.Fatalf("Terminated for %v, want %v", m.Ref, stuck)
			}
		default:
			t.Fatal("no Terminated for the abandoned actor")
		}
		select {
		case <-b.Done(stuck):
		default:
			t.Fatal("Done of the abandoned actor is open")
		}

		close(release) // Receive returns: its reply is dropped, nothing else runs
		synctest.Wait()
		if len(terminated) != 0 {
			t.Fatalf("a second Terminated: %v", <-terminated)
		}
	})
}

// TestStopContextEndsWithSelfStop: an actor that stops itself
// (Context.Stop) was never asked to stop, yet the work it left waiting on
// its StopContext ends with it; a StopContext asked for while it stops
// (its Stopping handler) is ended too.
func TestStopContextEndsWithSelfStop(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, err := New()
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close(context.Background())
		left := make(chan context.Context, 2)
		ref, err := b.Spawn(ActorFunc(func(c *Context, msg any) error {
			switch msg.(type) {
			case string:
				left <- c.StopContext()
				c.Stop()
			case Stopping:
				left <- c.StopContext()
			}
			return nil
		}))
		if err != nil {
			t.Fatal(err)
		}
		if err := b.Tell(ref, "go"); err != nil {
			t.Fatal(err)
		}
		<-b.Done(ref)
		for range 2 {
			if err := (<-left).Err(); !errors.Is(err, context.Canceled) {
				t.Fatalf("StopContext of an actor that stopped itself: %v, want context.Canceled", err)
			}
		}
	})
}

// TestStopAbandonedActorLateStop: an actor abandoned by its stop that
// calls Context.Stop as its stuck Receive finally returns is not stopped
// a second time: it was ended already, and its Stopping handler does not
// run after its watchers were told it terminated.
func TestStopAbandonedActorLateStop(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, err := New()
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close(context.Background())
		running, release := make(chan struct{}), make(chan struct{})
		stopping := make(chan struct{}, 2)
		ref, err := b.Spawn(ActorFunc(func(c *Context, msg any) error {
			switch msg.(type) {
			case string:
				close(running)
				<-release
				c.Stop()
			case Stopping:
				stopping <- struct{}{}
			}
			return nil
		}), WithShutdownTimeout(time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		if err := b.Tell(ref, "work"); err != nil {
			t.Fatal(err)
		}
		<-running
		if err := b.Stop(ref); err != nil { // abandons it after a minute
			t.Fatal(err)
		}
		select {
		case <-b.Done(ref):
		default:
			t.Fatal("Done of the abandoned actor is open")
		}
		close(release)
		synctest.Wait()
		if len(stopping) != 0 {
			t.Fatal("the abandoned actor got Stopping after it was ended")
		}
	})
}

// TestIsStopping: the poll tells what StopContext would, without
// making it: false while the actor runs, true once a stop is asked (the
// actor still running), and true for an actor that stopped itself.
func TestIsStopping(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, err := New()
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close(context.Background())
		running := make(chan bool, 1)
		made := make(chan bool, 1)
		ref, err := b.Register("polls", ActorFunc(func(c *Context, msg any) error {
			if msg != "work" {
				return nil
			}
			running <- c.IsStopping()
			for !c.IsStopping() {
				time.Sleep(time.Millisecond)
			}
			made <- c.p.stopContext() != nil
			return nil
		}), WithShutdownTimeout(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		if err := b.Tell(ref, "work"); err != nil {
			t.Fatal(err)
		}
		if <-running {
			t.Fatal("IsStopping before any stop")
		}
		if err := b.Stop(ref); err != nil {
			t.Fatal(err)
		}
		if <-made {
			t.Fatal("polling made the StopContext")
		}

		left := make(chan *Context, 1)
		self, err := b.Spawn(ActorFunc(func(c *Context, msg any) error {
			if _, ok := msg.(string); ok {
				left <- c
				c.Stop()
			}
			return nil
		}))
		if err != nil {
			t.Fatal(err)
		}
		if err := b.Tell(self, "go"); err != nil {
			t.Fatal(err)
		}
		c := <-left
		<-b.Done(self)
		if !c.IsStopping() {
			t.Fatal("IsStopping false for an actor that stopped itself")
		}
	})
}
