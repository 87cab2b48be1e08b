//go:build unix

package codec_test

import (
	"syscall"
	"time"
)

// cpuTime is the CPU this process has used, user and system: on a machine
// others load, a benchmark's CPU per operation varies far less than its
// wall time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
