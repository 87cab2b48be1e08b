package netbus

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/xbus-dev/xbus/bus"
	"github.com/xbus-dev/xbus/bus/bustest"
)

// quietLog keeps the relink tests' expected warnings out of the output.
var quietLog = slog.New(slog.DiscardHandler)

// freeTCP returns a TCP address nobody listens on yet.
func freeTCP(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return "tcp://" + ln.Addr().String()
}

// A client started before its server keeps dialing until the server is up,
// and links again to a server that restarts on the same address, over TCP
// and a Unix socket: the bus redials, the transport only dials once.
func TestBusKeepsAddressLinked(t *testing.T) {
	network(t, func(t *testing.T, listen string) {
		addr := listen
		if strings.HasPrefix(listen, "tcp") {
			addr = freeTCP(t)
		}
		client, err := bus.New(bus.WithName("client"), bus.WithTransport(New(Config{})), bus.WithLogger(quietLog),
			bus.WithPeers(addr), bus.WithBackoff(time.Millisecond, 20*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		defer client.Close(context.Background())
		bustest.WaitLinks(t, client, "dialing a server that is not up", func(ls []bus.LinkInfo) bool {
			return len(ls) == 1 && ls[0].State == bus.LinkDialing && ls[0].Attempts >= 2
		})
		for gen := range 3 {
			srv, err := bus.New(bus.WithName("server"), bus.WithTransport(New(Config{Listen: []string{addr}})), bus.WithLogger(quietLog))
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
			if len(ls) != 1 || ls[0].Addr != addr || ls[0].Peer != srv.NodeID() || ls[0].State != bus.LinkReady {
				t.Fatalf("server %d: links %+v", gen, ls)
			}
			srv.Close(context.Background())
			bustest.WaitLinks(t, client, "after the server closed", func(ls []bus.LinkInfo) bool {
				return len(ls) == 1 && ls[0].State == bus.LinkDialing
			})
		}
	})
}

// A wrong secret is a refusal retrying cannot heal: the bus dials once and
// stops, and Links says why.
func TestBusStopsAtWrongSecret(t *testing.T) {
	srvT := New(Config{Listen: []string{"tcp://127.0.0.1:0"}, Secret: []byte("right")})
	srv, err := bus.New(bus.WithTransport(srvT), bus.WithLogger(quietLog))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close(context.Background())
	events := make(chan bus.LinkInfo, 16)
	client, err := bus.New(bus.WithTransport(New(Config{Secret: []byte("wrong")})), bus.WithLogger(quietLog),
		bus.WithBackoff(time.Millisecond, 2*time.Millisecond),
		bus.WithLinkEvents(func(i bus.LinkInfo) { events <- i }))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close(context.Background())
	if err := client.Connect(srvT.Addrs()[0]); err != nil {
		t.Fatal(err)
	}
	e := <-events
	if e.State != bus.LinkRefused || !errors.Is(e.Err, bus.ErrRefused) || !errors.Is(e.Err, ErrAuth) || e.Attempts != 1 {
		t.Fatalf("event %+v, want a refusal wrapping ErrRefused and ErrAuth after one dial", e)
	}
	time.Sleep(50 * time.Millisecond) // 25 backoff periods: a keeper still dialing would have
	if ls := client.Links(); len(ls) != 1 || ls[0].State != bus.LinkRefused || ls[0].Attempts != 1 {
		t.Fatalf("links %+v, want one refused address dialed once", ls)
	}
}
