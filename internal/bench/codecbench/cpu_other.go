//go:build !unix

package codecbench

import "time"

var start = time.Now()

// cpuTime is wall time here, where getrusage is missing.
func cpuTime() time.Duration { return time.Since(start) }
