package bus

import (
	"errors"
	"strconv"
)

// Errors returned by the bus. Match them with errors.Is: errors that crossed a
// process boundary arrive as *RemoteError values, which match the same
// sentinels.
var (
	ErrClosed       = errors.New("bus: closed")
	ErrNoRoute      = errors.New("bus: no route to actor")
	ErrMailboxFull  = errors.New("bus: mailbox full")
	ErrDeadline     = errors.New("bus: deadline exceeded")
	ErrCanceled     = errors.New("bus: canceled")
	ErrInvalidName  = errors.New("bus: invalid name")
	ErrNilActor     = errors.New("bus: nil actor")
	ErrWrongType    = errors.New("bus: reply of the wrong type")
	ErrActorStopped = errors.New("bus: actor stopped")
	ErrActorFailed  = errors.New("bus: actor failed")
	ErrPeerGone     = errors.New("bus: peer gone")
	ErrBadEnvelope  = errors.New("bus: bad envelope")
	ErrUnknownType  = errors.New("bus: unknown message type")
	ErrTooLarge     = errors.New("bus: message too large")
	ErrSlowConsumer = errors.New("bus: slow consumer")
	ErrNoReply      = errors.New("bus: actor returned without replying")
	ErrUnsupported  = errors.New("bus: unsupported")
	// ErrRefused means a peer refused a link, or was refused, for a reason
	// retrying cannot heal: a wrong secret or uid, a codec or version
	// mismatch, a node id that another peer holds.
	ErrRefused = errors.New("bus: link refused")
)

// Code is the wire identity of an error. Sentinels map to fixed codes so that
// errors.Is works on the far side of a link; any other error travels as
// CodeApplication with its text.
type Code uint16

const (
	CodeApplication Code = iota
	CodeClosed
	CodeNoRoute
	CodeMailboxFull
	CodeDeadline
	CodeCanceled
	CodeInvalidName
	CodeActorStopped
	CodeActorFailed
	CodePeerGone
	CodeBadEnvelope
	CodeUnknownType
	CodeTooLarge
	CodeSlowConsumer
	CodeNoReply
	CodeUnsupported
	CodeWrongType
	CodeRefused
	codeMax
)

var codeErrors = [codeMax]error{
	CodeClosed:       ErrClosed,
	CodeNoRoute:      ErrNoRoute,
	CodeMailboxFull:  ErrMailboxFull,
	CodeDeadline:     ErrDeadline,
	CodeCanceled:     ErrCanceled,
	CodeInvalidName:  ErrInvalidName,
	CodeActorStopped: ErrActorStopped,
	CodeActorFailed:  ErrActorFailed,
	CodePeerGone:     ErrPeerGone,
	CodeBadEnvelope:  ErrBadEnvelope,
	CodeUnknownType:  ErrUnknownType,
	CodeTooLarge:     ErrTooLarge,
	CodeSlowConsumer: ErrSlowConsumer,
	CodeNoReply:      ErrNoReply,
	CodeUnsupported:  ErrUnsupported,
	CodeWrongType:    ErrWrongType,
	CodeRefused:      ErrRefused,
}

// CodeOf returns the wire code of err: the code of the first bus sentinel it
// matches, the code it already carries if it is a *RemoteError, or
// CodeApplication.
func CodeOf(err error) Code {
	var re *RemoteError
	if errors.As(err, &re) {
		return re.Code
	}
	for c := CodeClosed; c < codeMax; c++ {
		if errors.Is(err, codeErrors[c]) {
			return c
		}
	}
	return CodeApplication
}

// RemoteError is an error that came from another node. It keeps its code, so
// errors.Is(err, bus.ErrMailboxFull) holds on the asking side when the remote
// mailbox was full, and the text of the original error.
type RemoteError struct {
	Code Code
	Text string
}

func (e *RemoteError) Error() string {
	if e.Text != "" {
		return e.Text
	}
	return "bus: remote error code " + strconv.Itoa(int(e.Code))
}

// Is matches the sentinel that Code stands for.
func (e *RemoteError) Is(target error) bool {
	if t, ok := target.(*RemoteError); ok {
		return t.Code == e.Code && (t.Text == "" || t.Text == e.Text)
	}
	return e.Code > CodeApplication && e.Code < codeMax && codeErrors[e.Code] == target
}

// Unwrap returns the sentinel for the code, if any.
func (e *RemoteError) Unwrap() error {
	if e.Code > CodeApplication && e.Code < codeMax {
		return codeErrors[e.Code]
	}
	return nil
}
