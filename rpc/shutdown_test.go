package rpc_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/xbus-dev/xbus/bus"
	"github.com/xbus-dev/xbus/rpc"
)

// TestGracefulShutdown shuts server B down while a call runs on it, over a
// Unix socket, TCP and shared memory: the call finishes; a new call to B
// is refused as unavailable and, by default, answered by C; B's names then
// leave A.
func TestGracefulShutdown(t *testing.T) {
	for _, s := range sockets {
		t.Run(s.name, func(t *testing.T) {
			t.Run("InFlightFinishes", func(t *testing.T) {
				release := make(chan struct{})
				gate := func(c *cluster, i int) func(context.Context, Add) (Sum, error) {
					return func(context.Context, Add) (Sum, error) {
						c.start <- i
						<-release
						return Sum{10 + i}, nil
					}
				}
				c := newCluster(t, s, gate, answers)
				// other is a second handler of each server, free while svc is busy.
				c.serve(t, "other", answers, answers)
				c.first(0)
				inflight := rpc.Go[Sum](ctxFor(t), c.A, "svc", Add{})
				c.started(t, 0)

				began := make(chan struct{})
				c.srv[0].OnShutdown(func(context.Context) error { close(began); return nil })
				done := make(chan error, 1)
				go func() { done <- c.srv[0].Shutdown(ctxFor(t)) }()
				<-began

				_, err := rpc.Call[Sum](ctxFor(t), c.A, "other", Add{}, rpc.Failfast())
				if !errors.Is(err, rpc.ErrUnavailable) || rpc.Code(err) != rpc.CodeUnavailable {
					t.Fatalf("a new call to B while it shuts down: %v, want CodeUnavailable", err)
				}
				got, err := rpc.Call[Sum](ctxFor(t), c.A, "other", Add{})
				if err != nil || got.N != 1 {
					t.Fatalf("a new call by default: %v, %v; want C's answer", got, err)
				}
				select {
				case err := <-done:
					t.Fatalf("Shutdown returned %v with a call in flight", err)
				default:
				}
				close(release)
				if got, err := inflight.Wait(); err != nil || got.N != 10 {
					t.Fatalf("the call in flight: %v, %v; want B's answer", got, err)
				}
				if err := <-done; err != nil {
					t.Fatalf("Shutdown: %v", err)
				}
				c.waitInstances(t, "svc", 1)
				c.waitInstances(t, "other", 1)
				if got, err := rpc.Call[Sum](ctxFor(t), c.A, "svc", Add{}); err != nil || got.N != 1 {
					t.Fatalf("after the shutdown: %v, %v; want C's answer", got, err)
				}
				if _, err := rpc.Handle(c.S[0], "late", answers(c, 0), rpc.WithServer(c.srv[0])); !errors.Is(err, rpc.ErrServerClosed) {
					t.Fatalf("a handler added after Shutdown: %v, want ErrServerClosed", err)
				}
				if err := c.srv[0].Shutdown(ctxFor(t)); !errors.Is(err, rpc.ErrServerClosed) {
					t.Fatalf("a second Shutdown: %v, want ErrServerClosed", err)
				}
				if _, err := rpc.Handle(c.S[1], "elsewhere", answers(c, 1), rpc.WithServer(c.srv[0])); err == nil {
					t.Fatal("a handler on one bus joined another bus's Server")
				}
			})
			t.Run("DeadlineCancelsInFlight", func(t *testing.T) {
				c := newCluster(t, s, waits, answers)
				c.first(0)
				inflight := rpc.Go[Sum](ctxFor(t), c.A, "svc", Add{})
				c.started(t, 0)
				errHook := errors.New("hook failed")
				c.srv[0].OnShutdown(func(ctx context.Context) error { <-ctx.Done(); return errHook })
				ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
				defer cancel()
				if err := c.srv[0].Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, errHook) {
					t.Fatalf("Shutdown: %v, want its deadline and the hook's error", err)
				}
				if e := <-c.ended; !errors.Is(e, context.Canceled) {
					t.Fatalf("the running handler's ctx ended with %v, want context.Canceled", e)
				}
				if _, err := inflight.Wait(); !errors.Is(err, bus.ErrCanceled) {
					t.Fatalf("the call in flight: %v, want the handler's ErrCanceled", err)
				}
				c.waitInstances(t, "svc", 1)
			})
		})
	}
}

// TestGracefulShutdownStreams: a server stream in flight when its server
// shuts down runs to its end; a new one is refused as unavailable; one
// still running at the shutdown's deadline is ended, coded.
func TestGracefulShutdownStreams(t *testing.T) {
	for _, s := range sockets {
		t.Run(s.name, func(t *testing.T) {
			c := newCluster(t, s, answers, answers)
			release := make(chan struct{})
			began := make(chan struct{}, 2)
			if _, err := rpc.HandleServerStream(c.S[0], "count", func(ctx context.Context, n Add, send func(Sum) error) error {
				began <- struct{}{}
				for i := range n.A {
					if i == 1 {
						select {
						case <-release:
						case <-ctx.Done():
							return ctx.Err()
						}
					}
					if err := send(Sum{i}); err != nil {
						return err
					}
				}
				return nil
			}, rpc.WithServer(c.srv[0])); err != nil {
				t.Fatal(err)
			}
			c.waitInstances(t, "count", 1)
			read := func(ctx context.Context, n int) (got []int, err error) {
				for v, err := range rpc.CallServerStream[Sum](ctx, c.A, "count", Add{A: n}) {
					if err != nil {
						return got, err
					}
					got = append(got, v.N)
				}
				return got, nil
			}
			type result struct {
				got []int
				err error
			}
			first := make(chan result, 1)
			go func() { got, err := read(ctxFor(t), 3); first <- result{got, err} }()
			<-began
			done := make(chan error, 1)
			go func() { done <- c.srv[0].Shutdown(ctxFor(t)) }()
			// Once the server drains, a new stream is refused.
			for {
				_, err := read(ctxFor(t), 1)
				if errors.Is(err, rpc.ErrUnavailable) {
					break
				}
				if err != nil {
					t.Fatalf("a new stream while shutting down: %v, want CodeUnavailable", err)
				}
				<-began // it was served before the shutdown began
				time.Sleep(time.Millisecond)
			}
			close(release)
			if r := <-first; r.err != nil || len(r.got) != 3 {
				t.Fatalf("the stream in flight: %v, %v; want all three items", r.got, r.err)
			}
			if err := <-done; err != nil {
				t.Fatalf("Shutdown: %v", err)
			}

			// A stream still running at the deadline is ended.
			srv := rpc.NewServer(c.S[1])
			running := make(chan struct{})
			if _, err := rpc.HandleServerStream(c.S[1], "stuck", func(ctx context.Context, _ Add, send func(Sum) error) error {
				if err := send(Sum{1}); err != nil {
					return err
				}
				close(running)
				<-ctx.Done()
				return ctx.Err()
			}, rpc.WithServer(srv)); err != nil {
				t.Fatal(err)
			}
			c.waitInstances(t, "stuck", 1)
			stuck := make(chan error, 1)
			go func() {
				for _, err := range rpc.CallServerStream[Sum](ctxFor(t), c.A, "stuck", Add{}) {
					if err != nil {
						stuck <- err
						return
					}
				}
				stuck <- nil
			}()
			<-running
			ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
			defer cancel()
			if err := srv.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("Shutdown: %v, want its deadline", err)
			}
			if err := <-stuck; !errors.Is(err, rpc.ErrUnavailable) {
				t.Fatalf("the stuck stream ended with %v, want CodeUnavailable", err)
			}
		})
	}
}
