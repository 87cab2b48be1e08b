//go:build gc

package placement

import _ "unsafe" // for go:linkname

// fastrand is 64 random bits (the lowest always 0) from the runtime's
// per-thread generator, which writes no memory that other threads share,
// and so costs less than math/rand/v2's, most of a tie's cost on a Tell by
// name (figures in docs/performance.md). Not for secrets.
func fastrand() uint64 { return uint64(cheaprand64()) << 1 }

// cheaprand64 is one of the runtime's functions it keeps for packages
// outside the standard library to link to by name ("Do not remove or
// change the type signature", go.dev/issue/67401), so it builds with the
// linker's default -checklinkname on every platform.
//
//go:linkname cheaprand64 runtime.cheaprand64
func cheaprand64() int64
