package rpc_test

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/xbus-dev/xbus/bus"
	"github.com/xbus-dev/xbus/rpc"
)

// TestStopEndsHandlerCtx: a handler waiting on its ctx when its actor is
// stopped sees the ctx end, and the call returns with the handler's
// answer as the stop completes, without waiting out the shutdown timeout.
func TestStopEndsHandlerCtx(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, err := bus.New()
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close(context.Background())
		running := make(chan struct{})
		ref, err := rpc.Handle(b, "stop.wait", func(ctx context.Context, a Add) (Sum, error) {
			close(running)
			<-ctx.Done()
			if !errors.Is(ctx.Err(), context.Canceled) {
				return Sum{}, ctx.Err()
			}
			return Sum{a.A + a.B}, nil
		}, rpc.WithActorOptions(bus.WithShutdownTimeout(time.Hour)))
		if err != nil {
			t.Fatal(err)
		}
		// A caller whose ctx can end but does not: no deadline to save it.
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		type outcome struct {
			s   Sum
			err error
		}
		got := make(chan outcome, 1)
		go func() {
			s, err := rpc.Call[Sum](ctx, b, "stop.wait", Add{2, 3})
			got <- outcome{s, err}
		}()
		<-running
		start := time.Now()
		if err := b.Stop(ref); err != nil {
			t.Fatal(err)
		}
		o := <-got
		if o.err != nil || o.s.N != 5 {
			t.Fatalf("call: %v, %v; want the handler's answer 5", o.s, o.err)
		}
		if time.Since(start) >= time.Hour { // synctest's clock
			t.Fatal("the stop waited out its shutdown timeout")
		}
	})
}

// TestStopAbandonedHandler: a handler that ignores its ctx and is
// abandoned by its stop: the call, made with a ctx that never ends,
// returns bus.ErrActorStopped (not marked as never delivered), and the
// handler's late answer is dropped.
func TestStopAbandonedHandler(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, err := bus.New()
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close(context.Background())
		running, release := make(chan struct{}), make(chan struct{})
		returned := make(chan struct{})
		ref, err := rpc.Handle(b, "stop.stuck", func(ctx context.Context, a Add) (Sum, error) {
			defer close(returned)
			close(running)
			<-release
			return Sum{a.A + a.B}, nil
		}, rpc.WithActorOptions(bus.WithShutdownTimeout(time.Minute)))
		if err != nil {
			t.Fatal(err)
		}
		got := make(chan error, 2)
		go func() {
			_, err := rpc.Call[Sum](context.Background(), b, "stop.stuck", Add{2, 3})
			got <- err
		}()
		<-running
		if err := b.Stop(ref); err != nil {
			t.Fatal(err)
		}
		err = <-got
		if !errors.Is(err, bus.ErrActorStopped) || bus.NeverDelivered(err) {
			t.Fatalf("call to an abandoned handler: %v; want bus.ErrActorStopped, not never delivered", err)
		}
		close(release)
		<-returned
		synctest.Wait()
		select {
		case err := <-got:
			t.Fatalf("a second answer: %v", err)
		default:
		}
	})
}

// TestStopEndsHandlerCtxOfPatientCaller: a call whose ctx never ends
// (context.Background()) still gives its handler a ctx that ends when the
// actor is stopped, whether the call carries nothing, metadata or goes to
// a handler of a Server, whether the handler waits on Done or polls Err,
// and for a one-way Send too: the stop does not wait out its shutdown
// timeout.
func TestStopEndsHandlerCtxOfPatientCaller(t *testing.T) {
	for _, tc := range []struct {
		name   string
		opts   []rpc.CallOption
		server bool
		poll   bool // the handler polls ctx.Err instead of waiting on Done
		send   bool // one-way: rpc.Send
	}{
		{name: "plain"},
		{name: "plain/poll", poll: true},
		{name: "metadata", opts: []rpc.CallOption{rpc.Header("k", "v")}},
		{name: "metadata/poll", opts: []rpc.CallOption{rpc.Header("k", "v")}, poll: true},
		{name: "server", server: true},
		{name: "server/poll", server: true, poll: true},
		{name: "send", send: true},
		{name: "send/metadata", opts: []rpc.CallOption{rpc.Header("k", "v")}, send: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				b, err := bus.New()
				if err != nil {
					t.Fatal(err)
				}
				defer b.Close(context.Background())
				running := make(chan struct{})
				ended := make(chan error, 1)
				opts := []rpc.Option{rpc.WithActorOptions(bus.WithShutdownTimeout(time.Hour))}
				if tc.server {
					opts = append(opts, rpc.WithServer(rpc.NewServer(b)))
				}
				ref, err := rpc.Handle(b, "stop.patient", func(ctx context.Context, a Add) (Sum, error) {
					close(running)
					if tc.poll {
						for ctx.Err() == nil {
							time.Sleep(time.Millisecond)
						}
					} else {
						<-ctx.Done()
					}
					ended <- ctx.Err()
					return Sum{a.A + a.B}, nil
				}, opts...)
				if err != nil {
					t.Fatal(err)
				}
				got := make(chan error, 1)
				go func() {
					if tc.send {
						got <- rpc.Send(context.Background(), b, "stop.patient", Add{2, 3}, tc.opts...)
						return
					}
					s, err := rpc.Call[Sum](context.Background(), b, "stop.patient", Add{2, 3}, tc.opts...)
					if err == nil && s.N != 5 {
						err = errors.New("a wrong sum")
					}
					got <- err
				}()
				<-running
				start := time.Now()
				if err := b.Stop(ref); err != nil {
					t.Fatal(err)
				}
				if time.Since(start) >= time.Hour { // synctest's clock
					t.Fatal("the stop waited out its shutdown timeout: the handler's ctx did not end")
				}
				if err := <-ended; !errors.Is(err, context.Canceled) {
					t.Fatalf("the handler's ctx ended with %v, want context.Canceled", err)
				}
				if err := <-got; err != nil {
					t.Fatalf("call: %v; want the handler's answer 5", err)
				}
			})
		})
	}
}
