package netbus

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/xbus-dev/xbus/bus"
)

// logRecorder is a slog.Handler that keeps the records at Warn and above.
type logRecorder struct {
	mu   sync.Mutex
	recs []slog.Record
}

func (r *logRecorder) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelWarn }
func (r *logRecorder) WithAttrs([]slog.Attr) slog.Handler           { return r }
func (r *logRecorder) WithGroup(string) slog.Handler                { return r }
func (r *logRecorder) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	r.recs = append(r.recs, rec.Clone())
	r.mu.Unlock()
	return nil
}

// matching returns the errors ("err" attributes) of the records whose
// message contains msg.
func (r *logRecorder) matching(msg string) []error {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []error
	for _, rec := range r.recs {
		if !strings.Contains(rec.Message, msg) {
			continue
		}
		var err error
		rec.Attrs(func(a slog.Attr) bool {
			if a.Key == "err" {
				err, _ = a.Value.Any().(error)
			}
			return true
		})
		out = append(out, err)
	}
	return out
}

// A peer configured with the wrong secret is refused once: the bus's keeper
// stops redialing, says why once at Warn, and the refusal matches
// bus.ErrRefused on both ends.
func TestWrongSecretIsNotRedialed(t *testing.T) {
	srv := newTestHost(t)
	srvLog, cliLog := &logRecorder{}, &logRecorder{}
	srv.log = slog.New(srvLog)
	srvT := startTransport(t, srv, Config{Listen: []string{"tcp://127.0.0.1:0"}, Secret: []byte("right")})
	cli, err := bus.New(bus.WithTransport(New(Config{Peers: srvT.Addrs(), Secret: []byte("wrong")})),
		bus.WithLogger(slog.New(cliLog)), bus.WithBackoff(time.Millisecond, 2*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close(context.Background())
	const maxAttempts = 50 // redialing every 2ms passes this at once
	deadline := time.Now().Add(30 * time.Second)
	var stopped []error
	for {
		stopped = cliLog.matching("not dialing again")
		if len(stopped) > 0 {
			break
		}
		if n := len(srvLog.matching("refused a connection")); n > maxAttempts {
			t.Fatalf("the acceptor saw %d handshakes with the wrong secret and the dialer goes on", n)
		}
		if time.Now().After(deadline) {
			t.Fatal("the dialer never said it stopped")
		}
		time.Sleep(time.Millisecond)
	}
	if !errors.Is(stopped[0], bus.ErrRefused) || !errors.Is(stopped[0], ErrAuth) {
		t.Fatalf("the dialer stopped with %v, want bus.ErrRefused and ErrAuth", stopped[0])
	}
	// Many backoff periods later, still one attempt and one Warn.
	time.Sleep(100 * time.Millisecond)
	attempts := srvLog.matching("refused a connection")
	if len(attempts) != 1 || len(cliLog.matching("not dialing again")) != 1 {
		t.Fatalf("%d handshakes refused by the acceptor, %d refusals logged by the dialer; want 1 and 1", len(attempts), len(cliLog.matching("not dialing again")))
	}
	if !errors.Is(attempts[0], bus.ErrRefused) {
		t.Fatalf("the acceptor logged %v, want bus.ErrRefused", attempts[0])
	}
}

// Every refusal that retrying cannot heal matches bus.ErrRefused on the
// dialing side, and Dial returns it at once.
func TestRefusalsMatchErrRefused(t *testing.T) {
	for _, c := range []struct {
		name     string
		srv, cli Config
		want     error
	}{
		{"secret", Config{Secret: []byte("a")}, Config{Secret: []byte("b")}, ErrAuth},
		{"no secret", Config{Secret: []byte("a")}, Config{}, ErrAuth},
		{"codec", Config{Codec: namedCodec{"gob"}}, Config{Codec: namedCodec{"msgpack"}}, ErrCodecMismatch},
	} {
		t.Run(c.name, func(t *testing.T) {
			c.srv.Listen = []string{"tcp://127.0.0.1:0"}
			srvT := startTransport(t, newTestHost(t), c.srv)
			cliT := startTransport(t, newTestHost(t), c.cli)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			_, err := cliT.Dial(ctx, srvT.Addrs()[0])
			if !errors.Is(err, bus.ErrRefused) || !errors.Is(err, c.want) || ctx.Err() != nil {
				t.Fatalf("dial: %v, want bus.ErrRefused and %v", err, c.want)
			}
		})
	}
}

// namedCodec is JSON under another name: a codec no other node has unless
// given it.
type namedCodec struct{ name string }

func (c namedCodec) Name() string                           { return c.name }
func (namedCodec) Append(dst []byte, v any) ([]byte, error) { return bus.JSON.Append(dst, v) }
func (namedCodec) Decode(data []byte, v any) error          { return bus.JSON.Decode(data, v) }
