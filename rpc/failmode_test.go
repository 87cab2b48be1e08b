package rpc_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/xbus-dev/xbus/bus"
	"github.com/xbus-dev/xbus/bus/bustest"
	"github.com/xbus-dev/xbus/bus/placement"
	"github.com/xbus-dev/xbus/netbus"
	"github.com/xbus-dev/xbus/rpc"
	"github.com/xbus-dev/xbus/shmbus"
)

// cluster is a caller A linked to two servers, B and C, each a node of its
// own over real sockets. A call from A goes first to the instances prefer
// holds (placement; see first), so a test knows where a call starts.
type cluster struct {
	A      *bus.Bus
	S      [2]*bus.Bus     // B and C
	taps   [2]*bustest.Tap // cut a server off (kill)
	srv    [2]*rpc.Server  // each server's handlers
	calls  [2]atomic.Int32 // calls each server's handlers took
	prefer sync.Map        // placement IDs of the instances tried first
	refs   [2][]bus.Ref    // each server's instances (of "svc", then any added)
	ended  chan error      // how a waiting handler's ctx ended
	start  chan int        // a waiting handler started, on that server
}

// links are the transports between nodes that the fail modes and the
// graceful shutdown run over: a Unix socket, TCP and shared memory; and
// in process, where A, B and C are one bus (server nil), B's and C's
// instances its actors, and a kill stops an instance's actors.
type links struct {
	name   string
	server func(t *testing.T) (tr bus.Transport, addr func() string) // a server's end, listening at addr() once started
	client func(addrs []string) bus.Transport                        // the caller's end, linked to addrs
}

var sockets = func() []links {
	netLinks := func(name string, listen func(t *testing.T) string) links {
		return links{name,
			func(t *testing.T) (bus.Transport, func() string) {
				tr := netbus.New(netbus.Config{Listen: []string{listen(t)}})
				return tr, func() string { return tr.Addrs()[0] }
			},
			func(addrs []string) bus.Transport { return netbus.New(netbus.Config{Peers: addrs}) },
		}
	}
	ls := []links{
		{name: "inproc"},
		netLinks("unix", func(t *testing.T) string { return "unix://" + filepath.Join(t.TempDir(), "s.sock") }),
		netLinks("tcp", func(*testing.T) string { return "tcp://127.0.0.1:0" }),
	}
	if runtime.GOOS == "linux" {
		ls = append(ls, links{"shm",
			func(t *testing.T) (bus.Transport, func() string) {
				path := filepath.Join(t.TempDir(), "s.sock")
				return shmbus.New(shmbus.Config{Listen: path}), func() string { return path }
			},
			func(addrs []string) bus.Transport { return shmbus.New(shmbus.Config{Dial: addrs}) },
		})
	}
	return ls
}()

// newCluster starts B and C, each serving "svc" with its own handler, and
// A linked to both, and waits until A sees both instances.
func newCluster(t *testing.T, l links, handlers ...handler) *cluster {
	t.Helper()
	c := &cluster{ended: make(chan error, 4), start: make(chan int, 4)}
	prefer := bus.WithPlacement(placement.Func(func(in []placement.Instance, _ placement.Call) int {
		for i, x := range in {
			if _, ok := c.prefer.Load(x.ID); ok {
				return i
			}
		}
		return 0
	}))
	if l.server == nil {
		b := newBus(t, bus.WithName("a"), prefer)
		c.A, c.S = b, [2]*bus.Bus{b, b}
		c.srv = [2]*rpc.Server{rpc.NewServer(b), rpc.NewServer(b)}
		c.serve(t, "svc", handlers...)
		return c
	}
	var addrs []string
	for i := range c.S {
		tr, addr := l.server(t)
		c.taps[i] = bustest.NewTap(tr)
		c.S[i] = bustest.NewBus(t, c.taps[i], bus.WithName(fmt.Sprintf("s%d", i)))
		c.srv[i] = rpc.NewServer(c.S[i])
		addrs = append(addrs, addr())
	}
	c.A = bustest.NewBus(t, l.client(addrs), bus.WithName("a"), prefer)
	c.serve(t, "svc", handlers...)
	return c
}

// serve registers name on both servers, each with its handler, and waits
// until A sees both instances.
func (c *cluster) serve(t *testing.T, name string, handlers ...handler) {
	t.Helper()
	for i := range c.S {
		h := handlers[i](c, i)
		ref, err := rpc.Handle(c.S[i], name, func(ctx context.Context, a Add) (Sum, error) {
			c.calls[i].Add(1)
			return h(ctx, a)
		}, rpc.WithServer(c.srv[i]))
		if err != nil {
			t.Fatal(err)
		}
		c.refs[i] = append(c.refs[i], ref)
	}
	c.waitInstances(t, name, 2)
}

