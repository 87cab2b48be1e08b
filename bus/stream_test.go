package bus_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/xbus-dev/xbus/bus"
	"github.com/xbus-dev/xbus/netbus"
)

// streamPair is two buses, a client that opens streams and a server whose
// actors accept them: one bus in process, else linked by a real transport.
type streamPair struct {
	name   string
	remote bool
	pair   func(t *testing.T, so, co []bus.Option) (server, client *bus.Bus)
}

func streamPairs() []streamPair {
	ps := []streamPair{{"inproc", false, func(t *testing.T, so, _ []bus.Option) (*bus.Bus, *bus.Bus) {
		b := linkedBus(t, so...)
		return b, b
	}}}
	for _, l := range realLinks(netbus.Config{}) {
		ps = append(ps, streamPair{l.name, true, l.pair})
	}
	return ps
}

func eachStreamPair(t *testing.T, f func(t *testing.T, p streamPair)) {
	for _, p := range streamPairs() {
		t.Run(p.name, func(t *testing.T) { f(t, p) })
	}
}

// accept registers name on server: an actor that runs serve on a goroutine
// of its own for each stream it receives. The goroutines end with their
// streams, when the buses close at the latest (TestMain checks).
func accept(t *testing.T, server, client *bus.Bus, name string, serve func(s *bus.Stream)) {
	t.Helper()
	_, err := server.Register(name, bus.ActorFunc(func(c *bus.Context, msg any) error {
		if s, ok := msg.(*bus.Stream); ok {
			go serve(s)
		}
		return nil
	}))
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, client, name)
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// echoStream sends back what it reads, then ends as its client did.
func echoStream(s *bus.Stream) {
	ctx := s.Context()
	for {
		m, err := s.Recv(ctx)
		if errors.Is(err, io.EOF) {
			s.CloseSend(nil)
			return
		}
		if err != nil {
			s.Close(err)
			return
		}
		if err := s.Send(ctx, m); err != nil {
			return
		}
	}
}

func TestStreamItemsBothWays(t *testing.T) {
	eachStreamPair(t, func(t *testing.T, p streamPair) {
		server, client := p.pair(t, nil, nil)
		accept(t, server, client, "echo", echoStream)
		ctx := testCtx(t)
		s, err := client.OpenStream(ctx, "echo", "hello", bus.StreamWindow(4))
		if err != nil {
			t.Fatal(err)
		}
		const n = 200 // many windows, both ways
		go func() {
			for i := range n {
				if err := s.Send(ctx, i); err != nil {
					t.Errorf("send %d: %v", i, err)
					return
				}
			}
			s.CloseSend(nil)
		}()
		for i := range n {
			m, err := s.Recv(ctx)
			if err != nil || m != i {
				t.Fatalf("recv %d: %v, %v", i, m, err)
			}
		}
		if _, err := s.Recv(ctx); !errors.Is(err, io.EOF) {
			t.Fatalf("after the last item: %v, want io.EOF", err)
		}
		eventually(t, "both ends finished", func() error {
			if n := bus.OpenStreams(client) + bus.OpenStreams(server); n != 0 {
				return fmt.Errorf("%d streams open", n)
			}
			return nil
		})
	})
}

func TestStreamOpenMessageAndMetadata(t *testing.T) {
	eachStreamPair(t, func(t *testing.T, p streamPair) {
		server, client := p.pair(t, nil, nil)
		type got struct {
			msg      any
			md       string
			deadline bool
		}
		gotc := make(chan got, 1)
		accept(t, server, client, "open", func(s *bus.Stream) {
			var md string
			for _, h := range s.Headers() {
				if h.Key == "k" {
					md = h.Value
				}
			}
			_, ok := s.Context().Deadline()
			gotc <- got{s.Msg(), md, ok}
			s.Close(nil)
		})
		ctx := bus.WithHeaders(testCtx(t), bus.Header{Key: "k", Value: "v"})
		s, err := client.OpenStream(ctx, "open", "first")
		if err != nil {
			t.Fatal(err)
		}
		g := <-gotc
		if g.msg != "first" || g.md != "v" || !g.deadline {
			t.Fatalf("the accepting end got %+v", g)
		}
		if _, err := s.Recv(ctx); !errors.Is(err, io.EOF) {
			t.Fatalf("recv: %v, want io.EOF", err)
		}
	})
}

