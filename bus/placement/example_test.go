package placement_test

import (
	"fmt"
	"time"

	"github.com/xbus-dev/xbus/bus/placement"
)

// Nearest sends every call to the nearest instance, the first of equals.
type Nearest struct{}

func (Nearest) Pick(in []placement.Instance, c placement.Call) int {
	best := 0
	for i := range in {
		if in[i].Locality < in[best].Locality {
			best = i
		}
	}
	return best
}

func Example() {
	in := []placement.Instance{
		{ID: 1, Locality: placement.Remote, Stats: &placement.Stats{}},
		{ID: 2, Locality: placement.SameHost, Stats: &placement.Stats{}},
		{ID: 3, Locality: placement.SameProcess, Stats: &placement.Stats{}},
	}
	i, _ := placement.Pick(Nearest{}, in, placement.Call{}, time.Now, placement.HealthPolicy{})
	fmt.Println("nearest:", in[i].ID)

	// Least connections: the same-process instance, until it has more
	// than 2×Margin calls in flight more than the remote one.
	in[2].Stats.Add(5)
	i, _ = placement.Pick(placement.LeastConnections{}, in, placement.Call{}, time.Now, placement.HealthPolicy{})
	fmt.Println("least connections:", in[i].ID)

	// Five failures in a row take instance 2 out.
	for range 5 {
		in[1].Stats.Health.Failure(time.Now(), placement.HealthPolicy{})
	}
	i, _ = placement.Pick(placement.LeastConnections{}, in, placement.Call{}, time.Now, placement.HealthPolicy{})
	fmt.Println("with 2 out:", in[i].ID)
	// Output:
	// nearest: 3
	// least connections: 2
	// with 2 out: 3
}
