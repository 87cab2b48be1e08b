// Command samehost runs processes that find each other on one host with no
// configuration: no address, no socket path, no peer list.
//
// In one terminal:
//
//	go run ./examples/samehost -serve
//
// and in another:
//
//	go run ./examples/samehost
//
// Each process starts its bus with samehost.Enable: it listens in the
// user's runtime directory ($XDG_RUNTIME_DIR/xbus), writes its entry there
// and links to every other process that did the same, over shared memory
// (Unix sockets where shared memory is unsupported). The server registers
// an actor "upper"; the client waits for the name to be found, asks it and
// prints the replies and the kind of link they came over. The server runs
// until SIGINT or SIGTERM.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/xbus-dev/xbus/bus"
	"github.com/xbus-dev/xbus/bus/discovery/samehost"
)

func main() {
	serve := flag.Bool("serve", false, "serve the actor \"upper\" until SIGINT or SIGTERM")
	flag.Parse()
	b, err := bus.New(samehost.Enable(samehost.Config{}))
	if err != nil {
		log.Fatal(err)
	}
	if *serve {
		err = runServer(b)
	} else {
		err = runClient(b)
	}
	if err != nil {
		log.Fatal(err)
	}
}

func runServer(b *bus.Bus) error {
	// Catch the signals before saying we serve: whoever waits for that
	// line may stop us at once.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if _, err := b.Register("upper", bus.ActorFunc(func(c *bus.Context, msg any) error {
		if s, ok := msg.(string); ok && c.IsAsk() {
			return c.Reply(strings.ToUpper(s))
		}
		return nil
	})); err != nil {
		return err
	}
	fmt.Println("serving \"upper\" as node", b.NodeID().Short())
	<-ctx.Done()
	cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return b.Close(cctx)
}

func runClient(b *bus.Bus) error {
	defer b.Close(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := b.WaitFor(ctx, "upper"); err != nil { // found through the runtime directory
		return fmt.Errorf("no process serves \"upper\" on this host: %w", err)
	}
	for _, w := range []string{"found", "with", "no", "configuration"} {
		reply, err := b.Ask(ctx, "upper", w)
		if err != nil {
			return err
		}
		fmt.Println(reply)
	}
	for _, l := range b.Links() {
		fmt.Println("link:", l.Scheme)
	}
	return nil
}
