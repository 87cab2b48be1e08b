package flow

import "testing"

// The per-item path (Send, Receive, Consume, Grant, and a sender out of
// credit) allocates nothing: it runs for every item of every stream.
func TestNoAllocs(t *testing.T) {
	r, _ := NewReceiver(8)
	var s Sender
	_ = s.Grant(uint64(r.Window()))
	allocs := testing.AllocsPerRun(1000, func() {
		for s.Send() == nil {
			if r.Receive() != nil {
				t.Fatal("an honest item refused")
			}
		}
		for r.Buffered() > 0 {
			if g := r.Consume(); g > 0 {
				if s.Grant(uint64(g)) != nil {
					t.Fatal("an honest grant refused")
				}
			}
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per window, want 0", allocs)
	}
}

func BenchmarkItem(b *testing.B) {
	r, _ := NewReceiver(256) // the bus's default subscription window
	var s Sender
	_ = s.Grant(uint64(r.Window()))
	b.ReportAllocs()
	for b.Loop() {
		if s.Send() != nil || r.Receive() != nil {
			b.Fatal("credit lost")
		}
		if g := r.Consume(); g > 0 {
			_ = s.Grant(uint64(g))
		}
	}
}
