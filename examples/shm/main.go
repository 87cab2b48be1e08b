// Command shm runs two processes that talk through shared memory.
//
// In one terminal:
//
//	go run ./examples/shm -server
//
// and in another:
//
//	go run ./examples/shm
//
// The server registers an actor "upper"; the client dials the server's Unix
// socket, asks "upper" by name, and prints the replies. The server runs
// until SIGINT or SIGTERM, then closes its bus and exits 0.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/xbus-dev/xbus/bus"
	"github.com/xbus-dev/xbus/shmbus"
)

func main() {
	server := flag.Bool("server", false, "run the server")
	sock := flag.String("socket", filepath.Join(os.TempDir(), "xbus-shm-example.sock"), "Unix socket of the server")
	flag.Parse()
	if *server {
		runServer(*sock)
		return
	}
	if err := runClient(*sock); err != nil {
		log.Fatal(err)
	}
}

func runServer(sock string) {
	b, err := bus.New(bus.WithName("shm-server"), bus.WithTransport(shmbus.New(shmbus.Config{Listen: sock})))
	if err != nil {
		log.Fatal(err)
	}
	b.Register("upper", bus.ActorFunc(func(c *bus.Context, msg any) error {
		if s, ok := msg.(string); ok && c.IsAsk() {
			return c.Reply(strings.ToUpper(s))
		}
		return nil
	}))
	// Catch the signals before saying we listen: whoever waits for that
	// line may stop us at once.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	fmt.Println("server listening on", sock)
	<-ctx.Done()
	cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := b.Close(cctx); err != nil {
		log.Fatal(err)
	}
}

func runClient(sock string) error {
	b, err := bus.New(bus.WithName("shm-client"), bus.WithTransport(shmbus.New(shmbus.Config{Dial: []string{sock}})))
	if err != nil {
		return err
	}
	defer b.Close(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := b.WaitFor(ctx, "upper"); err != nil { // the server's names arrive just after the link comes up
		return err
	}
	for _, w := range []string{"hello", "shared", "memory"} {
		reply, err := b.Ask(ctx, "upper", w)
		if err != nil {
			return err
		}
		fmt.Println(reply)
	}
	return nil
}
