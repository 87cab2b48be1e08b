package flow

import "errors"

var (
	// ErrWindow: a window outside 1..MaxWindow.
	ErrWindow = errors.New("flow: window must be between 1 and MaxWindow")
	// ErrNoCredit: the sender has no credit; it must hold or drop the item.
	ErrNoCredit = errors.New("flow: no credit")
	// ErrOverflow: an item arrived beyond the credit the receiver granted.
	ErrOverflow = errors.New("flow: item beyond the granted credit")
	// ErrGrantOverflow: a grant would take the sender's credit above MaxWindow.
	ErrGrantOverflow = errors.New("flow: grant beyond the largest window")
	// ErrClosed: the stream's end was closed; Err says why.
	ErrClosed = errors.New("flow: stream closed")
)
