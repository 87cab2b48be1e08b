package bus_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/xbus-dev/xbus/bus"
	"github.com/xbus-dev/xbus/codec"
	"github.com/xbus-dev/xbus/netbus"
)

var (
	errOutOfStock   = errors.New("orders: out of stock")
	errCardDeclined = errors.New("orders: card declined")
	errNoPayment    = fmt.Errorf("orders: payment refused: %w", errCardDeclined)
)

// orderTypes is a node's registry: every node registers the same errors
// under the same names.
func orderTypes(t testing.TB) *bus.Types {
	t.Helper()
	types := bus.NewTypes()
	for name, err := range map[string]error{
		"orders.out-of-stock":  errOutOfStock,
		"orders.payment":       errNoPayment,
		"orders.card-declined": errCardDeclined,
	} {
		if err := types.RegisterError(name, err); err != nil {
			t.Fatal(err)
		}
	}
	return types
}

// tcpServer is a bus listening on TCP; tcpClient a bus linked to it. Each
// has its own registry, as two processes would.
func tcpServer(t *testing.T, types *bus.Types) (*bus.Bus, []string) {
	t.Helper()
	tr := netbus.New(netbus.Config{Listen: []string{"tcp://127.0.0.1:0"}})
	b, err := bus.New(bus.WithName("server"), bus.WithTransport(tr), bus.WithTypes(types))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closeBus(t, b) })
	return b, tr.Addrs()
}

func tcpClient(t *testing.T, types *bus.Types, addrs []string) *bus.Bus {
	t.Helper()
	b, err := bus.New(bus.WithName("client"), bus.WithTypes(types), bus.WithTransport(netbus.New(netbus.Config{Peers: addrs})))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closeBus(t, b) })
	return b
}

func closeBus(t *testing.T, b *bus.Bus) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := b.Close(ctx); err != nil {
		t.Errorf("close: %v", err)
	}
}

// failing answers each ask with the error its text names.
var failing = bus.ActorFunc(func(c *bus.Context, msg any) error {
	if !c.IsAsk() {
		return nil
	}
	switch msg {
	case "plain":
		c.ReplyError(errOutOfStock)
	case "wrapped":
		c.ReplyError(fmt.Errorf("item 7: %w", errOutOfStock))
	case "chained":
		c.ReplyError(errNoPayment)
	case "failed":
		return fmt.Errorf("reserving item 7: %w", errOutOfStock)
	case "coded":
		c.ReplyError(&bus.RemoteError{Code: 4000, Text: "orders: teapot"})
	}
	return nil
})

