package netbus

import (
	"errors"
	"fmt"

	"github.com/xbus-dev/xbus/bus"
)

// Errors of the netbus transport. Match them with errors.Is. A refusal
// reported by the peer in a close frame wraps ErrRejected and the sentinel
// for the reason it gave, so both ends of a refused handshake match the same
// sentinel (errors.Is(err, ErrVersion) holds on both sides).
var (
	ErrClosed        = errors.New("netbus: transport closed")
	ErrBadMagic      = errors.New("netbus: bad magic: peer does not speak the xbus protocol")
	ErrVersion       = errors.New("netbus: unsupported protocol version")
	ErrAuth          = errors.New("netbus: authentication failed")
	ErrCodecMismatch = errors.New("netbus: peers use different body codecs")
	ErrHandshake     = errors.New("netbus: bad handshake")
	ErrRejected      = errors.New("netbus: refused by peer")
	ErrBadFrame      = errors.New("netbus: bad frame")
	ErrFrameTooLarge = fmt.Errorf("netbus: frame too large: %w", bus.ErrTooLarge)
	ErrIdleTimeout   = errors.New("netbus: peer idle for too long")
	ErrShutdown      = errors.New("netbus: peer shut down")
)

// closeCode is the reason carried in the first byte of a close frame.
type closeCode uint8

const (
	closeOther closeCode = iota
	closeBadMagic
	closeVersion
	closeAuth
	closeCodec
	closeHandshake
	closeBadFrame
	closeTooLarge
	closeIdle
	closeShutdown
	closeCodeMax
)

var closeErrors = [closeCodeMax]error{
	closeBadMagic:  ErrBadMagic,
	closeVersion:   ErrVersion,
	closeAuth:      ErrAuth,
	closeCodec:     ErrCodecMismatch,
	closeHandshake: ErrHandshake,
	closeBadFrame:  ErrBadFrame,
	closeTooLarge:  ErrFrameTooLarge,
	closeIdle:      ErrIdleTimeout,
	closeShutdown:  ErrShutdown,
}

// codeFor returns the close code that tells the peer why we close.
func codeFor(err error) closeCode {
	for c := closeBadMagic; c < closeCodeMax; c++ {
		if errors.Is(err, closeErrors[c]) {
			return c
		}
	}
	if errors.Is(err, ErrClosed) {
		return closeShutdown
	}
	return closeOther
}

// rejectedError builds the error for a close frame received from the peer.
func rejectedError(code closeCode, reason string) error {
	if code > closeOther && code < closeCodeMax {
		return fmt.Errorf("%w: %w: %s", ErrRejected, closeErrors[code], reason)
	}
	return fmt.Errorf("%w: %s", ErrRejected, reason)
}
