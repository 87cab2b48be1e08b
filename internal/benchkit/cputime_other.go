//go:build !unix

package benchkit

import "time"

// CPUTime is 0 where getrusage is missing: CPU figures read 0.
func CPUTime() time.Duration { return 0 }
