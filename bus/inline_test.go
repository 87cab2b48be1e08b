package bus_test

import (
	"bytes"
	"context"
	"fmt"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/xbus-dev/xbus/bus"
)

func openBus(t *testing.T) *bus.Bus {
	t.Helper()
	b, err := bus.New()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close(context.Background()) })
	return b
}

// goid is the calling goroutine's id, read from its stack header.
func goid() uint64 {
	var buf [64]byte
	b := bytes.TrimPrefix(buf[:runtime.Stack(buf[:], false)], []byte("goroutine "))
	n, _ := strconv.ParseUint(string(b[:bytes.IndexByte(b, ' ')]), 10, 64)
	return n
}

// TestInlineRunsOnTheSender asks an actor registered WithInline and one
// without: the first answers on the asking goroutine, the second on another.
func TestInlineRunsOnTheSender(t *testing.T) {
	b := openBus(t)
	where := bus.ActorFunc(func(c *bus.Context, msg any) error {
		if c.IsAsk() {
			return c.Reply(goid())
		}
		return nil
	})
	if _, err := b.Register("inline", where, bus.WithInline()); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Register("pooled", where); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	me := goid()
	for _, c := range []struct {
		name   string
		inline bool
	}{{"inline", true}, {"pooled", false}} {
		// An ask that finds the actor's turn still running (Started, or the
		// turn of the ask before it, not yet let go on a busy machine) is
		// queued to that turn's worker; one that finds it idle runs on the
		// asker if the actor is inline. So an inline actor must run one of
		// a patient series of asks on the asker, a pooled one none.
		var got any
		var err error
		for range 200 {
			if got, err = b.Ask(ctx, c.name, "where"); err != nil {
				t.Fatal(err)
			}
			if got == me {
				break
			}
			time.Sleep(time.Millisecond)
		}
		if (got == me) != c.inline {
			t.Errorf("%s: Receive ran on goroutine %v, the asker is %d (inline: %v)", c.name, got, me, c.inline)
		}
	}
}

// TestInlineOneAtATime sends from many goroutines to an inline actor: it
// must still handle one message at a time, each sender's in order, none
// lost.
func TestInlineOneAtATime(t *testing.T) {
	b := openBus(t)
	const senders, each = 8, 2000
	var inside, overlaps atomic.Int32
	last := make([]int, senders) // touched only inside Receive
	bad := make(chan string, 1)
	done := make(chan struct{})
	var count int
	if _, err := b.Register("count", bus.ActorFunc(func(c *bus.Context, msg any) error {
		if inside.Add(1) != 1 {
			overlaps.Add(1)
		}
		defer inside.Add(-1)
		v, ok := msg.([2]int)
		if !ok {
			return nil
		}
		if v[1] != last[v[0]]+1 {
			select {
			case bad <- fmt.Sprintf("sender %d: %d after %d", v[0], v[1], last[v[0]]):
			default:
			}
		}
		last[v[0]] = v[1]
		if count++; count == senders*each {
			close(done)
		}
		return nil
	}), bus.WithInline()); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for s := range senders {
		wg.Go(func() {
			for i := 1; i <= each; i++ {
				if err := b.Tell("count", [2]int{s, i}); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	<-done
	select {
	case m := <-bad:
		t.Fatal(m)
	default:
	}
	if n := overlaps.Load(); n != 0 {
		t.Fatalf("%d Receives overlapped another", n)
	}
}

// TestInlineServesPeers asks an inline actor across a link: the server's
// reader runs it.
func TestInlineServesPeers(t *testing.T) {
	server, client := linkedPair(t)
	if _, err := server.Register("echo", bus.ActorFunc(func(c *bus.Context, msg any) error {
		if c.IsAsk() {
			return c.Reply(msg)
		}
		return nil
	}), bus.WithInline()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, client, "echo")
	for i := range 100 {
		got, err := client.Ask(context.Background(), "echo", strconv.Itoa(i))
		if err != nil || got != strconv.Itoa(i) {
			t.Fatalf("ask %d: %v, %v", i, got, err)
		}
	}
}
