package rpc_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/xbus-dev/xbus/bus"
	"github.com/xbus-dev/xbus/rpc"
)

// Order is a struct whose fields a codec that decoded it with another's
// rules would garble (a nested slice, a map, a negative number).
type Order struct {
	ID    int64
	Items []string
	Qty   map[string]int32
}

func orderN(n int) Order {
	return Order{ID: -int64(n), Items: []string{"tea", fmt.Sprint(n)}, Qty: map[string]int32{"tea": int32(n)}}
}

func sameOrder(a, b Order) bool {
	if a.ID != b.ID || !slices.Equal(a.Items, b.Items) || len(a.Qty) != len(b.Qty) {
		return false
	}
	for k, v := range a.Qty {
		if b.Qty[k] != v {
			return false
		}
	}
	return true
}

// TestMixedLinkCodecs links nodes whose transports prefer different
// codecs, over each remote transport, and checks that asks and their
// replies, tells, publishes, server and bidirectional streams arrive
// decoded both ways. Before the handshake agreed on a codec, such nodes
// did not link at all.
func TestMixedLinkCodecs(t *testing.T) {
	for _, tr := range mixedTransports() {
		t.Run(tr.name, func(t *testing.T) {
			a, b := tr.make(t)
			ends := []struct {
				name string
				bus  *bus.Bus
				tell chan Order
			}{{"a", a, make(chan Order, 1)}, {"b", b, make(chan Order, 1)}}
			for _, e := range ends {
				if err := e.bus.Types().Register("mixed.order", Order{}); err != nil {
					t.Fatal(err)
				}
				for _, err := range []error{
					second(rpc.Handle(e.bus, "mixed.ask."+e.name, func(_ context.Context, o Order) (Order, error) {
						o.ID *= 2
						return o, nil
					})),
					second(rpc.Handle(e.bus, "mixed.tell."+e.name, func(_ context.Context, o Order) (struct{}, error) {
						e.tell <- o
						return struct{}{}, nil
					})),
					second(rpc.HandleServerStream(e.bus, "mixed.count."+e.name, func(_ context.Context, o Order, send func(Order) error) error {
						for i := range 3 {
							if err := send(orderN(int(o.ID) + i)); err != nil {
								return err
							}
						}
						return nil
					})),
					second(rpc.HandleBidiStream(e.bus, "mixed.echo."+e.name, func(_ context.Context, in *rpc.Receiver[Order], send func(Order) error) error {
						for o, err := range in.All() {
							if err != nil {
								return err
							}
							if err := send(o); err != nil {
								return err
							}
						}
						return nil
					})),
				} {
					if err != nil {
						t.Fatal(err)
					}
				}
			}
			for i, from := range ends {
				to := ends[1-i]
				for _, n := range []string{"ask", "tell", "count", "echo"} {
					if err := from.bus.WaitFor(ctxFor(t), "mixed."+n+"."+to.name); err != nil {
						t.Fatal(err)
					}
				}
			}
			for i, from := range ends {
				to := ends[1-i]
				t.Run(from.name+"-to-"+to.name, func(t *testing.T) {
					ctx := ctxFor(t)
					got, err := rpc.Call[Order](ctx, from.bus, "mixed.ask."+to.name, orderN(7))
					want := orderN(7)
					want.ID *= 2
					if err != nil || !sameOrder(got, want) {
						t.Fatalf("ask: %+v, %v; want %+v", got, err, want)
					}
					if err := rpc.Send(ctx, from.bus, "mixed.tell."+to.name, orderN(3)); err != nil {
						t.Fatal(err)
					}
					select {
					case o := <-to.tell:
						if !sameOrder(o, orderN(3)) {
							t.Fatalf("tell: got %+v", o)
						}
					case <-ctx.Done():
						t.Fatal("the tell never arrived")
					}
					var items []Order
					for o, err := range rpc.CallServerStream[Order](ctx, from.bus, "mixed.count."+to.name, orderN(-10)) {
						if err != nil {
							t.Fatalf("server stream: %v", err)
						}
						items = append(items, o)
					}
					if len(items) != 3 || !sameOrder(items[0], orderN(10)) || !sameOrder(items[2], orderN(12)) {
						t.Fatalf("server stream: %+v", items)
					}
					bs, err := rpc.OpenBidiStream[Order, Order](ctx, from.bus, "mixed.echo."+to.name)
					if err != nil {
						t.Fatal(err)
					}
					for n := range 3 {
						if err := bs.Send(orderN(n)); err != nil {
							t.Fatal(err)
						}
						if o, err := bs.Recv(); err != nil || !sameOrder(o, orderN(n)) {
							t.Fatalf("bidi stream item %d: %+v, %v", n, o, err)
						}
					}
					bs.Close()
					testPublish(t, from.bus, to.bus, "mixed.to."+to.name)
				})
			}
		})
	}
}

// testPublish subscribes on to and publishes from from until an Order
// arrives, decoded.
func testPublish(t *testing.T, from, to *bus.Bus, subject string) {
	t.Helper()
	ctx := ctxFor(t)
	sub, err := to.Subscribe(ctx, subject)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	for {
		if err := from.Publish(subject, orderN(5)); err != nil {
			t.Fatal(err)
		}
		c, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
		m, err := sub.Next(c)
		cancel()
		if err == nil {
			if o, ok := m.Msg.(Order); !ok || !sameOrder(o, orderN(5)) {
				t.Fatalf("publish: got %#v", m.Msg)
			}
			return
		}
		if !errors.Is(err, context.DeadlineExceeded) || ctx.Err() != nil {
			t.Fatalf("publish never arrived: %v", err)
		}
	}
}
