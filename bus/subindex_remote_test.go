package bus_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/xbus-dev/xbus/bus"
)

// A publish finds a peer's subscriptions through the subject index: among
// a thousand that it does not match, each subscription whose pattern
// matches gets the message once and no other gets it; subscriptions that
// end leave the index, and a publish no longer goes to them.
func TestRemotePublishMatchesThroughIndex(t *testing.T) {
	eachLink(t, func(t *testing.T, rl realLink) {
		server, client := rl.pair(t, nil, nil)
		ctx := context.Background()
		subs := map[string]*bus.Subscription{}
		subscribe := func(p string) {
			s, err := server.Subscribe(ctx, p)
			if err != nil {
				t.Fatal(err)
			}
			subs[p] = s
		}
		const others = 1000
		for i := range others {
			subscribe(fmt.Sprintf("other.%d.x", i))
		}
		for _, p := range []string{"prices.*", "prices.>", "*.eur", "prices.usd", "end.*"} {
			subscribe(p)
		}
		knows := func(n int) {
			t.Helper()
			eventually(t, "the client knowing the server's subscriptions", func() error {
				if got, _ := bus.RemoteSubs(client); got != n {
					return fmt.Errorf("%d of %d", got, n)
				}
				return bus.RemoteIndexAgrees(client)
			})
		}
		knows(len(subs))
		// publish sends each subject, then "end.x", and waits for it: the
		// link keeps their order, so every earlier one has arrived.
		publish := func(subjects ...string) {
			t.Helper()
			for _, s := range append(subjects, "end.x") {
				if err := client.Publish(s, s); err != nil {
					t.Fatal(err)
				}
			}
			rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			if m, err := subs["end.*"].Next(rctx); err != nil || m.Msg != "end.x" {
				t.Fatalf("end.*: %v, %v", m, err)
			}
		}
		// got takes what each open subscription holds.
		got := func() map[string][]any {
			out := map[string][]any{}
			for p, s := range subs {
				for len(s.Messages()) > 0 {
					out[p] = append(out[p], (<-s.Messages()).Msg)
				}
			}
			return out
		}
		check := func(got, want map[string][]any) {
			t.Helper()
			if len(got) != len(want) {
				t.Errorf("messages went to %d subscriptions, want %d: %v", len(got), len(want), got)
			}
			for p, w := range want {
				if fmt.Sprint(got[p]) != fmt.Sprint(w) {
					t.Errorf("%s got %v, want %v", p, got[p], w)
				}
			}
		}
		publish("prices.eur", "prices.usd", "other.7.x", "other.7.y", "nothing.at.all", "other")
		check(got(), map[string][]any{
			"prices.*":   {"prices.eur", "prices.usd"},
			"prices.>":   {"prices.eur", "prices.usd"},
			"*.eur":      {"prices.eur"},
			"prices.usd": {"prices.usd"},
			"other.7.x":  {"other.7.x"},
		})

		// Half the others and "prices.>" end; the index forgets them.
		for i := 0; i < others; i += 2 {
			p := fmt.Sprintf("other.%d.x", i)
			subs[p].Close()
			delete(subs, p)
		}
		subs["prices.>"].Close()
		delete(subs, "prices.>")
		knows(len(subs))
		publish("prices.eur", "other.8.x", "other.9.x")
		check(got(), map[string][]any{
			"prices.*":  {"prices.eur"},
			"*.eur":     {"prices.eur"},
			"other.9.x": {"other.9.x"},
		})
		if n := server.DeadLetterCount(bus.ErrNoRoute); n != 0 {
			t.Errorf("%d publishes reached the server for subscriptions that had ended", n)
		}
	})
}

// Subscriptions come and go on one node while another publishes to it:
// a subscription that stays gets every message in order, and once the
// churn stops the publisher's index holds exactly the subscriptions left.
func TestRemoteSubscriptionsComeAndGoDuringPublishes(t *testing.T) {
	eachLink(t, func(t *testing.T, rl realLink) {
		server, client := rl.pair(t, nil, nil)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		stable := subscribeRemote(t, server, client, "s.>")
		const sent = 2000
		recvErr := make(chan error, 1)
		go func() {
			for i := range sent {
				m, err := stable.Next(ctx)
				if err != nil || m.Msg != i {
					recvErr <- fmt.Errorf("message %d: got %v, %v", i, m.Msg, err)
					return
				}
			}
			recvErr <- nil
		}()
		stop := make(chan struct{})
		var churn sync.WaitGroup
		patterns := []string{"s.*", "s.a", "*.a", "s.>", ">", "x.y", "s.a.>", "*.*"}
		for g := range 4 {
			churn.Go(func() {
				r := rand.New(rand.NewPCG(uint64(g), 7))
				var open []*bus.Subscription
				for {
					select {
					case <-stop:
						for _, s := range open {
							s.Close()
						}
						return
					default:
					}
					if len(open) < 8 && r.IntN(2) == 0 {
						s, err := server.Subscribe(ctx, patterns[r.IntN(len(patterns))], bus.WithWindow(4), bus.WithSlowPolicy(bus.SlowDropOldest))
						if err != nil {
							t.Error(err)
							return
						}
						open = append(open, s)
					} else if len(open) > 0 {
						i := r.IntN(len(open))
						open[i].Close()
						open = append(open[:i], open[i+1:]...)
					}
					time.Sleep(time.Duration(r.IntN(200)) * time.Microsecond)
				}
			})
		}
		var pubs sync.WaitGroup
		pubs.Go(func() {
			for i := range sent {
				if err := client.PublishContext(ctx, "s.a", i); err != nil {
					t.Errorf("publish %d: %v", i, err)
					return
				}
			}
		})
		pubs.Go(func() { // another publisher, on subjects some churners match
			for i := 0; ctx.Err() == nil; i++ {
				select {
				case <-stop:
					return
				default:
				}
				if err := client.PublishContext(ctx, "x.y", i); err != nil {
					t.Errorf("publish x.y %d: %v", i, err)
					return
				}
				if i%16 == 0 {
					time.Sleep(100 * time.Microsecond)
				}
			}
		})
		if err := <-recvErr; err != nil {
			t.Fatal(err)
		}
		close(stop)
		churn.Wait()
		pubs.Wait()
		eventually(t, "only the stable subscription left in the index", func() error {
			if n, _ := bus.RemoteSubs(client); n != 1 {
				return fmt.Errorf("%d known", n)
			}
			return bus.RemoteIndexAgrees(client)
		})
		if n := stable.Dropped(); n != 0 {
			t.Errorf("the stable subscription dropped %d", n)
		}
	})
}

// A publish that matches none of a peer's thousand subscriptions allocates
// nothing (one that reaches one: BenchmarkPublishRemote).
func TestRemotePublishNoMatchAllocs(t *testing.T) {
	server, client := linkedPair(t)
	ctx := context.Background()
	for i := range 1000 {
		if _, err := server.Subscribe(ctx, fmt.Sprintf("other.%d.*", i), bus.WithWindow(1)); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "the subscriptions announced", func() error {
		if n, _ := bus.RemoteSubs(client); n != 1000 {
			return errors.New("not yet")
		}
		return nil
	})
	allocs := testing.AllocsPerRun(1000, func() {
		if err := client.Publish("prices.eur", 1); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("a publish matching no remote subscription allocates %.1f times", allocs)
	}
}
