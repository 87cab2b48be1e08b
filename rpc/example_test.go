package rpc_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/xbus-dev/xbus/bus"
	"github.com/xbus-dev/xbus/rpc"
)

type Pair struct{ A, B int }
type Total struct{ N int }

// Calc is a service registered with rpc.Register: each method is one call.
type Calc struct{}

func (Calc) Sub(_ context.Context, p Pair) (Total, error) { return Total{p.A - p.B}, nil }

// A typed handler and its calls: synchronous, asynchronous, with metadata,
// and one that fails with a code.
func Example() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	b, err := bus.New()
	if err != nil {
		panic(err)
	}
	defer b.Close(ctx)

	_, err = rpc.Handle(b, "calc.add", func(ctx context.Context, p Pair) (Total, error) {
		if who, ok := rpc.IncomingMD(ctx).Get("user"); ok && who == "mallory" {
			return Total{}, rpc.Errorf(rpc.CodePermissionDenied, "calc: %s may not add", who)
		}
		return Total{p.A + p.B}, nil
	})
	if err != nil {
		panic(err)
	}
	if _, err := rpc.Register(b, "calc", Calc{}); err != nil {
		panic(err)
	}

	sum, err := rpc.Call[Total](ctx, b, "calc.add", Pair{2, 3})
	fmt.Println(sum.N, err)

	f := rpc.Go[Total](ctx, b, "calc.Sub", Pair{10, 4})
	diff, err := f.Wait()
	fmt.Println(diff.N, err)

	_, err = rpc.Call[Total](ctx, b, "calc.add", Pair{1, 1}, rpc.Header("user", "mallory"))
	fmt.Println(errors.Is(err, rpc.ErrPermissionDenied), err)
	// Output:
	// 5 <nil>
	// 6 <nil>
	// true calc: mallory may not add
}
