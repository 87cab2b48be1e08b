package mailbox_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/xbus-dev/xbus/mailbox"
)

// printer is an actor: the mailbox calls it one message at a time.
type printer struct{ done chan struct{} }

func (p printer) InvokeSystem(msg string) { fmt.Println("system:", msg) }
func (p printer) Invoke(msg string) {
	fmt.Println("user:", msg)
	if msg == "last" {
		close(p.done)
	}
}
func (p printer) Dropped(msg string, reason error) { fmt.Println("dropped:", msg, "-", reason) }

func Example() {
	p := printer{done: make(chan struct{})}
	mb, err := mailbox.New[string](p, mailbox.Options{Capacity: 2, Policy: mailbox.FailFast})
	if err != nil {
		panic(err)
	}
	ctx := context.Background()

	// A suspended mailbox queues user messages and still serves its
	// system lane; this is what the bus does to a failed actor.
	mb.Suspend()
	_ = mb.Send(ctx, "first", mailbox.Default)
	_ = mb.Send(ctx, "second", mailbox.Default)
	if err := mb.Send(ctx, "third", mailbox.Default); errors.Is(err, mailbox.ErrFull) {
		fmt.Println("third refused:", err)
	}
	_ = mb.Send(ctx, "last", mailbox.DropOldest) // this send's own policy: make room
	mb.Resume()
	<-p.done

	mb.Close()
	fmt.Println(mb.Send(ctx, "late", mailbox.Default))
	// Output:
	// third refused: mailbox: full
	// dropped: first - mailbox: dropped as oldest
	// user: second
	// user: last
	// mailbox: closed
}
