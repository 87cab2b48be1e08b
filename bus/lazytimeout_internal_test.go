package bus

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"
)

// A send's bound starts when a link first asks for its deadline or waits
// on it; asking for the deadline alone starts no timer, so the send's
// outgoing may be reused, yet the bound holds all the same.
func TestLazyTimeoutDeadlineStartsNoTimer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := &lazyTimeout{parent: context.Background(), d: time.Second}
		time.Sleep(time.Hour) // nothing asked: the time has not started
		if err := c.Err(); err != nil {
			t.Fatalf("Err before anything was asked = %v", err)
		}
		want := time.Now().Add(time.Second)
		dl, ok := c.Deadline()
		if !ok || !dl.Equal(want) {
			t.Fatalf("Deadline = %v, %v; want %v, true", dl, ok, want)
		}
		if dl2, _ := c.Deadline(); !dl2.Equal(dl) {
			t.Fatalf("a second Deadline = %v, want the first, %v", dl2, dl)
		}
		time.Sleep(time.Second - time.Nanosecond)
		if err := c.Err(); err != nil {
			t.Fatalf("Err before the deadline = %v", err)
		}
		time.Sleep(time.Nanosecond)
		if err := c.Err(); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Err at the deadline = %v, want DeadlineExceeded", err)
		}
		if !c.stop() {
			t.Fatal("stop reports a timer, though only the deadline was asked")
		}
	})
}

// Done waits until the deadline fixed when it was first asked, not d
// after Done was called.
func TestLazyTimeoutDoneKeepsTheDeadlineAsked(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := &lazyTimeout{parent: context.Background(), d: time.Second}
		dl, _ := c.Deadline()
		time.Sleep(300 * time.Millisecond)
		<-c.Done()
		if now := time.Now(); !now.Equal(dl) {
			t.Fatalf("Done closed at %v, want the deadline asked, %v", now, dl)
		}
		if err := c.Err(); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Err = %v, want DeadlineExceeded", err)
		}
		if c.stop() {
			t.Fatal("stop reports no timer after Done was waited on")
		}
	})
}

// The parent ends the send first when it ends first: its cancellation,
// or its own deadline before d.
func TestLazyTimeoutFollowsItsParent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		parent, cancel := context.WithCancel(context.Background())
		c := &lazyTimeout{parent: parent, d: time.Second}
		c.Deadline()
		cancel()
		if err := c.Err(); !errors.Is(err, context.Canceled) {
			t.Fatalf("Err after the parent's cancel = %v, want Canceled", err)
		}

		parent, cancel = context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		pd, _ := parent.Deadline()
		c = &lazyTimeout{parent: parent, d: time.Second}
		if dl, _ := c.Deadline(); !dl.Equal(pd) {
			t.Fatalf("Deadline = %v, want the parent's earlier %v", dl, pd)
		}
		<-c.Done()
		if now := time.Now(); !now.Equal(pd) {
			t.Fatalf("Done closed at %v, want the parent's deadline %v", now, pd)
		}
		c.stop()
	})
}