// The accepting end's error reaches the opener with its code.
func TestStreamEndsWithCodedError(t *testing.T) {
	eachStreamPair(t, func(t *testing.T, p streamPair) {
		server, client := p.pair(t, nil, nil)
		accept(t, server, client, "fail", func(s *bus.Stream) {
			for i := range 3 {
				if s.Send(s.Context(), i) != nil {
					return
				}
			}
			s.Close(fmt.Errorf("stock: %w", bus.ErrMailboxFull))
		})
		ctx := testCtx(t)
		s, err := client.OpenStream(ctx, "fail", nil)
		if err != nil {
			t.Fatal(err)
		}
		for i := range 3 {
			if m, err := s.Recv(ctx); err != nil || m != i {
				t.Fatalf("recv %d: %v, %v", i, m, err)
			}
		}
		_, err = s.Recv(ctx)
		if !errors.Is(err, bus.ErrMailboxFull) {
			t.Fatalf("end: %v, want ErrMailboxFull", err)
		}
		// A send fails once the other end's close arrived (one may leave
		// before; the other end drops it).
		eventually(t, "a send failing", func() error {
			short, cancel := context.WithTimeout(ctx, 10*time.Millisecond)
			defer cancel()
			if err := s.Send(short, 1); err == nil || errors.Is(err, bus.ErrDeadline) {
				return fmt.Errorf("send: %v", err)
			}
			return nil
		})
	})
}

// A reader that never reads: the sender sends its window and then waits,
// and the reading end holds exactly the window; as the reader takes half
// the window, the sender may send that much more, and no more.
func TestStreamReaderThatNeverReads(t *testing.T) {
	eachStreamPair(t, func(t *testing.T, p streamPair) {
		server, client := p.pair(t, []bus.Option{bus.WithStreamWindow(8)}, nil)
		const window = 8
		streams := make(chan *bus.Stream, 1)
		accept(t, server, client, "sink", func(s *bus.Stream) { streams <- s; <-s.Context().Done() })
		ctx := testCtx(t)
		s, err := client.OpenStream(ctx, "sink", nil)
		if err != nil {
			t.Fatal(err)
		}
		for i := range window {
			if err := s.Send(ctx, i); err != nil {
				t.Fatalf("send %d within the window: %v", i, err)
			}
		}
		short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
		err = s.Send(short, window)
		cancel()
		if !errors.Is(err, bus.ErrDeadline) {
			t.Fatalf("send beyond the window: %v, want ErrDeadline", err)
		}
		srv := <-streams
		eventually(t, "the window arrived", func() error {
			if n := srv.Buffered(); n != window {
				return fmt.Errorf("%d buffered", n)
			}
			return nil
		})
		for i := range window / 2 {
			if m, err := srv.Recv(ctx); err != nil || m != i {
				t.Fatalf("recv %d: %v, %v", i, m, err)
			}
		}
		for i := range window / 2 {
			if err := s.Send(ctx, window+i); err != nil {
				t.Fatalf("send %d on the credit granted back: %v", i, err)
			}
		}
		short, cancel = context.WithTimeout(ctx, 50*time.Millisecond)
		err = s.Send(short, -1)
		cancel()
		if !errors.Is(err, bus.ErrDeadline) {
			t.Fatalf("send beyond the credit granted back: %v, want ErrDeadline", err)
		}
		eventually(t, "the window arrived", func() error {
			if n := srv.Buffered(); n != window {
				return fmt.Errorf("%d buffered", n)
			}
			return nil
		})
		s.Close(nil)
	})
}

