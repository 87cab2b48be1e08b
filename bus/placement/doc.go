// Package placement chooses which instance of a name a call goes to, and
// keeps each instance's health. It is pure: no goroutines, no I/O, no
// clock (time is an argument), so every strategy is table-tested.
//
// The bus keeps, per name, a slice of [Instance] values: a stable ID, the
// instance's [Locality], a weight, and a [Stats] it updates as calls start
// and end (calls in flight, a moving average of round trips, a [Health]
// breaker). For each call by name it calls [Pick] with the name's
// [Strategy], which returns an index into the slice.
//
// Strategies: [LeastConnections] (the bus's default: fewest calls in
// flight, nearer instances preferred by a margin, power of two choices
// above a size), [RoundRobin], [Random], [WeightedRoundRobin],
// [ConsistentHash] on a key the caller gives, and [Latency] (round-trip
// average weighed by load, power of two choices). A strategy of your own
// is one method:
//
//	// Nearest sends every call to the nearest instance, the first of equals.
//	type Nearest struct{}
//
//	func (Nearest) Pick(in []placement.Instance, c placement.Call) int {
//		best := 0
//		for i := range in {
//			if in[i].Locality < in[best].Locality {
//				best = i
//			}
//		}
//		return best
//	}
//
// Pick must be safe for concurrent use, must not block, and should
// not allocate: it runs on every send by name. [PickFast] is the bus's
// path for the default strategy: the same choice without the interface
// call, random bits drawn only to break a tie or to sample two of many.
//
// [Health] takes an instance out after consecutive failures for a
// cool-down that doubles each time in a row, up to a bound; one probe
// after the cool-down brings it back. [Budget] is a token bucket that
// bounds retries.
package placement
