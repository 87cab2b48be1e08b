// Command nats_discovery shows two nodes that find each other through a
// NATS server, with no address configured, and a plain NATS client calling
// their names with JSON.
//
// It is a module of its own, as it starts an embedded nats-server when no
// URL is given:
//
//	cd examples/nats_discovery
//	go run .                              # an embedded server; runs the tour and exits
//	go run . -nats nats://127.0.0.1:4222  # a server of yours
//	go run . -hold                        # stays up: call it with the nats CLI
//
// With -hold it prints the server's URL; then, from any NATS client:
//
//	nats -s URL micro ls
//	nats -s URL req xbus.greeter '"world"'
//	nats -s URL req xbus.add '{"A":1,"B":2}'
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/xbus-dev/xbus/bus"
	natsdisc "github.com/xbus-dev/xbus/bus/discovery/nats"
	"github.com/xbus-dev/xbus/netbus"
)

// Add asks for A+B; Sum is its answer.
type (
	Add struct{ A, B int }
	Sum struct{ N int }
)

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "nats_discovery:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("nats_discovery", flag.ContinueOnError)
	url := fs.String("nats", os.Getenv("NATS_URL"), "NATS server URL; empty: start one in this process")
	secret := fs.String("secret", "an example secret, not for production", "the cluster's shared secret (announcements and links)")
	hold := fs.Bool("hold", false, "stay up until interrupted, for the nats CLI")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *url == "" {
		srv, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true})
		if err != nil {
			return err
		}
		go srv.Start()
		if !srv.ReadyForConnections(10 * time.Second) {
			return errors.New("the embedded nats-server did not start")
		}
		defer func() { srv.Shutdown(); srv.WaitForShutdown() }()
		*url = srv.ClientURL()
		fmt.Fprintln(out, "started an embedded nats-server")
	}

	// Node b hosts two names; node a knows only the NATS server.
	b, err := newNode("node-b", *url, []byte(*secret))
	if err != nil {
		return err
	}
	defer b.Close(context.Background())
	if _, err := b.Register("greeter", bus.ActorFunc(greet)); err != nil {
		return err
	}
	if _, err := b.Register("add", bus.ActorFunc(add)); err != nil {
		return err
	}
	a, err := newNode("node-a", *url, []byte(*secret))
	if err != nil {
		return err
	}
	defer a.Close(context.Background())

	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := a.WaitFor(ctx, "add"); err != nil {
		return fmt.Errorf("node-a did not find add: %w", err)
	}
	reply, err := a.Ask(ctx, "greeter", "node-a")
	if err != nil {
		return err
	}
	fmt.Fprintln(out, "node-a asks greeter:", reply)
	sum, err := bus.AskAs[Sum](ctx, a, "add", Add{2, 3})
	if err != nil {
		return err
	}
	fmt.Fprintln(out, "node-a asks add {2 3}:", sum.N)

	// Any NATS client can call the names with JSON: here nats.go itself.
	nc, err := nats.Connect(*url)
	if err != nil {
		return err
	}
	defer nc.Close()
	for _, req := range []struct{ subject, body string }{
		{"xbus.greeter", `"world"`},
		{"xbus.add", `{"A":1,"B":2}`},
		{"xbus.add", `{"A":"one"}`},
	} {
		m, err := nc.Request(req.subject, []byte(req.body), 10*time.Second)
		if err != nil {
			return err
		}
		if code := m.Header.Get("Nats-Service-Error-Code"); code != "" {
			fmt.Fprintf(out, "nats req %s '%s': error %s: %s\n", req.subject, req.body, code, m.Header.Get("Nats-Service-Error"))
			continue
		}
		fmt.Fprintf(out, "nats req %s '%s': %s\n", req.subject, req.body, m.Data)
	}
	m, err := nc.Request("$SRV.INFO.node-b", nil, 10*time.Second)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "$SRV.INFO.node-b: %.120s...\n", m.Data)

	if *hold {
		fmt.Fprintf(out, "up; try: nats -s %s req xbus.greeter '\"world\"' (Ctrl-C to stop)\n", *url)
		sig, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		<-sig.Done()
	}
	return nil
}

// newNode starts a bus that listens on a free TCP port and finds the others
// through NATS; its micro service knows add's request type.
func newNode(name, url string, secret []byte) (*bus.Bus, error) {
	types := bus.NewTypes()
	if err := errors.Join(bus.RegisterType[Add](types, "example.Add"), bus.RegisterType[Sum](types, "example.Sum")); err != nil {
		return nil, err
	}
	src, err := natsdisc.New(natsdisc.Config{URL: url, Secret: secret, Requests: map[string]any{"add": Add{}}})
	if err != nil {
		return nil, err
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	return bus.New(bus.WithName(name), bus.WithLogger(log), bus.WithTypes(types), bus.WithDiscovery(src),
		bus.WithTransport(netbus.New(netbus.Config{Listen: []string{"tcp://127.0.0.1:0"}, Secret: secret})))
}

func greet(c *bus.Context, msg any) error {
	if !c.IsAsk() {
		return nil // lifecycle messages
	}
	return c.Reply(fmt.Sprintf("hello, %v from %s", msg, c.Bus().Name()))
}

func add(c *bus.Context, msg any) error {
	if !c.IsAsk() {
		return nil
	}
	a, ok := msg.(Add)
	if !ok {
		return fmt.Errorf("add: want an Add, got %T", msg)
	}
	return c.Reply(Sum{a.A + a.B})
}
