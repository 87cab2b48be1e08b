package bus

import (
	"errors"
	"fmt"
	"testing"
)

// TestCodeOfAgreesWithDeadLetters: CodeOf and the dead-letter count classify
// an error alike, by its outermost bus sentinel, and a code the bus does not
// know is counted, not a crash.
func TestCodeOfAgreesWithDeadLetters(t *testing.T) {
	b := newBus(t)
	cases := []struct {
		err  error
		want Code
	}{
		{ErrMailboxFull, CodeMailboxFull},
		{fmt.Errorf("%w: %w", ErrActorFailed, ErrNoRoute), CodeActorFailed},
		{fmt.Errorf("%w: %w", ErrActorFailed, fmt.Errorf("calling: %w", ErrMailboxFull)), CodeActorFailed},
		{errors.Join(fmt.Errorf("a: %w", ErrDeadline), ErrClosed), CodeDeadline},
		{fmt.Errorf("relay: %w", &RemoteError{Code: CodePeerGone}), CodePeerGone},
		{&RemoteError{Code: 4000, Text: "app"}, 4000},
		{errors.New("plain"), CodeApplication},
	}
	for _, c := range cases {
		if got := CodeOf(c.err); got != c.want {
			t.Errorf("CodeOf(%v) = %d, want %d", c.err, got, c.want)
		}
		bucket := c.want
		if bucket >= codeMax {
			bucket = CodeApplication
		}
		before := b.dead.byCode[bucket].Load()
		b.deadLetter("m", Ref{}, Ref{}, c.err)
		if got := b.dead.byCode[bucket].Load(); got != before+1 {
			t.Errorf("dead letter with reason %v not counted under code %d", c.err, bucket)
		}
		if got := b.DeadLetterCount(c.err); got != before+1 {
			t.Errorf("DeadLetterCount(%v) = %d, want %d", c.err, got, before+1)
		}
	}
}
