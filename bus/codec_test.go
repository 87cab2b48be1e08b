package bus_test

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/xbus-dev/xbus/bus"
	"github.com/xbus-dev/xbus/codec"
)

type codecOrder struct {
	ID    int64
	Items []string
	Attrs map[string]string
}

type codecPoint struct{ X, Y int }

type codecUnregistered struct{ N int }

func codecTypes(t testing.TB) *bus.Types {
	t.Helper()
	types := bus.NewTypes()
	if err := types.Register("test.order", codecOrder{}); err != nil {
		t.Fatal(err)
	}
	if err := bus.RegisterType[*codecOrder](types, "test.*order"); err != nil {
		t.Fatal(err)
	}
	if err := bus.RegisterType[codecPoint](types, ""); err != nil {
		t.Fatal(err)
	}
	return types
}

func TestTypesKnowsBasicTypes(t *testing.T) {
	types := bus.NewTypes()
	for _, v := range []any{"", []byte(nil), false, 0, int8(0), int16(0), int32(0), int64(0),
		uint(0), uint8(0), uint16(0), uint32(0), uint64(0), float32(0), float64(0),
		map[string]any(nil), []any(nil)} {
		name := types.NameOf(v)
		p, err := types.New(name)
		if err != nil {
			t.Fatalf("New(%q): %v", name, err)
		}
		if got, want := p.Type().Elem(), reflect.TypeOf(v); got != want {
			t.Fatalf("New(%q) makes *%v, want *%v", name, got, want)
		}
	}
	if n := types.NameOf([]byte("x")); n != "[]uint8" {
		t.Fatalf(`NameOf([]byte) = %q, want "[]uint8"`, n)
	}
}

func TestTypesRegister(t *testing.T) {
	types := codecTypes(t)
	if n := types.NameOf(codecOrder{}); n != "test.order" {
		t.Fatalf("NameOf(codecOrder) = %q", n)
	}
	if n := types.NameOf(&codecOrder{}); n != "test.*order" {
		t.Fatalf("NameOf(*codecOrder) = %q", n)
	}
	if n := types.NameOf(codecPoint{}); n != "bus_test.codecPoint" {
		t.Fatalf("NameOf(codecPoint) = %q, want its Go name", n)
	}
	if n := types.NameOf(codecUnregistered{}); n != "bus_test.codecUnregistered" {
		t.Fatalf("NameOf(unregistered) = %q, want its Go name", n)
	}
	if n := types.NameOf(nil); n != "" {
		t.Fatalf("NameOf(nil) = %q", n)
	}

	// Registering the same pair again is a no-op.
	if err := types.Register("test.order", codecOrder{}); err != nil {
		t.Fatalf("re-registering the same pair: %v", err)
	}
	if err := bus.RegisterType[codecPoint](types, "bus_test.codecPoint"); err != nil {
		t.Fatalf("re-registering under the Go name: %v", err)
	}
	// A name taken by another type, a type named otherwise: conflicts.
	if err := types.Register("test.order", codecPoint{}); err == nil {
		t.Fatal("a second type took the name test.order")
	}
	if err := types.Register("test.order2", codecOrder{}); err == nil {
		t.Fatal("codecOrder registered under a second name")
	}
	if err := types.Register("text", ""); err == nil {
		t.Fatal("string registered under a second name")
	}
	if err := types.Register("", nil); !errors.Is(err, bus.ErrUnknownType) {
		t.Fatalf("Register(nil) = %v, want ErrUnknownType", err)
	}
	long := strings.Repeat("n", bus.MaxTypeLen+1)
	if err := types.Register(long, codecUnregistered{}); !errors.Is(err, bus.ErrInvalidName) {
		t.Fatalf("Register(%d-byte name) = %v, want ErrInvalidName", len(long), err)
	}
	if err := bus.RegisterType[codecUnregistered](types, long); !errors.Is(err, bus.ErrInvalidName) {
		t.Fatalf("RegisterType(%d-byte name) = %v, want ErrInvalidName", len(long), err)
	}
	// Failed registrations left nothing behind.
	if _, err := types.New("test.order2"); !errors.Is(err, bus.ErrUnknownType) {
		t.Fatalf("New(test.order2) = %v, want ErrUnknownType", err)
	}
	if n := types.NameOf(codecUnregistered{}); n != "bus_test.codecUnregistered" {
		t.Fatalf("a failed registration named the type %q", n)
	}
	if _, err := types.New("bus_test.codecUnregistered"); !errors.Is(err, bus.ErrUnknownType) {
		t.Fatalf("New(unregistered) = %v, want ErrUnknownType", err)
	}
}

