//go:build !unix

package proto_test

import "time"

// cpuTime is not measured here: the benchmarks report 0 CPU per operation.
func cpuTime() time.Duration { return 0 }
