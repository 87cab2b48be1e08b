package rpc_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/xbus-dev/xbus/bus"
	"github.com/xbus-dev/xbus/rpc"
)

// A logging interceptor on the handler's side and an authentication pair:
// the caller's interceptor adds a token, the handler's refuses a call
// without it.
func ExampleWithServerInterceptors() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	b, err := bus.New()
	if err != nil {
		panic(err)
	}
	defer b.Close(ctx)

	logging := func(ctx context.Context, info rpc.ServerInfo, req any, next func(context.Context, any) (any, error)) (any, error) {
		resp, err := next(ctx, req)
		fmt.Printf("log: %s %+v -> %+v, code %d\n", info.Name, req, resp, rpc.Code(err))
		return resp, err
	}
	auth := func(ctx context.Context, info rpc.ServerInfo, req any, next func(context.Context, any) (any, error)) (any, error) {
		if tok, _ := info.MD.Get("token"); tok != "s3cret" {
			return nil, rpc.Errorf(rpc.CodeUnauthenticated, "%s: no valid token", info.Name)
		}
		return next(ctx, req)
	}
	_, err = rpc.Handle(b, "calc.add", func(_ context.Context, p Pair) (Total, error) {
		return Total{p.A + p.B}, nil
	}, rpc.WithServerInterceptors(logging, auth))
	if err != nil {
		panic(err)
	}

	withToken := func(ctx context.Context, info rpc.ClientInfo, req any, next func(context.Context, any) (any, error)) (any, error) {
		return next(rpc.WithOutgoingMD(ctx, rpc.MD{{Key: "token", Value: "s3cret"}}), req)
	}
	_, err = rpc.Call[Total](ctx, b, "calc.add", Pair{1, 2})
	fmt.Println(errors.Is(err, rpc.ErrUnauthenticated))
	sum, err := rpc.Call[Total](ctx, b, "calc.add", Pair{1, 2}, rpc.WithClientInterceptors(withToken))
	fmt.Println(sum.N, err)
	// Output:
	// log: calc.add {A:1 B:2} -> <nil>, code 1028
	// true
	// log: calc.add {A:1 B:2} -> {N:3}, code 0
	// 3 <nil>
}
