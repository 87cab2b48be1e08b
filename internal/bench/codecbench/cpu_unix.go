//go:build unix

package codecbench

import (
	"syscall"
	"time"
)

// cpuTime is the user and system time this process has used: on a machine
// others load, CPU per operation varies far less than wall time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
