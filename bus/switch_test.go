package bus_test

import (
	"fmt"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/xbus-dev/xbus/bus"
	"github.com/xbus-dev/xbus/mailbox"
	"github.com/xbus-dev/xbus/netbus"
)

// A sender streams numbered tells to a remote actor over TCP while a Unix
// socket link to the same node comes up and takes over: the actor sees
// every number, strictly in order.
func TestSwitchToNearerLinkKeepsOrder(t *testing.T) {
	for round := range 3 {
		t.Run(fmt.Sprint(round), func(t *testing.T) {
			unixAddr := "unix://" + filepath.Join(t.TempDir(), "s.sock")
			sT := netbus.New(netbus.Config{Listen: []string{"tcp://127.0.0.1:0", unixAddr}})
			s := linkedBus(t, bus.WithTransport(sT))
			const n = 30000
			var mu sync.Mutex
			var got []int
			done := make(chan struct{})
			s.Register("sink", bus.ActorFunc(func(c *bus.Context, msg any) error {
				v, err := strconv.Atoi(fmt.Sprint(msg))
				if err != nil {
					return err
				}
				mu.Lock()
				got = append(got, v)
				if len(got) == n {
					close(done)
				}
				mu.Unlock()
				return nil
			}), bus.WithMailbox(mailbox.Options{Capacity: 1 << 16}))
			c := linkedBus(t, bus.WithTransport(netbus.New(netbus.Config{})), bus.WithPeers(sT.Addrs()[0]))
			waitFor(t, c, "sink")
			for i := range n {
				if i == n/10 {
					if err := c.Connect(unixAddr); err != nil {
						t.Fatal(err)
					}
				}
				if err := c.Tell("sink", strconv.Itoa(i)); err != nil {
					t.Fatalf("tell %d: %v", i, err)
				}
			}
			select {
			case <-done:
			case <-time.After(30 * time.Second):
			}
			mu.Lock()
			defer mu.Unlock()
			if len(got) != n {
				t.Fatalf("the sink got %d of %d tells (dead letters: %v)", len(got), n, s.DeadLetters())
			}
			for i, v := range got {
				if v != i {
					t.Fatalf("tell %d arrived at position %d: order broke", v, i)
				}
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
