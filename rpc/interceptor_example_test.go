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

// Interceptors given once, to a Server, wrap each of its handlers: here
// every method of a service registered with Register.
func ExampleServerInterceptors() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	b, err := bus.New()
	if err != nil {
		panic(err)
	}
	defer b.Close(ctx)

	auth := func(ctx context.Context, info rpc.ServerInfo, req any, next func(context.Context, any) (any, error)) (any, error) {
		if tok, _ := info.MD.Get("token"); tok != "s3cret" {
			return nil, rpc.Errorf(rpc.CodeUnauthenticated, "%s: no valid token", info.Name)
		}
		return next(ctx, req)
	}
	srv := rpc.NewServer(b, rpc.ServerInterceptors(auth))
	if _, err := rpc.Register(b, "calc", Calc{}, rpc.WithServer(srv)); err != nil {
		panic(err)
	}

	_, err = rpc.Call[Total](ctx, b, "calc.Sub", Pair{5, 2})
	fmt.Println(err)
	diff, err := rpc.Call[Total](ctx, b, "calc.Sub", Pair{5, 2}, rpc.Header("token", "s3cret"))
	fmt.Println(diff.N, err)
	// Output:
	// calc.Sub: no valid token
	// 3 <nil>
}

// Upto opens a stream of the numbers 1 to N; Count is one of them.
type (
	Upto  struct{ N int }
	Count struct{ N int }
)

// Logging and authentication of streams: the handler's interceptors log
// each stream's end and refuse one opened without a token, before the
// handler runs; the caller's interceptor adds the token to the open.
func ExampleWithStreamServerInterceptors() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	b, err := bus.New()
	if err != nil {
		panic(err)
	}
	defer b.Close(ctx)

	logged := make(chan string, 1)
	logging := func(ctx context.Context, info rpc.StreamServerInfo, next func(context.Context) error) error {
		err := next(ctx)
		logged <- fmt.Sprintf("log: %s %s ended, code %d", info.Kind, info.Name, rpc.Code(err))
		return err
	}
	auth := func(ctx context.Context, info rpc.StreamServerInfo, next func(context.Context) error) error {
		if tok, _ := info.MD.Get("token"); tok != "s3cret" {
			return rpc.Errorf(rpc.CodeUnauthenticated, "%s: no valid token", info.Name)
		}
		return next(ctx)
	}
	_, err = rpc.HandleServerStream(b, "count", func(ctx context.Context, u Upto, send func(Count) error) error {
		for i := 1; i <= u.N; i++ {
			if err := send(Count{i}); err != nil {
				return err
			}
		}
		return nil
	}, rpc.WithStreamServerInterceptors(logging, auth))
	if err != nil {
		panic(err)
	}

	for _, err := range rpc.CallServerStream[Count](ctx, b, "count", Upto{3}) {
		fmt.Println(errors.Is(err, rpc.ErrUnauthenticated))
	}
	fmt.Println(<-logged)

	withToken := func(ctx context.Context, info rpc.StreamClientInfo, next func(context.Context) error) error {
		return next(rpc.WithOutgoingMD(ctx, rpc.MD{{Key: "token", Value: "s3cret"}}))
	}
	for c, err := range rpc.CallServerStream[Count](ctx, b, "count", Upto{3}, rpc.WithStreamClientInterceptors(withToken)) {
		fmt.Println(c.N, err)
	}
	fmt.Println(<-logged)
	// Output:
	// true
	// log: server stream count ended, code 1028
	// 1 <nil>
	// 2 <nil>
	// 3 <nil>
	// log: server stream count ended, code 0
}

// Metrics of streams: the caller's interceptor counts opens and the ones
// that failed, and sees each stream's end (StreamClientInfo.OnEnd); the
// handler's counts streams by how they ended.
func ExampleWithStreamClientInterceptors() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	b, err := bus.New()
	if err != nil {
		panic(err)
	}
	defer b.Close(ctx)

	ends := make(chan bus.Code, 3)
	metrics := func(ctx context.Context, info rpc.StreamServerInfo, next func(context.Context) error) error {
		err := next(ctx)
		ends <- rpc.Code(err)
		return err
	}
	_, err = rpc.HandleServerStream(b, "count", func(ctx context.Context, u Upto, send func(Count) error) error {
		if u.N < 0 {
			return rpc.Errorf(rpc.CodeInvalidArgument, "cannot count up to %d", u.N)
		}
		for i := 1; i <= u.N; i++ {
			if err := send(Count{i}); err != nil {
				return err
			}
		}
		return nil
	}, rpc.WithStreamServerInterceptors(metrics))
	if err != nil {
		panic(err)
	}

	var opens, failed int
	callerEnds := make(chan bus.Code, 3)
	counting := func(ctx context.Context, info rpc.StreamClientInfo, next func(context.Context) error) error {
		opens++
		info.OnEnd(func(err error) { callerEnds <- rpc.Code(err) })
		err := next(ctx)
		if err != nil {
			failed++
		}
		return err
	}
	client := rpc.Options(rpc.WithStreamClientInterceptors(counting))
	for _, to := range []struct {
		name string
		n    int
	}{{"count", 2}, {"count", -1}, {"nowhere", 1}} {
		for range rpc.CallServerStream[Count](ctx, b, to.name, Upto{to.n}, client) {
		}
		fmt.Printf("caller: %s up to %d ended with code %d\n", to.name, to.n, <-callerEnds)
	}
	fmt.Printf("caller: %d opens, %d failed\n", opens, failed)
	fmt.Println("handler: ended with codes", <-ends, <-ends)
	// Output:
	// caller: count up to 2 ended with code 0
	// caller: count up to -1 ended with code 1024
	// caller: nowhere up to 1 ended with code 2
	// caller: 3 opens, 1 failed
	// handler: ended with codes 0 1024
}
