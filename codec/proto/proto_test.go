package proto_test

import (
	"context"
	"errors"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	gproto "google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/xbus-dev/xbus/bus"
	"github.com/xbus-dev/xbus/bus/bustest"
	"github.com/xbus-dev/xbus/codec/proto"
	"github.com/xbus-dev/xbus/codec/proto/internal/testpb"
	"github.com/xbus-dev/xbus/netbus"
	"github.com/xbus-dev/xbus/rpc"
	"github.com/xbus-dev/xbus/shmbus"
)

func TestMain(m *testing.M) { bustest.Main(m) }

func sample() *testpb.Order {
	return &testpb.Order{Id: 7, Items: []string{"tea", "cake"}, Qty: map[string]int32{"tea": 2}, Note: "by the window"}
}

func TestRoundTrip(t *testing.T) {
	in := sample()
	b, err := proto.Codec.Append([]byte("hdr"), in)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := gproto.Marshal(in)
	if string(b[3:]) != string(want) {
		t.Fatalf("Append wrote %x, want protobuf's %x after the prefix", b[3:], want)
	}
	var out *testpb.Order // the bus hands Decode a pointer to a nil message
	if err := proto.Codec.Decode(b[3:], &out); err != nil || !gproto.Equal(in, out) {
		t.Fatalf("Decode into **Order: %v, %v", out, err)
	}
	direct := new(testpb.Order)
	if err := proto.Codec.Decode(b[3:], direct); err != nil || !gproto.Equal(in, direct) {
		t.Fatalf("Decode into *Order: %v, %v", direct, err)
	}
	b[3] ^= 0xff
	if gproto.Equal(in, out) == false {
		t.Fatal("the decoded message aliases the input")
	}
}

func TestRefusesOtherTypes(t *testing.T) {
	if _, err := proto.Codec.Append(nil, struct{ A int }{1}); !errors.Is(err, bus.ErrUnsupported) {
		t.Fatalf("Append of a struct: %v, want ErrUnsupported", err)
	}
	var n int
	if err := proto.Codec.Decode([]byte{8, 1}, &n); !errors.Is(err, bus.ErrUnsupported) {
		t.Fatalf("Decode into *int: %v, want ErrUnsupported", err)
	}
	types := bus.NewTypes()
	if err := types.RegisterFor(proto.Codec, "", 42); !errors.Is(err, bus.ErrUnsupported) {
		t.Fatalf("RegisterFor(proto, int): %v, want ErrUnsupported", err)
	}
	// The bus's own check refuses a generated message: its unexported
	// fields are protobuf's. The proto codec's accepts it.
	if err := types.Register("", testpb.Order{}); err == nil {
		t.Fatal("Register accepted a protobuf struct without the proto codec")
	}
	if err := types.RegisterFor(proto.Codec, "", &testpb.Order{}); err != nil {
		t.Fatal(err)
	}
}

// TestThroughTypes sends a message through the bus's registry as a
// transport does: by its registered name, decoded into the right type.
func TestThroughTypes(t *testing.T) {
	types := bus.NewTypes()
	if err := bus.RegisterType[*testpb.Order](types, "orders.Order"); err == nil {
		t.Fatal("RegisterType without the codec accepted a protobuf message")
	}
	if err := types.RegisterFor(proto.Codec, "orders.Order", &testpb.Order{}); err != nil {
		t.Fatal(err)
	}
	env := bus.Envelope{Kind: bus.KindTell, Msg: sample()}
	body, err := types.EncodeBody(proto.Codec, &env, nil)
	if err != nil {
		t.Fatal(err)
	}
	got := bus.Envelope{Kind: bus.KindTell, Type: env.Type, Body: body}
	if err := types.DecodeBody(proto.Codec, &got); err != nil {
		t.Fatal(err)
	}
	if m, ok := got.Msg.(*testpb.Order); !ok || !gproto.Equal(m, sample()) {
		t.Fatalf("decoded %T %v", got.Msg, got.Msg)
	}
	got = bus.Envelope{Kind: bus.KindTell, Type: env.Type, Body: []byte{0x0a, 0xff}} // a length past the end
	if err := types.DecodeBody(proto.Codec, &got); !errors.Is(err, bus.ErrBadEnvelope) {
		t.Fatalf("truncated body: %v, want ErrBadEnvelope", err)
	}
}

