//go:build !linux

package shmbench

import (
	"github.com/xbus-dev/xbus/internal/benchkit"

	"github.com/xbus-dev/xbus/shmbus"
)

// RunBench needs shared memory between processes; see bench_linux.go.
func RunBench(out benchkit.Out, quick bool) error { return shmbus.ErrUnsupported }

// Peer needs shared memory between processes too.
func Peer(mode string) int { return 2 }
