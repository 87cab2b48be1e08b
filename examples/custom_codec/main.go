// Command custom_codec writes a body codec of its own and uses it end to
// end across a real link: two nodes in this process joined by a Unix
// socket, a typed rpc service, and calls whose bodies travel in the codec.
//
//	go run ./examples/custom_codec
//
// The codec wraps encoding/gob. Writing one takes three methods (Name,
// Append, Decode: bus.Codec); the caller chooses it per call with
// rpc.WithCodec, its name travels with each message, and the service's
// node, given the codec with rpc.WithServerCodec, decodes with it and
// answers in it. A node that was not given it refuses the call with a
// coded error (bus.ErrUnknownCodec) and keeps the link. docs/codecs.md
// explains each step.
//
// Everything it prints to stdout is deterministic (its test checks it word
// for word); the bus's own log lines go to stderr.
package main

import (
	"bytes"
	"context"
	"encoding/gob"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/xbus-dev/xbus/bus"
	"github.com/xbus-dev/xbus/netbus"
	"github.com/xbus-dev/xbus/rpc"
)

// Gob is a bus.Codec that encodes bodies with encoding/gob. Each body is a
// gob stream of its own (type description, then value), so it decodes
// alone, whatever came before on the link. It counts what it does, for
// this program to show.
type Gob struct {
	encoded, decoded atomic.Int64
}

// Name is the codec's name on the wire: the same on every node.
func (*Gob) Name() string { return "gob" }

// Append appends v's encoding to dst. The bus hands it the message value.
func (g *Gob) Append(dst []byte, v any) ([]byte, error) {
	buf := bytes.NewBuffer(dst)
	if err := gob.NewEncoder(buf).Encode(v); err != nil {
		return dst, err
	}
	g.encoded.Add(1)
	return buf.Bytes(), nil
}

// Decode decodes data into v, a pointer to a new value of the message's
// type. data may come from anyone: gob returns an error for bytes it
// cannot decode, never a panic, and the result does not alias data.
func (g *Gob) Decode(data []byte, v any) error {
	if err := gob.NewDecoder(bytes.NewReader(data)).Decode(v); err != nil {
		return err
	}
	g.decoded.Add(1)
	return nil
}

// The service's messages: plain Go types, registered by rpc on both nodes
// under their Go names.
type (
	Forecast struct {
		City string
		Days int
	}
	Outlook struct {
		City  string
		Highs []float64
	}
)

func main() {
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	dir, err := os.MkdirTemp("", "custom_codec")
	if err != nil {
		fmt.Fprintln(os.Stderr, "custom_codec:", err)
		os.Exit(1)
	}
	defer os.RemoveAll(dir)
	if err := run(os.Stdout, log, dir); err != nil {
		fmt.Fprintln(os.Stderr, "custom_codec:", err)
		os.Exit(1)
	}
}

func run(out io.Writer, log *slog.Logger, dir string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	codec := &Gob{}

	// The service's node listens on a Unix socket; the caller's dials it.
	sock := "unix://" + filepath.Join(dir, "weather.sock")
	server, err := bus.New(bus.WithName("weather"), bus.WithLogger(log),
		bus.WithTransport(netbus.New(netbus.Config{Listen: []string{sock}})))
	if err != nil {
		return err
	}
	defer server.Close(context.Background())
	client, err := bus.New(bus.WithName("caller"), bus.WithLogger(log),
		bus.WithTransport(netbus.New(netbus.Config{Peers: []string{sock}})))
	if err != nil {
		return err
	}
	defer client.Close(context.Background())

	// WithServerCodec gives the service's node the codec: a call in it
	// decodes there, and the answer goes back in it.
	forecast := func(_ context.Context, f Forecast) (Outlook, error) {
		o := Outlook{City: f.City}
		for d := range f.Days {
			o.Highs = append(o.Highs, 18.5+float64(d))
		}
		return o, nil
	}
	if _, err := rpc.Handle(server, "weather.forecast", forecast, rpc.WithServerCodec(codec)); err != nil {
		return err
	}
	if err := client.WaitFor(ctx, "weather.forecast"); err != nil {
		return err
	}

	// The caller chooses the codec per call. Its name travels with the
	// message, so neither node is configured for the other.
	o, err := rpc.Call[Outlook](ctx, client, "weather.forecast", Forecast{City: "Lyon", Days: 3}, rpc.WithCodec(codec))
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "forecast for %s: %v\n", o.City, o.Highs)
	fmt.Fprintf(out, "bodies encoded with gob: %d, decoded: %d (the call and its answer, once each way)\n",
		codec.encoded.Load(), codec.decoded.Load())

	// A call without the option goes in the link's codec (CBOR): the same
	// service answers it too.
	o, err = rpc.Call[Outlook](ctx, client, "weather.forecast", Forecast{City: "Oslo", Days: 1})
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "forecast for %s in the default codec: %v\n", o.City, o.Highs)

	// A node that was not given a codec refuses a body in it with a coded
	// error, counts a dead letter, and keeps the link.
	echo := func(c *bus.Context, msg any) error {
		if s, ok := msg.(string); ok {
			return c.Reply(s)
		}
		return nil
	}
	if _, err := server.Register("echo", bus.ActorFunc(echo)); err != nil {
		return err
	}
	if err := client.WaitFor(ctx, "echo"); err != nil {
		return err
	}
	_, err = client.Ask(bus.WithCodec(ctx, &yaml{}), "echo", "hello")
	fmt.Fprintf(out, "a call in a codec the service's node lacks: unknown codec %v, code %d\n",
		errors.Is(err, bus.ErrUnknownCodec), bus.CodeOf(err))
	fmt.Fprintf(out, "dead letters there: %d\n", server.DeadLetterCount(bus.ErrUnknownCodec))
	reply, err := client.Ask(ctx, "echo", "still linked")
	fmt.Fprintf(out, "next ask on the same link: %v %v\n", reply, err)
	return nil
}

// yaml stands for a codec only the caller has: its node sends in it, the
// service's node has never heard of it.
type yaml struct{}

func (*yaml) Name() string                             { return "yaml" }
func (*yaml) Append(dst []byte, v any) ([]byte, error) { return fmt.Appendf(dst, "%v", v), nil }
func (*yaml) Decode([]byte, any) error                 { return errors.New("yaml: not implemented") }
