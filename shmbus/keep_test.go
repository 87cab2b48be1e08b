//go:build linux

package shmbus_test

import (
	"context"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/xbus-dev/xbus/bus"
	"github.com/xbus-dev/xbus/bus/bustest"
	"github.com/xbus-dev/xbus/shmbus"
)

// A client started before its server keeps dialing until the server is up,
// and links again to a server that restarts on the same socket: shmbus
// once dialed only at Start and never again.
func TestBusKeepsShmLinked(t *testing.T) {
	quiet := bus.WithLogger(slog.New(slog.DiscardHandler))
	path := filepath.Join(t.TempDir(), "k.sock")
	client, err := bus.New(bus.WithName("client"), bus.WithTransport(shmbus.New(shmbus.Config{})), quiet,
		bus.WithPeers("shm://"+path), bus.WithBackoff(time.Millisecond, 20*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close(context.Background())
	bustest.WaitLinks(t, client, "dialing a server that is not up", func(ls []bus.LinkInfo) bool {
		return len(ls) == 1 && ls[0].State == bus.LinkDialing && ls[0].Attempts >= 2
	})
	for gen := range 3 {
		srv, err := bus.New(bus.WithName("server"), bus.WithTransport(shmbus.New(shmbus.Config{Listen: path})), quiet)
		if err != nil {
			t.Fatal(err)
		}
		srv.Register("gen", bus.ActorFunc(func(c *bus.Context, msg any) error { return c.Reply(gen) }))
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		for {
			got, err := client.Ask(ctx, "gen", "?")
			if err == nil && got == gen {
				break
			}
			if ctx.Err() != nil {
				t.Fatalf("server %d never reached: %v %v", gen, got, err)
			}
			time.Sleep(5 * time.Millisecond)
		}
		cancel()
		ls := client.Links()
		if len(ls) != 1 || ls[0].Scheme != "shm" || ls[0].Peer != srv.NodeID() || ls[0].State != bus.LinkReady {
			t.Fatalf("server %d: links %+v", gen, ls)
		}
		srv.Close(context.Background())
		bustest.WaitLinks(t, client, "after the server closed", func(ls []bus.LinkInfo) bool {
			return len(ls) == 1 && ls[0].State == bus.LinkDialing
		})
	}
}
