package bus_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/xbus-dev/xbus/bus"
	"github.com/xbus-dev/xbus/bus/placement"
	"github.com/xbus-dev/xbus/codec"
	"github.com/xbus-dev/xbus/netbus"
)

// tagged answers every ask with tag.
func tagged(tag string) bus.Actor {
	return bus.ActorFunc(func(c *bus.Context, msg any) error {
		if !c.IsAsk() {
			return nil
		}
		return c.Reply(tag)
	})
}

// askCounts asks name n times and counts the replies.
func askCounts(t *testing.T, b *bus.Bus, name string, n int) map[any]int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	counts := map[any]int{}
	for range n {
		r, err := b.Ask(ctx, name, "x")
		if err != nil {
			t.Fatal(err)
		}
		counts[r]++
	}
	return counts
}

// Instances registered WithWeight get their share of a weighted round
// robin's calls exactly: over every Σweight calls each gets its weight.
func TestWeightInProcess(t *testing.T) {
	b, err := bus.New(bus.WithLogger(quiet), bus.WithPlacementFor("svc", &placement.WeightedRoundRobin{}))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close(context.Background())
	for tag, opts := range map[string][]bus.ActorOption{
		"one":  nil, // no weight: 1
		"two":  {bus.WithWeight(2)},
		"five": {bus.WithWeight(5)},
	} {
		if _, err := b.Register("svc", tagged(tag), opts...); err != nil {
			t.Fatal(err)
		}
	}
	got := askCounts(t, b, "svc", 800)
	if got["one"] != 100 || got["two"] != 200 || got["five"] != 500 {
		t.Fatalf("800 asks went %v; want one 100, two 200, five 500", got)
	}
	for _, w := range []int{-1, bus.MaxWeight + 1} {
		if _, err := b.Register("svc", tagged("bad"), bus.WithWeight(w)); err == nil {
			t.Errorf("Register with weight %d succeeded", w)
		}
	}
	if n := len(b.Instances("svc")); n != 3 {
		t.Fatalf("%d instances after refused registrations, want 3", n)
	}
}

// An instance's weight reaches its name's other nodes with the name: the
// client's weighted round robin gives the server's instance of weight 3
// three asks for every one its own instance (weight 1) gets.
func TestWeightReachesPeers(t *testing.T) {
	eachLink(t, func(t *testing.T, rl realLink) {
		server, client := rl.pair(t, nil, []bus.Option{bus.WithPlacementFor("svc", &placement.WeightedRoundRobin{})})
		ref, err := server.Register("svc", tagged("server"), bus.WithWeight(3))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := client.Register("svc", tagged("client")); err != nil {
			t.Fatal(err)
		}
		eventually(t, "the client knowing the server's instance and weight", func() error {
			if w := bus.Weights(client, "svc"); w[ref] != 3 || len(w) != 2 {
				return fmt.Errorf("weights %v", w)
			}
			return nil
		})
		if got := askCounts(t, client, "svc", 400); got["server"] != 300 || got["client"] != 100 {
			t.Fatalf("400 asks went %v; want server 300, client 100", got)
		}
	})
}

// A peer that announces a weight above MaxWeight has that instance
// ignored; an announcement without a weight, as a node that predates
// weights sends it, gives weight 1. A node that predates weights decodes
// an announcement with one, the key it does not know left aside.
func TestWeightAnnounced(t *testing.T) {
	st := newSpy(netbus.Config{Listen: []string{"tcp://127.0.0.1:0"}})
	server := linkedBus(t, bus.WithName("server"), bus.WithTransport(st))
	ct := newSpy(netbus.Config{Peers: st.Addrs()})
	client := linkedBus(t, bus.WithName("client"), bus.WithTransport(ct))
	l := <-ct.links
	// Once the server has the client's first, whole state (a reset, which
	// would replace what came before it), announcements only add.
	if _, err := client.Register("ready", tagged("ready")); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the client's state taken", func() error {
		if len(server.Instances("ready")) != 1 {
			return errors.New("not yet")
		}
		return nil
	})
	announce := func(name string, id uint64, weight uint32) {
		env := &bus.Envelope{Kind: bus.KindSystem, From: bus.Ref{Node: client.NodeID()}, Msg: bus.ForgedName(name, id, weight)}
		body, err := client.Types().EncodeBody(l.Codec(), env, nil)
		if err != nil {
			t.Fatal(err)
		}
		env.Body = body
		if err := l.Send(context.Background(), env); err != nil {
			t.Fatal(err)
		}
	}
	announce("heavy", 7001, bus.MaxWeight+1)
	announce("old", 7002, 0)
	announce("light", 7003, 4)
	eventually(t, "the valid announcements taken", func() error {
		if len(server.Instances("old")) != 1 || len(server.Instances("light")) != 1 {
			return errors.New("not yet")
		}
		return nil
	})
	if refs := server.Instances("heavy"); len(refs) != 0 {
		t.Errorf("an instance announced with weight %d was taken: %v", bus.MaxWeight+1, refs)
	}
	for name, want := range map[string]int{"old": 0, "light": 4} { // 0 counts as 1
		for _, w := range bus.Weights(server, name) {
			if w != want {
				t.Errorf("%s: weight %d, want %d", name, w, want)
			}
		}
	}

	// What a node that predates weights knows of the announcement.
	type oldEntry struct {
		Name string `json:"n" cbor:"1,keyasint"`
		ID   uint64 `json:"i" cbor:"2,keyasint"`
	}
	type oldNames struct {
		Add []oldEntry `json:"add,omitempty" cbor:"2,keyasint,omitempty"`
	}
	for _, c := range []bus.Codec{codec.Binary(), bus.JSON} {
		data, err := c.Append(nil, bus.ForgedName("svc", 9, 3))
		if err != nil {
			t.Fatal(err)
		}
		var old oldNames
		if err := c.Decode(data, &old); err != nil || len(old.Add) != 1 || old.Add[0] != (oldEntry{"svc", 9}) {
			t.Errorf("%s: an old node decodes %+v, %v", c.Name(), old, err)
		}
	}
}
