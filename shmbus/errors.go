package shmbus

import (
	"errors"

	"github.com/xbus-dev/xbus/shmbus/internal/shmsys"
)

// Errors of the shared-memory transport. Link failures reach the bus through
// Host.LinkDown wrapped around these; match them with errors.Is.
var (
	// ErrCorrupt means the peer's shared memory broke the ring protocol: a
	// length, position or record type that cannot be. The link is closed.
	ErrCorrupt = errors.New("shmbus: corrupt shared memory")
	// ErrHandshake means the set-up over the Unix socket failed: bad magic or
	// version, an unacceptable segment, a codec mismatch.
	ErrHandshake = shmsys.ErrHandshake
	// ErrPeerRefused means the peer process runs as another user.
	ErrPeerRefused = errors.New("shmbus: peer refused")
	// ErrUnsupported means shared memory links are not available on this
	// operating system.
	ErrUnsupported = shmsys.ErrUnsupported
)
