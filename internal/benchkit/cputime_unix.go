//go:build unix

package benchkit

import (
	"syscall"
	"time"
)

// CPUTime is the user and system time this process has used: on a machine
// others load, CPU per operation varies far less than wall time.
func CPUTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
