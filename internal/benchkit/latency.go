package benchkit

import (
	"slices"
	"time"
)

// Latencies calls op n times, one at a time, and returns how long each call
// took, sorted. It stops at op's first error.
func Latencies(n int, op func() error) ([]time.Duration, error) {
	lat := make([]time.Duration, n)
	for i := range lat {
		t0 := time.Now()
		if err := op(); err != nil {
			return nil, err
		}
		lat[i] = time.Since(t0)
	}
	slices.Sort(lat)
	return lat, nil
}

// Echo is the baseline of a request and its reply: a goroutine that sends
// back on one unbuffered channel whatever arrives on another. Close stops it.
type Echo[T any] struct {
	req, resp chan T
}

// NewEcho starts an Echo's goroutine.
func NewEcho[T any]() *Echo[T] {
	e := &Echo[T]{req: make(chan T), resp: make(chan T)}
	go func() {
		for m := range e.req {
			e.resp <- m
		}
	}()
	return e
}

// RoundTrip sends m to the echoing goroutine and returns its answer.
func (e *Echo[T]) RoundTrip(m T) T {
	e.req <- m
	return <-e.resp
}

// Close ends the echoing goroutine. The Echo must not be used afterwards.
func (e *Echo[T]) Close() { close(e.req) }

// ChanPingPong returns the sorted latencies of n round trips of msg through
// an Echo: the baseline of Latencies over an Ask.
func ChanPingPong[T any](msg T, n int) []time.Duration {
	e := NewEcho[T]()
	defer e.Close()
	lat, _ := Latencies(n, func() error { e.RoundTrip(msg); return nil })
	return lat
}
