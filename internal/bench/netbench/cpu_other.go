//go:build !unix

package netbench

import "time"

// cpuTime is 0 where getrusage is not available: CPU figures read 0.
func cpuTime() time.Duration { return 0 }
