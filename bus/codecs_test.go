package bus_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/xbus-dev/xbus/bus"
	"github.com/xbus-dev/xbus/mailbox"
)

// countingCodec is JSON under a name of its own that counts its use.
type countingCodec struct {
	name            string
	appends, decods atomic.Int64
}

func (c *countingCodec) Name() string { return c.name }
func (c *countingCodec) Append(dst []byte, v any) ([]byte, error) {
	c.appends.Add(1)
	b, err := json.Marshal(v)
	return append(dst, b...), err
}
func (c *countingCodec) Decode(data []byte, v any) error {
	c.decods.Add(1)
	return json.Unmarshal(data, v)
}

type codecMsg struct {
	N    int
	Text string
}

func TestEnvelopeCarriesCodec(t *testing.T) {
	in := bus.Envelope{Kind: bus.KindAsk, Corr: 9, Codec: "json", Type: "T", Body: []byte("{}")}
	b, err := in.AppendBinary(nil)
	if err != nil {
		t.Fatal(err)
	}
	if b[2]&0x10 == 0 {
		t.Fatalf("flags %#x: the codec bit 4 is not set", b[2])
	}
	var out bus.Envelope
	if err := bus.DecodeEnvelope(b, &out); err != nil {
		t.Fatal(err)
	}
	if out.Codec != "json" || out.Type != "T" || string(out.Body) != "{}" {
		t.Fatalf("decoded %+v", out)
	}
	// The default codec costs no byte: no flag, no field.
	in.Codec = ""
	short, _ := in.AppendBinary(nil)
	if len(short) != len(b)-5 || short[2]&0x10 != 0 {
		t.Fatalf("without a codec: %x, with: %x", short, b)
	}
	// An empty name under the flag, and a name over the limit, are refused.
	bad := append([]byte{2, 1, 0x10, 0}, 0, 0)
	if err := bus.DecodeEnvelope(bad, &out); !errors.Is(err, bus.ErrBadEnvelope) {
		t.Fatalf("empty codec name: %v, want ErrBadEnvelope", err)
	}
	in.Codec = strings.Repeat("c", bus.MaxCodecLen+1)
	if _, err := in.AppendBinary(nil); !errors.Is(err, bus.ErrBadEnvelope) {
		t.Fatalf("long codec name: %v, want ErrBadEnvelope", err)
	}
}

func TestRegisterCodec(t *testing.T) {
	b, err := bus.New()
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close(context.Background())
	if b.Codec("json") != bus.JSON {
		t.Fatal("a bus does not know bus.JSON from the start")
	}
	c := &countingCodec{name: "counted"}
	if err := b.RegisterCodec(c); err != nil {
		t.Fatal(err)
	}
	if err := b.RegisterCodec(c); err != nil {
		t.Fatalf("registering the same codec again: %v", err)
	}
	if err := b.RegisterCodec(&countingCodec{name: "counted"}); err == nil {
		t.Fatal("another codec under a taken name was accepted")
	}
	if err := b.RegisterCodec(&countingCodec{name: ""}); !errors.Is(err, bus.ErrInvalidName) {
		t.Fatalf("empty name: %v", err)
	}
	if err := b.RegisterCodec(nil); err == nil {
		t.Fatal("nil codec accepted")
	}
	if b.Codec("counted") != bus.Codec(c) || b.Codec("nope") != nil {
		t.Fatal("Codec does not find what was registered")
	}
	// WithCodecs gives them at New; a clash there fails New.
	b2, err := bus.New(bus.WithCodecs(c))
	if err != nil {
		t.Fatal(err)
	}
	defer b2.Close(context.Background())
	if b2.Codec("counted") != bus.Codec(c) || b2.Codec("raw") != bus.Raw {
		t.Fatal("WithCodecs: the codec is not known")
	}
	if _, err := bus.New(bus.WithCodecs(c, &countingCodec{name: "counted"})); err == nil {
		t.Fatal("New accepted two codecs under one name")
	}
}

