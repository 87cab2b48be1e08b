package shmbus

import (
	"errors"
	"fmt"

	"github.com/xbus-dev/xbus/bus"
	"github.com/xbus-dev/xbus/internal/shmsys"
)

// Errors of the shared-memory transport. Link failures reach the bus through
// Host.LinkDown wrapped around these; match them with errors.Is.
var (
	// ErrCorrupt means the peer's shared memory broke the ring protocol: a
	// length, position or record type that cannot be. The link is closed.
	ErrCorrupt = errors.New("shmbus: corrupt shared memory")
	// ErrHandshake means the set-up over the Unix socket failed: the peer
	// hung up or sent a bad hello, an unacceptable segment. Retrying may help.
	ErrHandshake = shmsys.ErrHandshake
	// ErrPeerRefused means the peer cannot be linked, and retrying cannot
	// help: it runs as another user, or speaks another protocol version, ring
	// size or codec. It wraps bus.ErrRefused.
	ErrPeerRefused = fmt.Errorf("shmbus: peer refused: %w", bus.ErrRefused)
	// ErrInDoubt is the reason, with bus.ErrPeerGone, of a tell or publish
	// handed back when the link ended while the peer's process was alive
	// and its reader had not taken the message: a reader that resumes (a
	// process stopped with SIGSTOP) still takes it, so it may or may not
	// have been processed.
	ErrInDoubt = errors.New("shmbus: message in doubt")
	// ErrUnsupported means shared memory links are not available on this
	// operating system. It wraps bus.ErrUnsupported.
	ErrUnsupported = shmsys.ErrUnsupported
)
