package netbus

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"

	"github.com/xbus-dev/xbus/bus"
)

// Errors of the netbus transport. Match them with errors.Is. A refusal
// reported by the peer in a close frame wraps ErrRejected and the sentinel
// for the reason it gave, so both ends of a refused handshake match the same
// sentinel (errors.Is(err, ErrVersion) holds on both sides). Refusals that
// retrying cannot heal (ErrBadMagic, ErrVersion, ErrAuth, ErrCodecMismatch:
// the ends prefer codecs of their own that differ, neither built in,
// a hello that breaks the rules, a TLS certificate refused) wrap
// bus.ErrRefused: the bus stops redialing on them (bus.Connect).
var (
	ErrClosed        = errors.New("netbus: transport closed")
	ErrBadMagic      = fmt.Errorf("netbus: bad magic: peer does not speak the xbus protocol: %w", bus.ErrRefused)
	ErrVersion       = fmt.Errorf("netbus: unsupported protocol version: %w", bus.ErrRefused)
	ErrAuth          = fmt.Errorf("netbus: authentication failed: %w", bus.ErrRefused)
	ErrCodecMismatch = fmt.Errorf("netbus: no body codec both ends have: %w", bus.ErrRefused)
	ErrHandshake     = errors.New("netbus: bad handshake")
	ErrRejected      = errors.New("netbus: refused by peer")
	ErrBadFrame      = errors.New("netbus: bad frame")
	ErrFrameTooLarge = fmt.Errorf("netbus: frame too large: %w", bus.ErrTooLarge)
	ErrIdleTimeout   = errors.New("netbus: peer idle for too long")
	ErrShutdown      = errors.New("netbus: peer shut down")
	// ErrInDoubt is the reason, with bus.ErrPeerGone, of a tell or publish
	// handed back after a broken connection had written it whole but the
	// peer had not acknowledged it: it may or may not have been processed.
	ErrInDoubt = errors.New("netbus: message in doubt")

	// errRelinked closes a connection the peer reports broken when it links
	// again (settle.go).
	errRelinked = errors.New("netbus: the peer linked again and reports this connection broken")
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

// refused marks err as a refusal retrying cannot heal, if it is not one yet.
func refused(err error) error {
	if errors.Is(err, bus.ErrRefused) {
		return err
	}
	return fmt.Errorf("%w: %w", err, bus.ErrRefused)
}

// tlsRefusal reports whether a TLS error means a certificate or a protocol
// version was refused, by this end or by the peer (an alert), rather than a
// connection that failed on the way.
func tlsRefusal(err error) bool {
	var (
		verr  *tls.CertificateVerificationError
		uerr  x509.UnknownAuthorityError
		herr  x509.HostnameError
		cerr  x509.CertificateInvalidError
		rerr  tls.RecordHeaderError
		alert tls.AlertError
		op    *net.OpError
	)
	switch {
	case errors.As(err, &verr), errors.As(err, &uerr), errors.As(err, &herr), errors.As(err, &cerr), errors.As(err, &rerr):
		return true
	case errors.As(err, &op) && op.Op == "remote error":
		// crypto/tls reports an alert from the peer so (its type is not
		// exported): the peer's TLS refused us, a certificate or a version.
		return true
	case errors.As(err, &alert):
		switch alert {
		case 40, 42, 43, 44, 45, 46, 48, 49, 70, 71, 116:
			// handshake_failure, bad/unsupported/revoked/expired/unknown
			// certificate, unknown_ca, access_denied, protocol_version,
			// insufficient_security, certificate_required (RFC 8446 6.2)
			return true
		}
	}
	return false
}
