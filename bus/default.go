package bus

import (
	"context"
	"sync"
)

var (
	defaultOnce sync.Once
	defaultBus  *Bus
)

// Default returns the process-wide bus, created on first use with no
// transports, like http.DefaultServeMux. The package-level Register, Tell,
// Ask, Subscribe and Publish act on it.
func Default() *Bus {
	defaultOnce.Do(func() {
		b, err := New(WithName("default"))
		if err != nil {
			panic("bus: creating the default bus: " + err.Error())
		}
		defaultBus = b
	})
	return defaultBus
}

// Register registers a on the default bus.
func Register(name string, a Actor, opts ...ActorOption) (Ref, error) {
	return Default().Register(name, a, opts...)
}

// Tell sends msg on the default bus.
func Tell(to any, msg any) error { return Default().Tell(to, msg) }

// Ask asks on the default bus.
func Ask(ctx context.Context, to any, msg any) (any, error) { return Default().Ask(ctx, to, msg) }

// Subscribe subscribes on the default bus.
func Subscribe(ctx context.Context, pattern string, opts ...SubOption) (*Subscription, error) {
	return Default().Subscribe(ctx, pattern, opts...)
}

// Publish publishes on the default bus.
func Publish(subject string, msg any) error { return Default().Publish(subject, msg) }