// TestErrorsCross: an application error registered on both nodes matches
// with errors.Is on the asking side, wrapped or not, inside an actor's
// failure, and with what it wraps; a code no bus defines reaches its asker
// at once; all as in process. A node that does not know the name gets the
// error's name, code and text.
func TestErrorsCross(t *testing.T) {
	server, addrs := tcpServer(t, orderTypes(t))
	if _, err := server.Register("orders", failing); err != nil {
		t.Fatal(err)
	}
	knows := tcpClient(t, orderTypes(t), addrs)
	unaware := tcpClient(t, bus.NewTypes(), addrs)
	waitFor(t, knows, "orders")
	waitFor(t, unaware, "orders")

	cases := []struct {
		ask  string
		is   []error
		code bus.Code
		text string
	}{
		{"plain", []error{errOutOfStock}, bus.CodeApplication, "orders: out of stock"},
		{"wrapped", []error{errOutOfStock}, bus.CodeApplication, "item 7: orders: out of stock"},
		{"chained", []error{errNoPayment, errCardDeclined}, bus.CodeApplication, "orders: payment refused: orders: card declined"},
		{"failed", []error{bus.ErrActorFailed, errOutOfStock}, bus.CodeActorFailed, "bus: actor failed: reserving item 7: orders: out of stock"},
		{"coded", []error{&bus.RemoteError{Code: 4000}}, 4000, "orders: teapot"},
	}
	for _, asker := range []struct {
		name string
		b    *bus.Bus
	}{{"in process", server}, {"over tcp", knows}} {
		for _, c := range cases {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			_, err := asker.b.Ask(ctx, "orders", c.ask)
			cancel()
			if errors.Is(err, bus.ErrDeadline) || err == nil {
				t.Fatalf("%s, %s: ask ended with %v, want the actor's error", asker.name, c.ask, err)
			}
			for _, want := range c.is {
				if !errors.Is(err, want) {
					t.Errorf("%s, %s: errors.Is(%q, %q) = false", asker.name, c.ask, err, want)
				}
			}
			if got := bus.CodeOf(err); got != c.code {
				t.Errorf("%s, %s: CodeOf = %d, want %d", asker.name, c.ask, got, c.code)
			}
			if err.Error() != c.text {
				t.Errorf("%s, %s: text %q, want %q", asker.name, c.ask, err, c.text)
			}
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := unaware.Ask(ctx, "orders", "wrapped")
	var re *bus.RemoteError
	if !errors.As(err, &re) || re.Name != "orders.out-of-stock" || re.Code != bus.CodeApplication || re.Text != "item 7: orders: out of stock" {
		t.Fatalf("a node that does not know the error got %#v (%v)", re, err)
	}
	if errors.Is(err, errOutOfStock) {
		t.Fatal("an error matched on a node that never registered it")
	}
}

func TestRegisterErrorRejects(t *testing.T) {
	types := orderTypes(t)
	if err := types.RegisterError("orders.out-of-stock", errOutOfStock); err != nil {
		t.Fatalf("registering the same error again: %v", err)
	}
	for _, c := range []struct {
		name string
		err  error
		want string
	}{
		{"", errOutOfStock, "must be 1.."},
		{strings.Repeat("n", bus.MaxTypeLen+1), errOutOfStock, "must be 1.."},
		{"nil", nil, "nil error"},
		{"orders.out-of-stock", errCardDeclined, "already names"},
		{"other", errOutOfStock, "already registered"},
		{"full", bus.ErrMailboxFull, "bus sentinel"},
		{"uncomparable", uncomparableError{}, "not comparable"},
	} {
		err := types.RegisterError(c.name, c.err)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("RegisterError(%.20q, %v) = %v, want an error saying %q", c.name, c.err, err, c.want)
		}
	}
}

type uncomparableError struct{ s []string }

func (uncomparableError) Error() string { return "uncomparable" }

// TestErrorBodyAnyCode: an error body with a code this node does not know
// decodes, keeping the code, so that its ask is answered with it.
func TestErrorBodyAnyCode(t *testing.T) {
	types := bus.NewTypes()
	for _, c := range []bus.Codec{bus.JSON, codec.Binary()} {
		env := bus.Envelope{Kind: bus.KindError, Type: "orders.unknown", Body: []byte{0x7f, 'x'}}
		if err := types.DecodeBody(c, &env); err != nil {
			t.Fatal(err)
		}
		re, ok := env.Msg.(*bus.RemoteError)
		if !ok || re.Code != 0x7f || re.Name != "orders.unknown" || re.Text != "x" {
			t.Fatalf("decoded %#v", env.Msg)
		}
		if !errors.Is(re, &bus.RemoteError{Code: 0x7f}) || errors.Is(re, &bus.RemoteError{Code: 0x7e}) {
			t.Fatal("a coded error does not match its code alone")
		}
	}
}

// TestNoRouteNamesTheName: every ErrNoRoute says which name or Ref found no
// route, in process and from a peer.
func TestNoRouteNamesTheName(t *testing.T) {
	server, client := linkedPair(t)
	ref, err := server.Register("gone", bus.ActorFunc(func(*bus.Context, any) error { return nil }))
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, client, "gone") // the link is up
	if err := server.Stop(ref); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, askName := server.Ask(ctx, "nobody", 1)
	tellRef := server.Tell(ref, 1)
	stopRef := server.Stop(ref)
	_, remoteRef := client.Ask(ctx, ref, 1)
	for what, c := range map[string]struct {
		err  error
		name string
	}{
		"ask by name":     {askName, `"nobody"`},
		"tell to a Ref":   {tellRef, ref.String()},
		"stop of a Ref":   {stopRef, ref.String()},
		"ask from a peer": {remoteRef, ref.String()},
	} {
		if !errors.Is(c.err, bus.ErrNoRoute) || !strings.Contains(c.err.Error(), c.name) {
			t.Errorf("%s: %v, want ErrNoRoute naming %s", what, c.err, c.name)
		}
	}
}
