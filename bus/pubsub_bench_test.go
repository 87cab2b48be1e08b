package bus_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/xbus-dev/xbus/bus"
)

// BenchmarkPublish times a Publish among n subscriptions that do not match
// it ("other.<i>.*", window 1): "none" reaches no subscriber, "one" reaches
// one more subscription, read by a goroutine.
func BenchmarkPublish(b *testing.B) {
	for _, n := range []int{10, 1000, 10000} {
		b.Run(fmt.Sprintf("subs=%d", n), func(b *testing.B) {
			bs, err := bus.New()
			if err != nil {
				b.Fatal(err)
			}
			defer bs.Close(context.Background())
			ctx := context.Background()
			for i := range n {
				if _, err := bs.Subscribe(ctx, fmt.Sprintf("other.%d.*", i), bus.WithWindow(1)); err != nil {
					b.Fatal(err)
				}
			}
			b.Run("none", func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if err := bs.Publish("prices.eur", 1); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run("one", func(b *testing.B) {
				s, err := bs.Subscribe(ctx, "prices.*")
				if err != nil {
					b.Fatal(err)
				}
				go func() {
					for range s.Messages() {
					}
				}()
				b.ReportAllocs()
				for b.Loop() {
					if err := bs.Publish("prices.eur", 1); err != nil {
						b.Fatal(err)
					}
				}
				s.Close()
			})
		})
	}
}
