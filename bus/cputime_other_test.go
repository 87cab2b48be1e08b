//go:build !unix

package bus_test

import "time"

// processCPU reports 0 where the benchmarks do not read CPU time.
func processCPU() time.Duration { return 0 }
