// Command streaming shows rpc streams between two nodes linked by a Unix
// socket: a server stream the client ranges over, a client stream, a
// bidirectional stream, a handler's coded error reaching the client, and a
// client that leaves early ending the handler's ctx.
//
//	go run ./examples/streaming
//
// Everything it prints to stdout is deterministic (its test checks it word
// for word); the buses' own log lines go to stderr.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/xbus-dev/xbus/bus"
	"github.com/xbus-dev/xbus/netbus"
	"github.com/xbus-dev/xbus/rpc"
)

// The messages. Both nodes share these definitions, so rpc registers them
// on first use and nothing is registered by hand.
type (
	Watch struct {
		Pair string
		N    int // ticks to send; 0: until the client goes
	}
	Tick struct {
		Pair  string
		Seq   int
		Price float64
	}
	Sample struct{ V float64 }
	Mean   struct {
		N    int
		Mean float64
	}
	Line struct{ Text string }
)

func main() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := run(ctx, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func run(ctx context.Context, w io.Writer) error {
	dir, err := os.MkdirTemp("", "xbus-streaming")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))

	// The server node listens on a Unix socket; the client node dials it.
	st := netbus.New(netbus.Config{Listen: []string{"unix://" + filepath.Join(dir, "server.sock")}})
	server, err := bus.New(bus.WithName("server"), bus.WithTransport(st), bus.WithLogger(log))
	if err != nil {
		return err
	}
	defer server.Close(context.Background())
	client, err := bus.New(bus.WithName("client"), bus.WithTransport(netbus.New(netbus.Config{Peers: st.Addrs()})), bus.WithLogger(log))
	if err != nil {
		return err
	}
	defer client.Close(context.Background())

	left := make(chan error, 1)
	if err := serve(server, left); err != nil {
		return err
	}
	for _, name := range []string{"prices.watch", "stats.mean", "chat.upper"} {
		if err := client.WaitFor(ctx, name); err != nil {
			return err
		}
	}

	// Server streaming: the client ranges over the ticks. The window of 2
	// means the handler never has more than 2 ticks on their way here.
	fmt.Fprintln(w, "== server stream")
	for tick, err := range rpc.CallServerStream[Tick](ctx, client, "prices.watch", Watch{"EURUSD", 4}, rpc.StreamWindow(2)) {
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "%s #%d %.4f\n", tick.Pair, tick.Seq, tick.Price)
	}

	// The handler's error ends the stream; its code crosses the link.
	fmt.Fprintln(w, "== a handler's error")
	for _, err := range rpc.CallServerStream[Tick](ctx, client, "prices.watch", Watch{"XXXYYY", 4}) {
		fmt.Fprintf(w, "error: %v; errors.Is(err, rpc.ErrNotFound) = %v\n", err, errors.Is(err, rpc.ErrNotFound))
	}

	// Leaving the range early cancels the stream: the handler's ctx ends.
	fmt.Fprintln(w, "== leaving early")
	for tick, err := range rpc.CallServerStream[Tick](ctx, client, "prices.watch", Watch{"EURUSD", 0}) {
		if err != nil {
			return err
		}
		if tick.Seq == 2 {
			fmt.Fprintln(w, "the client leaves after tick #2")
			break
		}
	}
	fmt.Fprintf(w, "the handler's ctx ended: %v\n", <-left)

	// Client streaming: samples go up, one mean comes back.
	fmt.Fprintln(w, "== client stream")
	cs, err := rpc.OpenClientStream[Mean, Sample](ctx, client, "stats.mean")
	if err != nil {
		return err
	}
	for _, v := range []float64{1, 2, 3, 4} {
		if err := cs.Send(Sample{v}); err != nil {
			return err
		}
	}
	m, err := cs.CloseAndRecv()
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "mean of %d samples: %.2f\n", m.N, m.Mean)

	// Bidirectional: each line goes up and comes back upper-cased.
	fmt.Fprintln(w, "== bidirectional stream")
	bs, err := rpc.OpenBidiStream[Line, Line](ctx, client, "chat.upper")
	if err != nil {
		return err
	}
	for _, text := range []string{"hello", "streams"} {
		if err := bs.Send(Line{text}); err != nil {
			return err
		}
		l, err := bs.Recv()
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "%s -> %s\n", text, l.Text)
	}
	if err := bs.CloseSend(); err != nil {
		return err
	}
	if _, err := bs.Recv(); !errors.Is(err, io.EOF) {
		return fmt.Errorf("after the last line: %v", err)
	}
	fmt.Fprintln(w, "the chat ended cleanly")
	return nil
}

// serve registers the server node's stream handlers; left gets how the ctx
// of an endless price stream ended.
func serve(b *bus.Bus, left chan<- error) error {
	_, err := rpc.HandleServerStream(b, "prices.watch", func(ctx context.Context, w Watch, send func(Tick) error) error {
		if w.Pair != "EURUSD" {
			return rpc.Errorf(rpc.CodeNotFound, "no prices for %s", w.Pair)
		}
		for i := 0; w.N == 0 || i < w.N; i++ {
			if err := send(Tick{w.Pair, i, 1.0850 + float64(i)/10000}); err != nil {
				// The client went (or its deadline passed): the stream's
				// ctx ended with it.
				<-ctx.Done()
				left <- ctx.Err()
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	_, err = rpc.HandleClientStream(b, "stats.mean", func(ctx context.Context, in *rpc.Receiver[Sample]) (Mean, error) {
		var m Mean
		var sum float64
		for s, err := range in.All() {
			if err != nil {
				return Mean{}, err
			}
			m.N++
			sum += s.V
		}
		if m.N > 0 {
			m.Mean = sum / float64(m.N)
		}
		return m, nil
	})
	if err != nil {
		return err
	}
	_, err = rpc.HandleBidiStream(b, "chat.upper", func(ctx context.Context, in *rpc.Receiver[Line], send func(Line) error) error {
		for l, err := range in.All() {
			if err != nil {
				return err
			}
			if err := send(Line{strings.ToUpper(l.Text)}); err != nil {
				return err
			}
		}
		return nil
	})
	return err
}