// waitInstances waits until A sees n instances of name.
func (c *cluster) waitInstances(t *testing.T, name string, n int) {
	t.Helper()
	for range 2000 {
		if len(c.A.Instances(name)) == n {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("A sees %v of %s, want %d", c.A.Instances(name), name, n)
}

// handler makes server i's handler of "svc".
type handler func(c *cluster, i int) func(context.Context, Add) (Sum, error)

// first makes calls start on server i.
func (c *cluster) first(i int) {
	c.prefer.Clear()
	for _, r := range c.refs[i] {
		c.prefer.Store(placement.HashID(r.Node, r.ID), true)
	}
}

// kill cuts server i off from A, as its death would; in process it stops
// server i's instances.
func (c *cluster) kill(i int) {
	if c.taps[i] == nil {
		for _, r := range c.refs[i] {
			_ = c.S[i].Stop(r)
		}
		return
	}
	bustest.Break(errors.New("killed"), c.taps[i])
}

// answers answers with its server's number.
func answers(_ *cluster, i int) func(context.Context, Add) (Sum, error) {
	return func(context.Context, Add) (Sum, error) { return Sum{i}, nil }
}

// unavailable answers CodeUnavailable, as a server that cannot serve; the
// first n calls only, when n > 0.
func unavailable(n int32) handler {
	return func(c *cluster, i int) func(context.Context, Add) (Sum, error) {
		return func(context.Context, Add) (Sum, error) {
			if n <= 0 || c.calls[i].Load() <= n {
				return Sum{}, rpc.Errorf(rpc.CodeUnavailable, "not now")
			}
			return Sum{i}, nil
		}
	}
}

// waits tells it started and waits until its ctx ends.
func waits(c *cluster, i int) func(context.Context, Add) (Sum, error) {
	return func(ctx context.Context, _ Add) (Sum, error) {
		c.start <- i
		<-ctx.Done()
		c.ended <- ctx.Err()
		return Sum{}, ctx.Err()
	}
}

func (c *cluster) started(t *testing.T, want int) {
	t.Helper()
	select {
	case i := <-c.start:
		if i != want {
			t.Fatalf("the call started on server %d, want %d", i, want)
		}
	case <-ctxFor(t).Done():
		t.Fatal("the call never started")
	}
}

// startedWithin reports whether a call started on server want within d,
// failing if it started on another.
func (c *cluster) startedWithin(t *testing.T, want int, d time.Duration) bool {
	t.Helper()
	select {
	case i := <-c.start:
		if i != want {
			t.Fatalf("the call started on server %d, want %d", i, want)
		}
		return true
	case <-time.After(d):
		return false
	}
}

func (c *cluster) counts() [2]int32 { return [2]int32{c.calls[0].Load(), c.calls[1].Load()} }

// TestFailModes runs each fail mode against real instances on two server
// nodes over real sockets: one refusing, one killed, one slow.
func TestFailModes(t *testing.T) {
	for _, s := range sockets {
		t.Run(s.name, func(t *testing.T) {
			t.Run("FailfastAndFailover", func(t *testing.T) {
				c := newCluster(t, s, unavailable(0), answers)
				c.first(0)
				_, err := rpc.Call[Sum](ctxFor(t), c.A, "svc", Add{}, rpc.Failfast())
				if !errors.Is(err, rpc.ErrUnavailable) || c.counts() != [2]int32{1, 0} {
					t.Fatalf("failfast: %v, calls %v; want ErrUnavailable from B alone", err, c.counts())
				}
				// By default a call B refused as unavailable goes to C: it never ran.
				got, err := rpc.Call[Sum](ctxFor(t), c.A, "svc", Add{})
				if err != nil || got.N != 1 || c.counts() != [2]int32{2, 1} {
					t.Fatalf("failover: %v, %v, calls %v; want C's answer after B's refusal", got, err, c.counts())
				}
			})
			t.Run("ApplicationErrorNotRetried", func(t *testing.T) {
				c := newCluster(t, s, func(*cluster, int) func(context.Context, Add) (Sum, error) {
					return func(context.Context, Add) (Sum, error) { return Sum{}, rpc.Errorf(rpc.CodeNotFound, "no") }
				}, answers)
				c.first(0)
				_, err := rpc.Call[Sum](ctxFor(t), c.A, "svc", Add{}, rpc.Failover(3), rpc.Idempotent())
				if !errors.Is(err, rpc.ErrNotFound) || c.counts() != [2]int32{1, 0} {
					t.Fatalf("got %v, calls %v; want NotFound from B alone", err, c.counts())
				}
			})
			t.Run("HandlerErrorOfARefusalNotRetried", func(t *testing.T) {
				// A handler that ran and failed with a refusal's error (its
				// own call found a mailbox full, no route, an actor
				// stopped) did run: its call is not sent again.
				for _, refusal := range []error{bus.ErrMailboxFull, bus.ErrNoRoute, bus.ErrActorStopped} {
					c := newCluster(t, s, func(*cluster, int) func(context.Context, Add) (Sum, error) {
						return func(context.Context, Add) (Sum, error) { return Sum{}, fmt.Errorf("downstream: %w", refusal) }
					}, answers)
					c.first(0)
					_, err := rpc.Call[Sum](ctxFor(t), c.A, "svc", Add{})
					if !errors.Is(err, refusal) || c.counts() != [2]int32{1, 0} {
						t.Fatalf("a handler failing with %v: got %v, calls %v; want its error from B alone", refusal, err, c.counts())
					}
					ref := c.refs[0][0]
					_, err = c.A.Ask(ctxFor(t), ref.Name, Add{})
					if !errors.Is(err, refusal) || c.counts() != [2]int32{2, 0} {
						t.Fatalf("an Ask by name, its handler failing with %v: got %v, calls %v; want its error from B alone", refusal, err, c.counts())
					}
				}
			})
			t.Run("FailoverOnKill", func(t *testing.T) {
				if s.server == nil {
					// A node's death has no form in process: a stopped
					// actor finishes the call it runs (its handler's ctx
					// does not end), so this runs between nodes only.
					return
				}
				for _, how := range []string{"not", "option", "ctx"} {
					idem := how != "not"
					c := newCluster(t, s, waits, answers)
					c.first(0)
					opts := []rpc.CallOption{rpc.Failover(2)}
					ctx := ctxFor(t)
					switch how {
					case "option":
						opts = append(opts, rpc.Idempotent())
					case "ctx":
						ctx = bus.WithIdempotent(ctx)
					}
					f := rpc.Go[Sum](ctx, c.A, "svc", Add{}, opts...)
					c.started(t, 0)
					c.kill(0)
					got, err := f.Wait()
					switch {
					case !idem && (!errors.Is(err, bus.ErrPeerGone) || c.counts() != [2]int32{1, 0}):
						t.Fatalf("not idempotent: %v, %v, calls %v; want ErrPeerGone: it may have run", got, err, c.counts())
					case idem && (err != nil || got.N != 1 || c.counts() != [2]int32{1, 1}):
						t.Fatalf("idempotent: %v, %v, calls %v; want C's answer", got, err, c.counts())
					}
					// The killed node's handler saw its caller go.
					select {
					case e := <-c.ended:
						if !errors.Is(e, context.Canceled) {
							t.Fatalf("B's handler ended with %v, want context.Canceled", e)
						}
					case <-ctxFor(t).Done():
						t.Fatal("B's handler never saw its link go down")
					}
				}
			})
			t.Run("Failtry", func(t *testing.T) {
				c := newCluster(t, s, unavailable(2), answers)
				c.first(0)
				got, err := rpc.Call[Sum](ctxFor(t), c.A, "svc", Add{}, rpc.Failtry(3))
				if err != nil || got.N != 0 || c.counts() != [2]int32{3, 0} {
					t.Fatalf("got %v, %v, calls %v; want B's answer on its third try", got, err, c.counts())
				}
				c2 := newCluster(t, s, unavailable(5), answers)
				c2.first(0)
				_, err = rpc.Call[Sum](ctxFor(t), c2.A, "svc", Add{}, rpc.Failtry(2))
				if !errors.Is(err, rpc.ErrUnavailable) || c2.counts() != [2]int32{3, 0} {
					t.Fatalf("got %v, calls %v; want ErrUnavailable after three tries of B", err, c2.counts())
				}
			})
			t.Run("Failbackup", func(t *testing.T) {
				c := newCluster(t, s, waits, answers)
				// The hedge goes after its delay whether or not B has taken
				// up the first request: on a loaded machine B may not have
				// begun it when C's answer cancels it, and then it never
				// runs. Each try doubles the delay until B is seen to begin.
				for delay := 20 * time.Millisecond; ; delay *= 2 {
					c.first(0)
					got, err := rpc.Call[Sum](ctxFor(t), c.A, "svc", Add{}, rpc.Failbackup(delay))
					if err != nil || got.N != 1 {
						t.Fatalf("got %v, %v; want C's answer to the hedge", got, err)
					}
					if c.startedWithin(t, 0, time.Second) {
						break
					}
					if delay > 5*time.Second {
						t.Fatal("the first request never started, however long the hedge waited")
					}
				}
				select {
				case e := <-c.ended:
					if !errors.Is(e, context.Canceled) {
						t.Fatalf("the slow request ended with %v, want context.Canceled", e)
					}
				case <-ctxFor(t).Done():
					t.Fatal("the slow request was never cancelled")
				}
				// A fast first answer needs no hedge.
				c.first(1)
				before := c.counts()
				got, err := rpc.Call[Sum](ctxFor(t), c.A, "svc", Add{}, rpc.Failbackup(10*time.Second))
				if err != nil || got.N != 1 || c.counts() != [2]int32{before[0], before[1] + 1} {
					t.Fatalf("got %v, %v, calls %v after %v; want C alone", got, err, c.counts(), before)
				}
			})
			t.Run("FailbackupFirstRefused", func(t *testing.T) {
				// The first request is refused at once: the second goes
				// then, not after the hedge's delay (here longer than the test).
				c := newCluster(t, s, unavailable(0), answers)
				c.first(0)
				got, err := rpc.Call[Sum](ctxFor(t), c.A, "svc", Add{}, rpc.Failbackup(time.Hour))
				if err != nil || got.N != 1 || c.counts() != [2]int32{1, 1} {
					t.Fatalf("got %v, %v, calls %v; want C's answer at once", got, err, c.counts())
				}
				// Both refuse: the last refusal is the answer.
				c2 := newCluster(t, s, unavailable(0), unavailable(0))
				if _, err := rpc.Call[Sum](ctxFor(t), c2.A, "svc", Add{}, rpc.Failbackup(time.Millisecond)); !errors.Is(err, rpc.ErrUnavailable) || c2.counts() != [2]int32{1, 1} {
					t.Fatalf("both refusing: %v, calls %v", err, c2.counts())
				}
			})
			t.Run("NoOtherInstance", func(t *testing.T) {
				// With the other server gone, failover has nowhere to go:
				// the refusal stands, after one try.
				c := newCluster(t, s, unavailable(0), answers)
				c.kill(1)
				c.waitInstances(t, "svc", 1)
				if _, err := rpc.Call[Sum](ctxFor(t), c.A, "svc", Add{}, rpc.Failover(3)); !errors.Is(err, rpc.ErrUnavailable) || c.counts() != [2]int32{1, 0} {
					t.Fatalf("got %v, calls %v; want B's refusal", err, c.counts())
				}
				// Failtry gives up when the caller's ctx ends, in its pause.
				ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
				defer cancel()
				_, err := rpc.Call[Sum](ctx, c.A, "svc", Add{}, rpc.Failtry(1000), rpc.RetryBudget(&placement.Budget{Rate: 1e6, Burst: 1000}))
				if !errors.Is(err, rpc.ErrUnavailable) && !errors.Is(err, bus.ErrDeadline) {
					t.Fatalf("failtry past its ctx: %v", err)
				}
			})
			t.Run("RetryBudget", func(t *testing.T) {
				// Both servers fail every call as unavailable: each call would
				// be sent again, but the budget allows four retries in all.
				for _, mode := range []rpc.CallOption{rpc.Failtry(5), rpc.Failover(5)} {
					c := newCluster(t, s, unavailable(0), unavailable(0))
					budget := &placement.Budget{Rate: 0.001, Burst: 4} // no refill within the test
					const calls = 20
					for range calls {
						if _, err := rpc.Call[Sum](ctxFor(t), c.A, "svc", Add{}, mode, rpc.RetryBudget(budget)); !errors.Is(err, rpc.ErrUnavailable) {
							t.Fatalf("got %v, want ErrUnavailable", err)
						}
					}
					if n := c.calls[0].Load() + c.calls[1].Load(); n != calls+4 {
						t.Fatalf("the servers took %d calls, want %d: %d calls and the budget's 4 retries", n, calls+4, calls)
					}
				}
			})
		})
	}
}
