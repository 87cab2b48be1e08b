//go:build !gc

package placement

import "math/rand/v2"

// fastrand is 64 random bits: math/rand/v2's, where the runtime's own
// generator cannot be linked to.
func fastrand() uint64 { return rand.Uint64() }
