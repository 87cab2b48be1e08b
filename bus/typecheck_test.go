package bus_test

import (
	"context"
	"reflect"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/xbus-dev/xbus/bus"
	"github.com/xbus-dev/xbus/codec"
)

type (
	withSecret struct {
		ID     int
		secret string
	}
	nestedSecret struct {
		Order struct {
			ID    int
			notes []string
		}
	}
	withChans struct {
		Items []struct{ Done chan struct{} }
	}
	withFunc    struct{ Then func() }
	withUnsafe  struct{ P unsafe.Pointer }
	withComplex struct{ Z complex128 }
	withMapKey  struct{ M map[withComplex]int }
	inner       struct{ A, B int }
	embeds      struct {
		inner // promoted: A and B are encoded
		C     int
	}
	skips struct {
		N    int
		Done chan struct{} `json:"-"`
	}
	stamped struct {
		At time.Time // has unexported fields, encodes itself
	}
	list struct {
		V    int
		Next *list
	}
)

// TestRegisterRefusesWhatWouldNotCross: a type whose values would arrive
// changed (an unexported field, dropped by the codec) or not at all (a field
// no codec encodes) is refused at registration, with the field named.
func TestRegisterRefusesWhatWouldNotCross(t *testing.T) {
	for _, c := range []struct {
		sample any
		field  string
	}{
		{withSecret{}, "withSecret.secret"},
		{&withSecret{}, "withSecret.secret"},
		{nestedSecret{}, "nestedSecret.Order.notes"},
		{withChans{}, "withChans.Items[].Done"},
		{withFunc{}, "withFunc.Then"},
		{withUnsafe{}, "withUnsafe.P"},
		{withComplex{}, "withComplex.Z"},
		{withMapKey{}, "withMapKey.M key.Z"},
	} {
		err := bus.NewTypes().Register("", c.sample)
		if err == nil || !strings.Contains(err.Error(), c.field) {
			t.Errorf("Register(%T) = %v, want an error naming %s", c.sample, err, c.field)
		}
	}
	for _, ok := range []any{embeds{}, skips{}, stamped{}, list{}, map[string][]int{}} {
		if err := bus.NewTypes().Register("", ok); err != nil {
			t.Errorf("Register(%T): %v", ok, err)
		}
	}
	if err := bus.RegisterType[withSecret](bus.NewTypes(), ""); err == nil {
		t.Error("RegisterType accepted a type with an unexported field")
	}
}

// TestEncodeErrorNamesTheField: an unregistered type that no codec can
// encode fails to send with an error naming the field.
func TestEncodeErrorNamesTheField(t *testing.T) {
	types := bus.NewTypes()
	for _, c := range []bus.Codec{bus.JSON, codec.Binary()} {
		env := bus.Envelope{Kind: bus.KindTell, Msg: withChans{Items: []struct{ Done chan struct{} }{{}}}}
		if _, err := types.EncodeBody(c, &env, nil); err == nil || !strings.Contains(err.Error(), "withChans.Items[].Done") {
			t.Errorf("%s: %v, want an error naming withChans.Items[].Done", c.Name(), err)
		}
	}
}

type point struct{ X, Y int }

// TestPointerToRegisteredTypeCrosses: with T registered on both sides, a *T
// sent to another node arrives as a *T, as in process, and a nil *T as a
// nil *T.
func TestPointerToRegisteredTypeCrosses(t *testing.T) {
	types := func() *bus.Types {
		ty := orderTypes(t)
		if err := bus.RegisterType[point](ty, "test.point"); err != nil {
			t.Fatal(err)
		}
		return ty
	}
	for _, c := range []bus.Codec{bus.JSON, codec.Binary()} {
		for _, msg := range []*point{{1, 2}, nil} {
			env := bus.Envelope{Kind: bus.KindTell, Msg: msg}
			body, err := types().EncodeBody(c, &env, nil)
			if err != nil {
				t.Fatal(err)
			}
			env.Body, env.Msg = body, nil
			if err := types().DecodeBody(c, &env); err != nil {
				t.Fatalf("%s: %v", c.Name(), err)
			}
			if got, ok := env.Msg.(*point); !ok || !reflect.DeepEqual(got, msg) {
				t.Fatalf("%s: %#v sent as %q arrived as %#v", c.Name(), msg, env.Type, env.Msg)
			}
		}
	}

	server, addrs := tcpServer(t, types())
	client := tcpClient(t, types(), addrs)
	if _, err := server.Register("mirror", bus.ActorFunc(func(c *bus.Context, msg any) error {
		if p, ok := msg.(*point); ok {
			return c.Reply(&point{p.Y, p.X})
		}
		if c.IsAsk() {
			return c.Reply(reflect.TypeOf(msg).String())
		}
		return nil
	})); err != nil {
		t.Fatal(err)
	}
	waitFor(t, client, "mirror")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	got, err := client.Ask(ctx, "mirror", &point{1, 2})
	if err != nil {
		t.Fatal(err)
	}
	if p, ok := got.(*point); !ok || *p != (point{2, 1}) {
		t.Fatalf("a *point arrived as %v", got)
	}
}