// TestAskInChosenCodec: an ask sent WithCodec is decoded with that codec on
// the far node and its reply comes back in it, over a real link.
func TestAskInChosenCodec(t *testing.T) {
	c := &countingCodec{name: "counted"}
	server, client := linkedPair(t)
	if err := server.RegisterCodec(c); err != nil {
		t.Fatal(err)
	}
	for _, b := range []*bus.Bus{server, client} {
		if err := bus.RegisterType[codecMsg](b.Types(), "test.codecMsg"); err != nil {
			t.Fatal(err)
		}
	}
	server.Register("echo", bus.ActorFunc(func(ctx *bus.Context, msg any) error {
		if m, ok := msg.(codecMsg); ok {
			return ctx.Reply(codecMsg{N: m.N + 1, Text: m.Text})
		}
		return nil
	}))
	waitFor(t, client, "echo")
	ctx := bus.WithCodec(ctxT(t), c)
	r, err := client.Ask(ctx, "echo", codecMsg{N: 1, Text: "hi"})
	if err != nil {
		t.Fatal(err)
	}
	if r != (codecMsg{N: 2, Text: "hi"}) {
		t.Fatalf("reply %#v", r)
	}
	if a, d := c.appends.Load(), c.decods.Load(); a != 2 || d != 2 {
		t.Fatalf("the chosen codec encoded %d and decoded %d bodies, want 2 and 2 (ask and reply)", a, d)
	}
	// Without it the link's codec is used.
	if _, err := client.Ask(ctxT(t), "echo", codecMsg{N: 1}); err != nil {
		t.Fatal(err)
	}
	if c.appends.Load() != 2 {
		t.Fatal("an ask without WithCodec used the chosen codec")
	}
	// bus.JSON needs no registration anywhere.
	if r, err := client.Ask(bus.WithCodec(ctxT(t), bus.JSON), "echo", codecMsg{N: 5}); err != nil || r != (codecMsg{N: 6}) {
		t.Fatalf("JSON ask: %v, %v", r, err)
	}
}

// TestUnknownCodec: a body in a codec the receiver does not know fails its
// ask with a coded error and is a dead letter there; the link stays.
func TestUnknownCodec(t *testing.T) {
	server, client := linkedPair(t)
	server.Register("echo", bus.ActorFunc(func(ctx *bus.Context, msg any) error { return ctx.Reply(msg) }))
	waitFor(t, client, "echo")
	c := &countingCodec{name: "unheard-of"}
	_, err := client.Ask(bus.WithCodec(ctxT(t), c), "echo", "hello")
	if !errors.Is(err, bus.ErrUnknownCodec) || bus.CodeOf(err) != bus.CodeUnknownCodec {
		t.Fatalf("ask in an unknown codec: %v (code %d), want ErrUnknownCodec", err, bus.CodeOf(err))
	}
	if !strings.Contains(err.Error(), `"unheard-of"`) {
		t.Fatalf("the error does not name the codec: %v", err)
	}
	if err := client.Send(bus.WithCodec(ctxT(t), c), "echo", "told", mailbox.Default); err != nil {
		t.Fatal(err)
	}
	eventually(t, "dead letters for the unknown codec", func() error {
		if n := server.DeadLetterCount(bus.ErrUnknownCodec); n != 2 {
			return errors.New("not yet")
		}
		return nil
	})
	if r, err := client.Ask(ctxT(t), "echo", "again"); err != nil || r != "again" {
		t.Fatalf("the link did not stay: %v, %v", r, err)
	}
}

// TestReplyCodec: an actor registered WithReplyCodec replies in it
// whatever its ask came in, and the asker decodes it.
func TestReplyCodec(t *testing.T) {
	c := &countingCodec{name: "replies"}
	server, client := linkedPair(t)
	if err := client.RegisterCodec(c); err != nil {
		t.Fatal(err)
	}
	if _, err := server.Register("echo", bus.ActorFunc(func(ctx *bus.Context, msg any) error { return ctx.Reply(msg) }),
		bus.WithReplyCodec(c)); err != nil {
		t.Fatal(err)
	}
	if server.Codec("replies") == nil {
		t.Fatal("WithReplyCodec did not make the bus know the codec")
	}
	waitFor(t, client, "echo")
	if r, err := client.Ask(ctxT(t), "echo", "x"); err != nil || r != "x" {
		t.Fatalf("%v, %v", r, err)
	}
	if c.appends.Load() != 1 || c.decods.Load() != 1 {
		t.Fatalf("reply codec: %d appends, %d decodes; want 1 and 1", c.appends.Load(), c.decods.Load())
	}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10e9)
	t.Cleanup(cancel)
	return ctx
}
