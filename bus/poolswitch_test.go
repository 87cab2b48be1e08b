package bus_test

import (
	"fmt"
	"strconv"
	"sync"
	"testing"

	"github.com/xbus-dev/xbus/bus"
	"github.com/xbus-dev/xbus/mailbox"
	"github.com/xbus-dev/xbus/netbus"
)

// Over a TCP link of four connections, four senders stream numbered tells,
// each to its own actor, so that they take different connections; a Unix
// socket link to the same node comes up and takes over. The fence on the
// TCP link travels on one of its connections, the tells on others: each
// actor still sees every number, strictly in order.
func TestSwitchFromAPooledLinkKeepsOrder(t *testing.T) {
	for round := range 10 {
		t.Run(fmt.Sprint(round), func(t *testing.T) {
			const n, senders = 20000, 4
			s, sT, unixAddr, sink0 := switchServer(t, n)
			sinks := []*orderSink{sink0}
			for i := 1; i < senders; i++ {
				o := newOrderSink(n)
				sinks = append(sinks, o)
				s.Register("sink"+strconv.Itoa(i), bus.ActorFunc(func(c *bus.Context, msg any) error {
					v, err := strconv.Atoi(fmt.Sprint(msg))
					if err != nil {
						return err
					}
					o.take(v)
					return nil
				}), bus.WithMailbox(mailbox.Options{Capacity: 1 << 16}))
			}
			c := linkedBus(t, bus.WithTransport(netbus.New(netbus.Config{PoolSize: senders})), bus.WithPeers(sT.Addrs()[0]))
			names := []string{"sink"}
			for i := 1; i < senders; i++ {
				names = append(names, "sink"+strconv.Itoa(i))
			}
			for _, name := range names {
				waitFor(t, c, name)
			}
			var wg sync.WaitGroup
			errs := make(chan error, senders)
			start := make(chan struct{})
			for k, name := range names {
				wg.Go(func() {
					<-start
					for i := range n {
						if k == 0 && i == n/10 {
							if err := c.Connect(unixAddr); err != nil {
								errs <- err
								return
							}
						}
						if err := c.Tell(name, strconv.Itoa(i)); err != nil {
							errs <- fmt.Errorf("%s: tell %d: %w", name, i, err)
							return
						}
					}
				})
			}
			close(start)
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatal(err)
			}
			for _, o := range sinks {
				o.check(t, s, c)
			}
			var unix bool
			for _, l := range c.Links() {
				unix = unix || (l.Scheme == "unix" && l.State == bus.LinkReady)
			}
			if !unix {
				t.Fatalf("the unix link never came up: %+v", c.Links())
			}
		})
	}
}