// Cancellation both ways: the opener's ctx ending ends the accepting end's
// Context; the accepting end closing makes the opener's Send fail.
func TestStreamCancel(t *testing.T) {
	eachStreamPair(t, func(t *testing.T, p streamPair) {
		server, client := p.pair(t, nil, nil)
		ended := make(chan error, 1)
		accept(t, server, client, "wait", func(s *bus.Stream) {
			<-s.Context().Done()
			for {
				if _, err := s.Recv(context.Background()); err != nil {
					ended <- err
					return
				}
			}
		})
		ctx, cancel := context.WithCancel(testCtx(t))
		s, err := client.OpenStream(ctx, "wait", nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Send(ctx, 1); err != nil { // the stream is open at the other end
			t.Fatal(err)
		}
		cancel()
		if err := <-ended; !errors.Is(err, bus.ErrCanceled) {
			t.Fatalf("the accepting end read %v, want ErrCanceled", err)
		}
		if _, err := s.Recv(testCtx(t)); !errors.Is(err, bus.ErrCanceled) {
			t.Fatalf("the opener read %v, want ErrCanceled", err)
		}
	})
}

// The opener's deadline travels: the accepting end's Context ends with it
// even when its actor never ends the stream.
func TestStreamDeadline(t *testing.T) {
	eachStreamPair(t, func(t *testing.T, p streamPair) {
		server, client := p.pair(t, nil, nil)
		ended := make(chan error, 1)
		accept(t, server, client, "forever", func(s *bus.Stream) {
			<-s.Context().Done()
			ended <- context.Cause(s.Context())
		})
		// Long enough for the open to go out on a loaded machine: the
		// test waits for the deadline to pass after it.
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		s, err := client.OpenStream(ctx, "forever", nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Recv(context.Background()); !errors.Is(err, bus.ErrDeadline) {
			t.Fatalf("recv: %v, want ErrDeadline", err)
		}
		select {
		case <-ended:
		case <-testCtx(t).Done():
			t.Fatal("the accepting end's Context never ended")
		}
	})
}

func TestStreamNoRoute(t *testing.T) {
	eachStreamPair(t, func(t *testing.T, p streamPair) {
		server, client := p.pair(t, nil, nil)
		accept(t, server, client, "echo", echoStream)
		ref := client.Instances("echo")[0]
		ref.ID += 1000 // no such instance
		ctx := testCtx(t)
		s, err := client.OpenStream(ctx, ref, nil)
		if err == nil {
			_, err = s.Recv(ctx)
		}
		if !errors.Is(err, bus.ErrNoRoute) {
			t.Fatalf("a stream to no actor: %v, want ErrNoRoute", err)
		}
	})
}

// The bus closing ends its streams at both ends: in process with
// ErrClosed, across a link the peer sees ErrPeerGone.
func TestStreamEndsWhenANodeCloses(t *testing.T) {
	eachStreamPair(t, func(t *testing.T, p streamPair) {
		server, client := p.pair(t, nil, nil)
		ended := make(chan error, 1)
		started := make(chan struct{})
		accept(t, server, client, "hold", func(s *bus.Stream) {
			close(started)
			_, err := s.Recv(context.Background())
			ended <- err
		})
		ctx := testCtx(t)
		s, err := client.OpenStream(ctx, "hold", nil)
		if err != nil {
			t.Fatal(err)
		}
		<-started
		cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		server.Close(cctx)
		if err := <-ended; !errors.Is(err, bus.ErrClosed) && !errors.Is(err, bus.ErrPeerGone) {
			t.Fatalf("the accepting end: %v", err)
		}
		_, err = s.Recv(ctx)
		want := bus.ErrClosed
		if p.remote {
			want = bus.ErrPeerGone
		}
		if !errors.Is(err, want) || errors.Is(err, io.EOF) {
			t.Fatalf("the opener: %v, want %v (and not io.EOF, a clean end)", err, want)
		}
		if err := s.Send(ctx, 1); !errors.Is(err, want) {
			t.Fatalf("a send: %v, want %v", err, want)
		}
	})
}

// A stream still queued for an actor that stops is dropped with the rest of
// its mailbox: the stream ends with the reason at both ends, instead of
// leaving its opener waiting and its entry and load held here for ever.
func TestStreamDroppedByAStoppingActor(t *testing.T) {
	eachStreamPair(t, func(t *testing.T, p streamPair) {
		server, client := p.pair(t, nil, nil)
		busy, release := make(chan struct{}), make(chan struct{})
		ref, err := server.Register("slow", bus.ActorFunc(func(c *bus.Context, msg any) error {
			if msg == "hold" {
				close(busy)
				<-release
				c.Stop() // what is queued behind is dropped
			}
			return nil
		}))
		if err != nil {
			t.Fatal(err)
		}
		waitFor(t, client, "slow")
		if err := server.Tell(ref, "hold"); err != nil {
			t.Fatal(err)
		}
		<-busy
		ctx := testCtx(t)
		s, err := client.OpenStream(ctx, ref, nil)
		if err != nil {
			t.Fatal(err)
		}
		eventually(t, "the stream queued", func() error {
			if n := bus.OpenStreams(server); n == 0 {
				return errors.New("not yet")
			}
			return nil
		})
		close(release)
		if _, err := s.Recv(ctx); !errors.Is(err, bus.ErrActorStopped) {
			t.Fatalf("the opener's Recv: %v, want ErrActorStopped", err)
		}
		eventually(t, "both ends finished", func() error {
			if n := bus.OpenStreams(client) + bus.OpenStreams(server); n != 0 {
				return fmt.Errorf("%d streams open", n)
			}
			return nil
		})
	})
}

// An actor that fails on the stream it receives, as it would on an ask,
// ends it with ErrActorFailed at the opener, instead of leaving it open.
func TestStreamFailedOnArrival(t *testing.T) {
	eachStreamPair(t, func(t *testing.T, p streamPair) {
		server, client := p.pair(t, nil, nil)
		_, err := server.Register("fails", bus.ActorFunc(func(c *bus.Context, msg any) error {
			if _, ok := msg.(*bus.Stream); ok {
				return errors.New("no streams here")
			}
			return nil
		}))
		if err != nil {
			t.Fatal(err)
		}
		waitFor(t, client, "fails")
		ctx := testCtx(t)
		s, err := client.OpenStream(ctx, "fails", nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Recv(ctx); !errors.Is(err, bus.ErrActorFailed) {
			t.Fatalf("the opener's Recv: %v, want ErrActorFailed", err)
		}
		eventually(t, "both ends finished", func() error {
			if n := bus.OpenStreams(client) + bus.OpenStreams(server); n != 0 {
				return fmt.Errorf("%d streams open", n)
			}
			return nil
		})
	})
}

// An open stream counts in its instance's load until it ends: with two
// instances, least connections places a second stream on the instance
// that has none, and once the first ended a third may go to either.
func TestStreamCountsInLoad(t *testing.T) {
	eachStreamPair(t, func(t *testing.T, p streamPair) {
		server, client := p.pair(t, nil, nil)
		at := make(chan bus.Ref, 4)
		for range 2 {
			if _, err := server.Register("svc", bus.ActorFunc(func(c *bus.Context, msg any) error {
				if s, ok := msg.(*bus.Stream); ok {
					at <- c.Self()
					go func() { <-s.Context().Done() }()
				}
				return nil
			})); err != nil {
				t.Fatal(err)
			}
		}
		eventually(t, "both instances known", func() error {
			if n := len(client.Instances("svc")); n != 2 {
				return fmt.Errorf("%d instances", n)
			}
			return nil
		})
		ctx := testCtx(t)
		for round := range 3 {
			s1, err := client.OpenStream(ctx, "svc", nil)
			if err != nil {
				t.Fatal(err)
			}
			first := <-at
			s2, err := client.OpenStream(ctx, "svc", nil)
			if err != nil {
				t.Fatal(err)
			}
			if second := <-at; second == first {
				t.Fatalf("round %d: both open streams went to %v", round, first)
			}
			s1.Close(nil)
			s2.Close(nil)
			eventually(t, "the streams ended", func() error {
				if n := bus.OpenStreams(client); n != 0 {
					return fmt.Errorf("%d open", n)
				}
				return nil
			})
		}
	})
}

// CloseSend from another goroutine releases a Send waiting for credit: it
// fails, and the other end reads what was sent, then io.EOF.
func TestStreamCloseSendReleasesAWaitingSend(t *testing.T) {
	eachStreamPair(t, func(t *testing.T, p streamPair) {
		server, client := p.pair(t, []bus.Option{bus.WithStreamWindow(1)}, nil)
		streams := make(chan *bus.Stream, 1)
		accept(t, server, client, "slow", func(s *bus.Stream) { streams <- s })
		ctx := testCtx(t)
		s, err := client.OpenStream(ctx, "slow", nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Send(ctx, 0); err != nil { // the window of 1
			t.Fatal(err)
		}
		waiting := make(chan error, 1)
		go func() { waiting <- s.Send(ctx, 1) }() // no credit: it waits
		srv := <-streams
		eventually(t, "the first item arrived", func() error {
			if srv.Buffered() != 1 {
				return errors.New("not yet")
			}
			return nil
		})
		if err := s.CloseSend(nil); err != nil {
			t.Fatal(err)
		}
		if err := <-waiting; !errors.Is(err, bus.ErrClosed) {
			t.Fatalf("the waiting send: %v, want ErrClosed", err)
		}
		if m, err := srv.Recv(ctx); err != nil || m != 0 {
			t.Fatalf("recv: %v, %v", m, err)
		}
		if _, err := srv.Recv(ctx); !errors.Is(err, io.EOF) {
			t.Fatalf("after the last item: %v, want io.EOF", err)
		}
		srv.Close(nil)
	})
}

// Err says why a stream ended, read as its Context ends (context.AfterFunc)
// at either end, as Recv does: nil for a clean end, the other end's error,
// and ErrCanceled for the opener's Close at the opener (the accepting end
// reads the clean end of its sending first) and for its ctx's end at both;
// nil before the end.
func TestStreamErr(t *testing.T) {
	eachStreamPair(t, func(t *testing.T, p streamPair) {
		server, client := p.pair(t, nil, nil)
		atEnd := func(s *bus.Stream) <-chan error {
			c := make(chan error, 1)
			context.AfterFunc(s.Context(), func() { c <- s.Err() })
			return c
		}
		serverEnds := make(chan (<-chan error), 4)
		accept(t, server, client, "echo", func(s *bus.Stream) {
			serverEnds <- atEnd(s)
			echoStream(s)
		})
		accept(t, server, client, "fail", func(s *bus.Stream) {
			serverEnds <- atEnd(s)
			s.Close(fmt.Errorf("stock: %w", bus.ErrMailboxFull))
		})
		open := func(ctx context.Context, to string) (*bus.Stream, <-chan error) {
			s, err := client.OpenStream(ctx, to, nil)
			if err != nil {
				t.Fatal(err)
			}
			return s, atEnd(s)
		}
		ctx := testCtx(t)

		s, end := open(ctx, "echo")
		if err := s.Err(); err != nil {
			t.Fatalf("Err of an open stream: %v", err)
		}
		if err := s.Send(ctx, 1); err != nil {
			t.Fatal(err)
		}
		s.CloseSend(nil)
		for {
			if _, err := s.Recv(ctx); err != nil {
				break
			}
		}
		if err := <-end; err != nil {
			t.Fatalf("clean end: the opener's Err is %v", err)
		}
		if err := <-<-serverEnds; err != nil {
			t.Fatalf("clean end: the accepting end's Err is %v", err)
		}

		_, end = open(ctx, "fail")
		if err := <-end; !errors.Is(err, bus.ErrMailboxFull) {
			t.Fatalf("the accepting end's error: the opener's Err is %v, want ErrMailboxFull", err)
		}
		<-serverEnds

		s, end = open(ctx, "echo")
		if err := s.Send(ctx, 1); err != nil {
			t.Fatal(err)
		}
		s.Close(nil)
		if err := <-end; !errors.Is(err, bus.ErrCanceled) {
			t.Fatalf("the opener's Close: its Err is %v, want ErrCanceled", err)
		}
		if err := <-<-serverEnds; err != nil {
			t.Fatalf("the opener's Close: the accepting end's Err is %v, want nil, as its Recv's io.EOF", err)
		}

		short, cancel := context.WithCancel(ctx)
		s, end = open(short, "echo")
		if err := s.Send(ctx, 1); err != nil {
			t.Fatal(err)
		}
		cancel()
		if err := <-end; !errors.Is(err, bus.ErrCanceled) {
			t.Fatalf("the opener's ctx ended: its Err is %v, want ErrCanceled", err)
		}
		if err := <-<-serverEnds; !errors.Is(err, bus.ErrCanceled) {
			t.Fatalf("the opener's ctx ended: the accepting end's Err is %v, want ErrCanceled", err)
		}
	})
}

// A stream closed here stays ended by that Close even when the other end's
// clean end, answering the close of sending, arrives before Close has
// finished: Err and Recv report ErrCanceled, never the late io.EOF.
func TestStreamCloseOutrunsLateEnd(t *testing.T) {
	eachStreamPair(t, func(t *testing.T, p streamPair) {
		server, client := p.pair(t, nil, nil)
		accept(t, server, client, "echo", echoStream)
		for i := range 300 {
			s, err := client.OpenStream(testCtx(t), "echo", nil)
			if err != nil {
				t.Fatal(err)
			}
			s.Close(nil)
			if err := s.Err(); !errors.Is(err, bus.ErrCanceled) {
				t.Fatalf("stream %d: Err after Close is %v, want ErrCanceled", i, err)
			}
			if _, err := s.Recv(testCtx(t)); !errors.Is(err, bus.ErrCanceled) {
				t.Fatalf("stream %d: Recv after Close read %v, want ErrCanceled", i, err)
			}
		}
	})
}
