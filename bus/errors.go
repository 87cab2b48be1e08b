package bus

import (
	"errors"
	"strconv"
	"strings"
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
	// ErrUnknownCodec means an envelope named a body codec the receiving
	// bus does not know (see Bus.RegisterCodec).
	ErrUnknownCodec = errors.New("bus: unknown codec")
	// ErrLinkFenced is what a FencingLink's SendUnfenced returns once the
	// link is fenced; the bus sends the envelope on another link, and
	// never returns it.
	ErrLinkFenced = errors.New("bus: link fenced")
)

// Code is the wire identity of an error. Sentinels map to fixed codes so that
// errors.Is works on the far side of a link; any other error travels as
// CodeApplication with its text, and with its name if it is registered (see
// Types.RegisterError). The bus assigns codes below 1024 and only ever
// appends to them; an application may send a *RemoteError with a code of its
// own from 1024 up, and it reaches the asker as sent.
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
	CodeUnknownCodec
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
	CodeUnknownCodec: ErrUnknownCodec,
}

// CodeOf returns the wire code of err: that of the outermost bus sentinel or
// *RemoteError in its tree (depth first, as errors.Is walks it), else of the
// first sentinel it matches with errors.Is, else CodeApplication. So an
// actor's failure whose cause wraps ErrNoRoute is CodeActorFailed, as its
// dead letter is counted.
func CodeOf(err error) Code {
	code, found := CodeApplication, false
	walkErrors(err, func(e error) bool {
		if re, ok := e.(*RemoteError); ok {
			code, found = re.Code, true
		} else {
			code, found = sentinelCode(e)
		}
		return found
	})
	if found {
		return code
	}
	for c := CodeClosed; c < codeMax; c++ {
		if errors.Is(err, codeErrors[c]) {
			return c
		}
	}
	return CodeApplication
}

// sentinelCode returns the code of err if it is one of the bus's sentinels.
func sentinelCode(err error) (Code, bool) {
	for c := CodeClosed; c < codeMax; c++ {
		if err == codeErrors[c] {
			return c, true
		}
	}
	return CodeApplication, false
}

// walkErrors calls visit on err and the errors it wraps, depth first, until
// visit returns true.
func walkErrors(err error, visit func(error) bool) bool {
	for err != nil {
		if visit(err) {
			return true
		}
		switch u := err.(type) {
		case interface{ Unwrap() error }:
			err = u.Unwrap()
		case interface{ Unwrap() []error }:
			for _, e := range u.Unwrap() {
				if walkErrors(e, visit) {
					return true
				}
			}
			return false
		default:
			return false
		}
	}
	return false
}

// RemoteError is an error that came from another node. It keeps its code, so
// errors.Is(err, bus.ErrMailboxFull) holds on the asking side when the remote
// mailbox was full; the name of its registered application error, so
// errors.Is(err, ErrOutOfStock) holds where ErrOutOfStock is registered under
// that name (Types.RegisterError); and the text of the original error.
type RemoteError struct {
	Code Code
	Name string // the registered name of the application error, or ""
	Text string

	err error // this node's error registered as Name, if any
}

func (e *RemoteError) Error() string {
	if e.Text != "" {
		return e.Text
	}
	if e.Name != "" {
		return "bus: remote error " + e.Name
	}
	return "bus: remote error code " + strconv.Itoa(int(e.Code))
}

// Is matches the sentinel that Code stands for (through Unwrap), the
// application error registered here as Name, and a *RemoteError target with
// the same Code whose Name and Text, where set, are the same.
func (e *RemoteError) Is(target error) bool {
	if t, ok := target.(*RemoteError); ok {
		return t.Code == e.Code && (t.Name == "" || t.Name == e.Name) && (t.Text == "" || t.Text == e.Text)
	}
	return e.err != nil && errors.Is(e.err, target)
}

// As finds target in the application error registered here as Name.
func (e *RemoteError) As(target any) bool {
	return e.err != nil && errors.As(e.err, target)
}

// Unwrap returns the sentinel for the code, if any.
func (e *RemoteError) Unwrap() error {
	if e.Code > CodeApplication && e.Code < codeMax {
		return codeErrors[e.Code]
	}
	return nil
}

// PublishError is what a Publish returns when some subscriptions matching its
// subject did not get the message; every other one did. A SlowBlock
// subscription whose window (or credit, on another node) stayed full for
// the whole of the publish's wait is missed with ErrDeadline or ErrCanceled.
// errors.Is matches the reason of each subscription missed.
type PublishError struct {
	Subject string
	Missed  []MissedSubscription
}

// MissedSubscription is one subscription a publish missed, and why.
type MissedSubscription struct {
	Node    NodeID // the subscriber's node: the publisher's own for one in its process
	Pattern string
	Err     error
}

func (e *PublishError) Error() string {
	var sb strings.Builder
	sb.WriteString("bus: publish to ")
	sb.WriteString(strconv.Quote(e.Subject))
	sb.WriteString(" missed ")
	sb.WriteString(strconv.Itoa(len(e.Missed)))
	sb.WriteString(" subscription(s)")
	for i, m := range e.Missed {
		if i == 0 {
			sb.WriteString(": ")
		} else {
			sb.WriteString("; ")
		}
		sb.WriteString(strconv.Quote(m.Pattern))
		sb.WriteString(" on node ")
		sb.WriteString(m.Node.Short())
		sb.WriteString(": ")
		sb.WriteString(m.Err.Error())
	}
	return sb.String()
}

// Unwrap returns the reason of each subscription missed.
func (e *PublishError) Unwrap() []error {
	errs := make([]error, len(e.Missed))
	for i, m := range e.Missed {
		errs[i] = m.Err
	}
	return errs
}
