package bus_test

import (
	"bytes"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/xbus-dev/xbus/bus"
	"github.com/xbus-dev/xbus/internal/race"
)

// headerOnly is what HeaderCache.Header must give for env: AppendBinary of
// env without its body.
func headerOnly(t testing.TB, env *bus.Envelope) []byte {
	t.Helper()
	e := *env
	e.Body = nil
	b, err := e.AppendBinary(nil)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// cacheCases are envelopes whose headers differ in one field each from the
// first, and some the cache must never keep (a correlation id, a deadline,
// headers).
func cacheCases() []bus.Envelope {
	from := bus.Ref{Node: envNodeA, Name: "src", ID: 7}
	to := bus.Ref{Node: envNodeB, Name: "sink", ID: 9}
	tell := bus.Envelope{Kind: bus.KindTell, From: from, To: to, Type: "[]uint8", Body: []byte("body")}
	cases := []bus.Envelope{tell}
	add := func(f func(*bus.Envelope)) {
		e := tell
		f(&e)
		cases = append(cases, e)
	}
	add(func(e *bus.Envelope) { e.Kind = bus.KindPublish })
	add(func(e *bus.Envelope) { e.From = bus.Ref{} })
	add(func(e *bus.Envelope) { e.From.ID++ })
	add(func(e *bus.Envelope) { e.To.Name = "sinK" })
	add(func(e *bus.Envelope) { e.To.Node[3]++ })
	add(func(e *bus.Envelope) { e.Type = "string" })
	add(func(e *bus.Envelope) { e.Codec = "json" })
	add(func(e *bus.Envelope) { e.Kind, e.Corr = bus.KindAsk, 42 })
	add(func(e *bus.Envelope) { e.Corr = 43 })
	add(func(e *bus.Envelope) { e.Timeout = time.Second })
	add(func(e *bus.Envelope) { e.Headers = []bus.Header{{Key: "k", Value: "v"}} })
	add(func(e *bus.Envelope) { e.Body = nil })
	return cases
}

// TestHeaderCacheGivesTheHeader: whatever came before, Header gives the
// binary header of the envelope it is given, never the one it kept of
// another, however the headers follow each other (each after each, and
// each repeated past the point where the cache keeps a changed header).
func TestHeaderCacheGivesTheHeader(t *testing.T) {
	cases := cacheCases()
	var c bus.HeaderCache
	check := func(env *bus.Envelope) {
		t.Helper()
		got, err := c.Header(env, make([]byte, 0, 8))
		if err != nil {
			t.Fatal(err)
		}
		if want := headerOnly(t, env); !bytes.Equal(got, want) {
			t.Fatalf("header of %+v:\n got %x\nwant %x", env, got, want)
		}
	}
	for i := range cases {
		for j := range cases {
			for range 20 {
				check(&cases[i])
				check(&cases[j])
			}
		}
	}
	for i := range cases {
		for range 40 {
			check(&cases[i])
		}
	}
}

// TestHeaderCacheRefusesWhatAppendBinaryRefuses: a header over a limit is
// an error, not a kept header.
func TestHeaderCacheRefusesWhatAppendBinaryRefuses(t *testing.T) {
	var c bus.HeaderCache
	bad := bus.Envelope{Kind: bus.KindTell, To: bus.Ref{Name: string(make([]byte, bus.MaxNameLen+1))}}
	for range 40 {
		if _, err := c.Header(&bad, nil); err == nil {
			t.Fatal("a name over MaxNameLen was framed")
		}
	}
	if _, err := c.Header(&bus.Envelope{}, nil); err == nil {
		t.Fatal("an envelope of kind 0 was framed")
	}
}

// TestHeaderCacheConcurrent: senders with headers of their own share one
// cache and each gets its own header every time (run under -race).
func TestHeaderCacheConcurrent(t *testing.T) {
	var c bus.HeaderCache
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		env := bus.Envelope{Kind: bus.KindTell, To: bus.Ref{Node: envNodeB, Name: fmt.Sprint("sink", g%3), ID: uint64(g)}, Type: "[]uint8"}
		want := headerOnly(t, &env)
		wg.Go(func() {
			var buf [64]byte
			for range 2000 {
				got, err := c.Header(&env, buf[:0])
				if err == nil && !bytes.Equal(got, want) {
					err = fmt.Errorf("sender %d got header %x, want %x", g, got, want)
				}
				if err != nil {
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

// TestHeaderCacheAllocations: a stream of one header allocates nothing
// once kept, and headers that alternate allocate at most once per 16
// changes (the cache keeps a changed header that seldom), not once each.
func TestHeaderCacheAllocations(t *testing.T) {
	if race.Enabled {
		t.Skip("the race detector allocates")
	}
	cases := cacheCases()
	var c bus.HeaderCache
	buf := make([]byte, 0, 256)
	if n := testing.AllocsPerRun(1000, func() { c.Header(&cases[0], buf) }); n != 0 {
		t.Fatalf("%v allocations per header of a stream of one, want 0", n)
	}
	i := 0
	n := testing.AllocsPerRun(1600, func() {
		i++
		c.Header(&cases[i%2], buf)
	})
	if n > 1.0/16 {
		t.Fatalf("%v allocations per header alternating between two, want at most 1/16", n)
	}
}