func TestTypesConcurrent(t *testing.T) {
	types := bus.NewTypes()
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Go(func() {
			for range 200 {
				// Every goroutine registers the same pairs: all succeed.
				if err := bus.RegisterType[codecOrder](types, "test.order"); err != nil {
					errs <- err
					return
				}
				if err := types.Register("", &codecPoint{}); err != nil {
					errs <- err
					return
				}
				if n := types.NameOf(codecOrder{}); n != "test.order" {
					errs <- fmt.Errorf("NameOf = %q", n)
					return
				}
				if _, err := types.New("*bus_test.codecPoint"); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// codecRoundTrip encodes msg as a transport would and decodes it on the far
// side with types.
func codecRoundTrip(t *testing.T, c bus.Codec, types *bus.Types, kind bus.Kind, msg any) bus.Envelope {
	t.Helper()
	env := bus.Envelope{Kind: kind, Msg: msg, Type: "stale"}
	body, err := types.EncodeBody(c, &env, []byte("hdr"))
	if err != nil {
		t.Fatalf("EncodeBody(%T): %v", msg, err)
	}
	if string(body[:3]) != "hdr" {
		t.Fatal("EncodeBody lost the bytes in dst")
	}
	got := bus.Envelope{Kind: kind, Type: env.Type, Body: body[3:], Msg: "stale"}
	if err := types.DecodeBody(c, &got); err != nil {
		t.Fatalf("DecodeBody(%s): %v", env.Type, err)
	}
	return got
}

func TestBodyRoundTrip(t *testing.T) {
	types := codecTypes(t)
	msgs := []any{
		codecOrder{ID: 1, Items: []string{"a"}, Attrs: map[string]string{"k": "v"}},
		&codecOrder{ID: 2},
		codecPoint{X: -1, Y: 1},
		"text", []byte{0, 1, 2}, true, 7, int8(-8), int64(1 << 60), uint32(9), uint64(1 << 63), float32(0.5), 2.25,
		map[string]any{"a": "b"}, []any{"x", true},
	}
	for _, c := range []bus.Codec{bus.JSON, codec.Binary()} {
		for _, kind := range []bus.Kind{bus.KindTell, bus.KindAsk, bus.KindReply, bus.KindStreamItem, bus.KindPublish} {
			for _, m := range msgs {
				got := codecRoundTrip(t, c, types, kind, m)
				if !reflect.DeepEqual(got.Msg, m) {
					t.Fatalf("%s %v: decoded %#v (%T), want %#v (%T)", c.Name(), kind, got.Msg, got.Msg, m, m)
				}
			}
		}
	}
}

func TestBodyNil(t *testing.T) {
	types := codecTypes(t)
	for _, kind := range []bus.Kind{bus.KindTell, bus.KindReply, bus.KindStreamEnd, bus.KindCancel} {
		env := bus.Envelope{Kind: kind, Type: "stale"}
		body, err := types.EncodeBody(bus.JSON, &env, nil)
		if err != nil || len(body) != 0 || env.Type != "" {
			t.Fatalf("%v: nil Msg encoded as %q, type %q, %v", kind, body, env.Type, err)
		}
		got := bus.Envelope{Kind: kind, Msg: "stale"}
		if err := types.DecodeBody(bus.JSON, &got); err != nil || got.Msg != nil {
			t.Fatalf("%v: empty body decoded as %v, %v", kind, got.Msg, err)
		}
	}
}

func TestErrorBodiesKeepTheirCode(t *testing.T) {
	types := codecTypes(t)
	appErr := errors.New("orders: out of stock")
	cases := []struct {
		kind     bus.Kind
		msg      any
		sentinel error // nil: only the text survives
		text     string
	}{
		{bus.KindError, bus.ErrMailboxFull, bus.ErrMailboxFull, "bus: mailbox full"},
		{bus.KindError, fmt.Errorf("add: %w", bus.ErrMailboxFull), bus.ErrMailboxFull, "add: bus: mailbox full"},
		{bus.KindError, bus.ErrNoRoute, bus.ErrNoRoute, "bus: no route to actor"},
		{bus.KindError, bus.ErrDeadline, bus.ErrDeadline, "bus: deadline exceeded"},
		{bus.KindError, bus.ErrWrongType, bus.ErrWrongType, "bus: reply of the wrong type"},
		{bus.KindError, &bus.RemoteError{Code: bus.CodeActorFailed, Text: "relayed"}, bus.ErrActorFailed, "relayed"},
		{bus.KindError, appErr, nil, "orders: out of stock"},
		{bus.KindError, "not an error", nil, "not an error"},
		{bus.KindStreamEnd, bus.ErrSlowConsumer, bus.ErrSlowConsumer, "bus: slow consumer"},
		{bus.KindStreamEnd, appErr, nil, "orders: out of stock"},
	}
	for _, c := range []bus.Codec{bus.JSON, codec.Binary(), codec.Raw} {
		for _, tc := range cases {
			got := codecRoundTrip(t, c, types, tc.kind, tc.msg)
			err, ok := got.Msg.(error)
			if !ok {
				t.Fatalf("%s: %v body decoded as %T, want an error", c.Name(), tc.kind, got.Msg)
			}
			if err.Error() != tc.text {
				t.Fatalf("%s: text %q, want %q", c.Name(), err.Error(), tc.text)
			}
			var re *bus.RemoteError
			if !errors.As(err, &re) {
				t.Fatalf("%s: decoded %T, want *bus.RemoteError", c.Name(), err)
			}
			if tc.sentinel != nil {
				if !errors.Is(err, tc.sentinel) {
					t.Fatalf("%s: errors.Is(%v, %v) = false", c.Name(), err, tc.sentinel)
				}
				if bus.CodeOf(err) != bus.CodeOf(tc.sentinel) {
					t.Fatalf("%s: code %d, want %d", c.Name(), bus.CodeOf(err), bus.CodeOf(tc.sentinel))
				}
			} else {
				if re.Code != bus.CodeApplication {
					t.Fatalf("%s: application error arrived with code %d", c.Name(), re.Code)
				}
				if errors.Is(err, bus.ErrMailboxFull) || errors.Is(err, appErr) {
					t.Fatalf("%s: an application error matched a sentinel it does not wrap", c.Name())
				}
			}
		}
	}
}

func TestDecodeBodyRejects(t *testing.T) {
	types := codecTypes(t)
	cases := []struct {
		name string
		env  bus.Envelope
		want error
	}{
		{"unknown type", bus.Envelope{Kind: bus.KindTell, Type: "bus_test.codecUnregistered", Body: []byte(`{"N":1}`)}, bus.ErrUnknownType},
		{"unknown type without body", bus.Envelope{Kind: bus.KindTell, Type: "nope"}, bus.ErrUnknownType},
		{"body without type", bus.Envelope{Kind: bus.KindTell, Body: []byte("x")}, bus.ErrBadEnvelope},
		{"garbage body", bus.Envelope{Kind: bus.KindTell, Type: "test.order", Body: []byte("\xff\x00{")}, bus.ErrBadEnvelope},
		{"wrong shape", bus.Envelope{Kind: bus.KindTell, Type: "test.order", Body: []byte(`[1,2]`)}, bus.ErrBadEnvelope},
		{"truncated", bus.Envelope{Kind: bus.KindReply, Type: "test.order", Body: []byte(`{"ID":`)}, bus.ErrBadEnvelope},
		{"error body empty", bus.Envelope{Kind: bus.KindError}, bus.ErrBadEnvelope},
		{"error code huge", bus.Envelope{Kind: bus.KindError, Body: []byte{0xff, 0xff, 0xff, 0xff, 0x0f}}, bus.ErrBadEnvelope},
		{"error code unterminated", bus.Envelope{Kind: bus.KindError, Body: []byte{0x80}}, bus.ErrBadEnvelope},
		{"stream end bad code", bus.Envelope{Kind: bus.KindStreamEnd, Body: []byte{0x80, 0x80}}, bus.ErrBadEnvelope},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := types.DecodeBody(bus.JSON, &tc.env)
			if !errors.Is(err, tc.want) {
				t.Fatalf("DecodeBody = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestEncodeBodyFailureKeepsDst(t *testing.T) {
	types := bus.NewTypes()
	env := bus.Envelope{Kind: bus.KindTell, Msg: make(chan int)}
	out, err := types.EncodeBody(bus.JSON, &env, []byte("hdr"))
	if err == nil {
		t.Fatal("encoding a channel succeeded")
	}
	if string(out) != "hdr" {
		t.Fatalf("EncodeBody returned %q on error, want dst unchanged", out)
	}
}

// TestDecodedBodyDoesNotAlias: a transport reuses its read buffer once
// DecodeBody returns.
func TestDecodedBodyDoesNotAlias(t *testing.T) {
	types := codecTypes(t)
	for _, c := range []bus.Codec{bus.JSON, codec.Binary(), codec.Raw} {
		for _, m := range []any{"hello", []byte("hello")} {
			env := bus.Envelope{Kind: bus.KindTell, Msg: m}
			body, err := types.EncodeBody(c, &env, nil)
			if err != nil {
				t.Fatal(err)
			}
			got := bus.Envelope{Kind: bus.KindTell, Type: env.Type, Body: body}
			if err := types.DecodeBody(c, &got); err != nil {
				t.Fatal(err)
			}
			for i := range body {
				body[i] = 'X'
			}
			if fmt.Sprintf("%s", got.Msg) != "hello" {
				t.Fatalf("%s: decoded %T changed with the body it came from", c.Name(), m)
			}
		}
	}
}

func FuzzDecodeBody(f *testing.F) {
	types := codecTypes(f)
	codecs := []bus.Codec{bus.JSON, codec.Binary(), codec.Raw}
	for ci, c := range codecs {
		for _, m := range []any{codecOrder{ID: 1, Items: []string{"a"}, Attrs: map[string]string{"k": "v"}},
			&codecOrder{ID: 2}, codecPoint{1, 2}, "s", []byte{1}, 3, map[string]any{"a": 1.5}} {
			env := bus.Envelope{Kind: bus.KindTell, Msg: m}
			body, err := types.EncodeBody(c, &env, nil)
			if err != nil {
				continue // raw encodes only bytes and strings
			}
			f.Add(uint8(ci), uint8(bus.KindTell), env.Type, body)
		}
	}
	f.Add(uint8(0), uint8(bus.KindError), "", []byte("\x03bus: mailbox full"))
	f.Add(uint8(1), uint8(bus.KindStreamEnd), "", []byte("\x00text"))
	f.Add(uint8(0), uint8(bus.KindError), "orders.out-of-stock", []byte("\xa0\x1fteapot"))
	f.Add(uint8(1), uint8(bus.KindReply), "test.order", []byte{0x9a, 0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, ci, kind uint8, typ string, body []byte) {
		c := codecs[int(ci)%len(codecs)]
		env := bus.Envelope{Kind: bus.Kind(kind%uint8(bus.KindSystem)) + 1, Type: typ, Body: body}
		if err := types.DecodeBody(c, &env); err != nil {
			if !errors.Is(err, bus.ErrBadEnvelope) && !errors.Is(err, bus.ErrUnknownType) {
				t.Fatalf("DecodeBody error %v wraps neither ErrBadEnvelope nor ErrUnknownType", err)
			}
			return
		}
		switch {
		case env.Kind == bus.KindError || ((env.Kind == bus.KindStreamEnd || env.Kind == bus.KindCancel) && len(body) > 0):
			re, ok := env.Msg.(*bus.RemoteError)
			if !ok {
				t.Fatalf("%v body decoded as %T", env.Kind, env.Msg)
			}
			if len(re.Text) > len(body) {
				t.Fatalf("error text of %d bytes from a %d-byte body", len(re.Text), len(body))
			}
			// Relayed, it keeps its code, name and text.
			again := bus.Envelope{Kind: env.Kind, Msg: re}
			out, err := types.EncodeBody(c, &again, nil)
			if err != nil {
				t.Fatal(err)
			}
			again.Body = out
			if err := types.DecodeBody(c, &again); err != nil {
				t.Fatalf("re-decoding a relayed error: %v", err)
			}
			if re2 := again.Msg.(*bus.RemoteError); re2.Code != re.Code || re2.Name != re.Name || re2.Text != re.Text {
				t.Fatalf("relayed %#v arrived as %#v", re, re2)
			}
		case typ == "":
			if env.Msg != nil {
				t.Fatalf("untyped body decoded as %T", env.Msg)
			}
		default:
			p, err := types.New(typ)
			if err != nil {
				t.Fatalf("decoded unregistered type %q", typ)
			}
			if got, want := reflect.TypeOf(env.Msg), p.Type().Elem(); got != want {
				t.Fatalf("type %q decoded as %v, want %v", typ, got, want)
			}
			// What decoded re-encodes.
			again := bus.Envelope{Kind: env.Kind, Msg: env.Msg}
			if _, err := types.EncodeBody(c, &again, nil); err != nil && c != codec.Raw {
				t.Fatalf("re-encoding a decoded %T with %s: %v", env.Msg, c.Name(), err)
			}
		}
	})
}
