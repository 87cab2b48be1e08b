package shmsys

import (
	"errors"
	"fmt"

	"github.com/xbus-dev/xbus/bus"
)

// Errors, re-exported by shmbus.
var (
	ErrUnsupported = fmt.Errorf("shmbus: shared memory links need Linux: %w", bus.ErrUnsupported)
	ErrHandshake   = errors.New("shmbus: handshake failed")
)
