package rpc

import (
	"errors"
	"fmt"

	"github.com/xbus-dev/xbus/bus"
)

// Status codes of the rpc layer, after gRPC's. The bus's own codes (below
// 1024: bus.CodeDeadline, bus.CodeCanceled, bus.CodeNoRoute...) keep their
// meaning; these take 1024 to 1039, and an application's own codes start
// at CodeApplication.
const (
	CodeInvalidArgument bus.Code = 1024 + iota
	CodeNotFound
	CodeAlreadyExists
	CodePermissionDenied
	CodeUnauthenticated
	CodeResourceExhausted
	CodeFailedPrecondition
	CodeAborted
	CodeOutOfRange
	CodeUnimplemented
	CodeInternal
	CodeUnavailable
	CodeDataLoss

	// CodeApplication is the first code an application may give its own
	// errors (Errorf).
	CodeApplication bus.Code = 4096
)

// Sentinels for the codes above: errors.Is(err, rpc.ErrInvalidArgument)
// holds for any error carrying CodeInvalidArgument, in process and on the
// far side of a link alike.
var (
	ErrInvalidArgument    = &bus.RemoteError{Code: CodeInvalidArgument}
	ErrNotFound           = &bus.RemoteError{Code: CodeNotFound}
	ErrAlreadyExists      = &bus.RemoteError{Code: CodeAlreadyExists}
	ErrPermissionDenied   = &bus.RemoteError{Code: CodePermissionDenied}
	ErrUnauthenticated    = &bus.RemoteError{Code: CodeUnauthenticated}
	ErrResourceExhausted  = &bus.RemoteError{Code: CodeResourceExhausted}
	ErrFailedPrecondition = &bus.RemoteError{Code: CodeFailedPrecondition}
	ErrAborted            = &bus.RemoteError{Code: CodeAborted}
	ErrOutOfRange         = &bus.RemoteError{Code: CodeOutOfRange}
	ErrUnimplemented      = &bus.RemoteError{Code: CodeUnimplemented}
	ErrInternal           = &bus.RemoteError{Code: CodeInternal}
	ErrUnavailable        = &bus.RemoteError{Code: CodeUnavailable}
	ErrDataLoss           = &bus.RemoteError{Code: CodeDataLoss}
)

// Errorf returns an error with code and the formatted text. A handler
// returns it; its caller, in process or across any link, gets an error
// whose Code is code and which matches, with errors.Is, every other error
// of that code (the sentinels above, or Sentinel(code) for the
// application's own codes). %w wraps as fmt.Errorf does, in process.
func Errorf(code bus.Code, format string, args ...any) error {
	return &codedError{code: code, err: fmt.Errorf(format, args...)}
}

// Sentinel returns an error that every error carrying code matches with
// errors.Is, in process and across a link: the sentinels above are those of
// rpc's codes, and an application makes its own the same way:
//
//	var ErrQuota = rpc.Sentinel(rpc.CodeApplication + 1)
func Sentinel(code bus.Code) error { return &bus.RemoteError{Code: code} }

// Code returns err's code: that of the first coded error in its tree, or of
// the bus sentinel it matches, else bus.CodeApplication; bus.CodeOf.
func Code(err error) bus.Code { return bus.CodeOf(err) }

// codedError is an error made by Errorf. It unwraps to a *bus.RemoteError
// of its code, so that errors.Is matches by code and bus.CodeOf finds it,
// and to what its text wrapped.
type codedError struct {
	code bus.Code
	err  error
}

func (e *codedError) Error() string { return e.err.Error() }

func (e *codedError) Unwrap() []error {
	coded := &bus.RemoteError{Code: e.code, Text: e.err.Error()}
	if inner := errors.Unwrap(e.err); inner != nil {
		return []error{coded, inner}
	}
	return []error{coded}
}

// errBadRequest is the answer to a message that is not the handler's
// request type.
func errBadRequest(name string, want string, got any) error {
	return Errorf(CodeInvalidArgument, "rpc: %s takes %s, got %T", name, want, got)
}