// TestCallWithoutCodecRefused: on a node that never registered the
// messages, a call of protobuf messages without the codec is refused
// before anything is sent, naming why.
func TestCallWithoutCodecRefused(t *testing.T) {
	b, err := bus.New()
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close(context.Background())
	_, err = rpc.Call[*testpb.Receipt](context.Background(), b, "orders.place", sample())
	if err == nil || !strings.Contains(err.Error(), "unexported") {
		t.Fatalf("a protobuf call without the proto codec: %v, want the bus's refusal of its unexported fields", err)
	}
}

// pairs builds two linked buses over each transport: a calls, b handles.
// In process they are one bus, and nothing is encoded.
func pairs() map[string]func(t *testing.T) (a, b *bus.Bus) {
	net := func(listen func(t *testing.T) string) func(t *testing.T) (*bus.Bus, *bus.Bus) {
		return func(t *testing.T) (*bus.Bus, *bus.Bus) {
			tb := netbus.New(netbus.Config{Listen: []string{listen(t)}})
			b := bustest.NewBus(t, tb, bus.WithName("b"))
			a := bustest.NewBus(t, netbus.New(netbus.Config{Peers: tb.Addrs()}), bus.WithName("a"))
			return a, b
		}
	}
	ps := map[string]func(t *testing.T) (*bus.Bus, *bus.Bus){
		"inproc": func(t *testing.T) (*bus.Bus, *bus.Bus) {
			b, err := bus.New()
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { b.Close(context.Background()) })
			return b, b
		},
		"unix": net(func(t *testing.T) string { return "unix://" + filepath.Join(t.TempDir(), "b.sock") }),
		"tcp":  net(func(*testing.T) string { return "tcp://127.0.0.1:0" }),
	}
	if runtime.GOOS == "linux" {
		ps["shm"] = func(t *testing.T) (*bus.Bus, *bus.Bus) {
			path := filepath.Join(t.TempDir(), "b.sock")
			b := bustest.NewBus(t, shmbus.New(shmbus.Config{Listen: path}), bus.WithName("b"))
			a := bustest.NewBus(t, shmbus.New(shmbus.Config{Dial: []string{path}}), bus.WithName("a"))
			return a, b
		}
	}
	return ps
}

// TestCallOverEachTransport: a typed call of protobuf messages, the codec
// chosen on both ends, over every transport; a handler's node that lacks
// the codec refuses the call with a coded error and keeps the link.
func TestCallOverEachTransport(t *testing.T) {
	for name, mk := range pairs() {
		t.Run(name, func(t *testing.T) {
			a, b := mk(t)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			place := func(_ context.Context, o *testpb.Order) (*testpb.Receipt, error) {
				var total int64
				for _, n := range o.Qty {
					total += int64(n)
				}
				return &testpb.Receipt{Id: o.Id, Total: total}, nil
			}
			if _, err := rpc.Handle(b, "orders.place", place, rpc.WithServerCodec(proto.Codec)); err != nil {
				t.Fatal(err)
			}
			if err := a.WaitFor(ctx, "orders.place"); err != nil {
				t.Fatal(err)
			}
			r, err := rpc.Call[*testpb.Receipt](ctx, a, "orders.place", sample(), rpc.WithCodec(proto.Codec))
			if err != nil || r.GetId() != 7 || r.GetTotal() != 2 {
				t.Fatalf("call: %v, %v", r, err)
			}
			if a == b {
				return
			}
			// A node that was not given the codec: a coded refusal, a dead
			// letter there, and the link stays.
			c, d := mk(t)
			if _, err := d.Register("sink", bus.ActorFunc(func(ctx *bus.Context, msg any) error { return ctx.Reply(msg) })); err != nil {
				t.Fatal(err)
			}
			if err := c.WaitFor(ctx, "sink"); err != nil {
				t.Fatal(err)
			}
			_, err = c.Ask(bus.WithCodec(ctx, proto.Codec), "sink", &wrapperspb.StringValue{Value: "x"})
			if !errors.Is(err, bus.ErrUnknownCodec) || bus.CodeOf(err) != bus.CodeUnknownCodec || !strings.Contains(err.Error(), `"proto"`) {
				t.Fatalf("an ask in a codec the far node lacks: %v (code %d), want ErrUnknownCodec naming it", err, bus.CodeOf(err))
			}
			if n := d.DeadLetterCount(bus.ErrUnknownCodec); n != 1 {
				t.Fatalf("dead letters for the unknown codec: %d, want 1", n)
			}
			if r, err := c.Ask(ctx, "sink", "still linked"); err != nil || r != "still linked" {
				t.Fatalf("after the refusal: %v, %v", r, err)
			}
		})
	}
}
