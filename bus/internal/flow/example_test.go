package flow_test

import (
	"fmt"

	"github.com/xbus-dev/xbus/bus/internal/flow"
)

// A sender with a window of 4 and a reader that takes one item at a time:
// the sender stops at the window and the reader grants in batches of half.
func Example() {
	r, _ := flow.NewReceiver(4)
	var s flow.Sender
	_ = s.Grant(uint64(r.Window())) // the stream's open message carries the window

	sent := 0
	for s.Send() == nil {
		sent++
		_ = r.Receive()
	}
	fmt.Println("sent before the window filled:", sent)
	fmt.Println("one more:", s.Send())

	for r.Buffered() > 0 {
		if g := r.Consume(); g > 0 {
			fmt.Println("grant", g)
			_ = s.Grant(uint64(g))
		}
	}
	fmt.Println("credit again:", s.Credit())

	// A sender that ignores its credit is refused.
	for range 5 {
		if err := r.Receive(); err != nil {
			fmt.Println(err)
		}
	}
	// Output:
	// sent before the window filled: 4
	// one more: flow: no credit
	// grant 2
	// grant 2
	// credit again: 4
	// flow: item beyond the granted credit: window 4, 4 items held
}
