// Package rpc is typed request/response on the bus: services are plain Go
// functions, called with types, without code generation, over whatever link
// the bus picks for their name (same process, shared memory, a socket).
//
// A handler is registered under a name and called by it:
//
//	rpc.Handle(b, "arith.add", func(ctx context.Context, a Add) (Sum, error) {
//		return Sum{a.A + a.B}, nil
//	})
//	sum, err := rpc.Call[Sum](ctx, b, "arith.add", Add{1, 2})
//
// A call is an Ask of the request value itself to the handler's actor; its
// reply is the response value. So a call is an addressed message like any
// other: placed among a name's instances, ordered, bounded by its context,
// answered with an error when its node goes away.
//
// # Types
//
// Handle, Register, Call, Go and Send register the request and response
// types with the bus's type registry (bus.Types) under their Go names, the
// names the bus gives unregistered types, unless they are registered
// already under any name. A typed service therefore needs no registration
// by hand as long as both ends share the types' Go definitions; register a
// type by hand, on both ends, to give it a name of its own. A request or
// response must be a concrete type that crosses a process boundary as it
// is (see bus.Types.Register); Handle refuses one that does not.
//
// # Deadlines and metadata
//
// The caller's deadline becomes the handler's ctx deadline, on every
// transport (across a link it travels as the time left, envelope field
// Timeout), so a call the handler makes with its ctx carries it on.
// Metadata (MD) travels as the envelope's headers: a caller adds it with
// the Header option or WithOutgoingMD, a handler reads it with IncomingMD,
// and a plain actor with bus.Context.Headers. Back, a handler sets a
// trailer with SetTrailer, which rides on its response or error, and the
// caller reads it with the Trailer option (bus.Context.SetReplyHeaders and
// bus.WithReplyHeaders for plain actors).
//
// A handler's ctx ends when its caller gives up (its ctx ends or, across a
// link, the link goes down; bus.Context.AfterCancel), when its actor is
// asked to stop (bus.Stop, its parent's stop), whatever the caller's ctx,
// and when the handler returns. A handler called in process with a ctx
// that never ends, and nothing else to carry, gets its actor's
// bus.Context.StopContext, which ends only with the stop. A handler that
// does not return when its actor is stopped has its call answered with
// bus.ErrActorStopped once the stop gives up on it.
//
// # Errors
//
// A handler's error reaches the caller as it was returned in process, and
// across a link as a *bus.RemoteError with the same code and text; errors.Is
// holds on both. Codes are the bus's (bus.CodeDeadline, bus.CodeNoRoute...),
// rpc's own after gRPC's (CodeInvalidArgument...CodeDataLoss, with a
// sentinel each, as ErrNotFound), and the application's from
// CodeApplication up (Errorf). An application's sentinel error registered
// with bus.Types.RegisterError on both ends matches itself across a link.
// A handler that panics answers CodeInternal and keeps serving; a request
// of the wrong type is answered CodeInvalidArgument; a body that does not
// decode is answered by the bus with bus.ErrBadEnvelope and the link stays.
//
// # Codecs
//
// Across a link a call's request and response are encoded with the link's
// codec (codec/cbor unless the transport was given another), or with the
// one the caller chose with WithCodec, or, for responses, the one the
// handler chose with WithServerCodec. The codec's name travels with the
// message, so the two ends agree without configuration: the handler's
// node decodes with its codec of that name and responds in it. A node
// knows the built-in codecs (cbor on its links, json, raw) from the start;
// any other (codec/proto, your own) it must be given, with WithServerCodec
// on the handler or bus.WithCodecs: a call in a codec the handler's node
// lacks fails with bus.ErrUnknownCodec and the link stays. In process
// nothing is encoded. See docs/codecs.md.
//
//	sum, err := rpc.Call[Sum](ctx, b, "arith.add", Add{1, 2}, rpc.WithCodec(json.Codec))
//
// # Concurrency
//
// A handler runs on its actor: one call at a time per registration, in the
// order each caller sent them. Register a name on several nodes, or several
// times, to serve calls in parallel; the bus places each call.
//
// # Fail modes
//
// A call by name is placed by the bus among the name's instances. When it
// fails for want of its instance, by default it goes to another one if it
// provably never ran there (bus.NeverDelivered, or CodeUnavailable, as a
// server shutting down answers). Per call, or per client with Options:
// Failfast (no retry), Failover(n) (another instance), Failtry(n) (the same
// one again), Failbackup(d) (a hedged second request after d, the loser
// cancelled); Idempotent lets a retry follow a failure after which the call
// may have run. Every retry spends the bus's retry budget
// (bus.Bus.RetryBudget) or the call's own (RetryBudget).
//
// # Graceful shutdown
//
// Handlers registered WithServer(srv), unary and stream ones, stop
// together with srv.Shutdown(ctx): new calls are answered CodeUnavailable
// (and fail over) and new streams ended with it, the calls and streams
// running finish within ctx (then their ctx is cancelled, a stream ended
// CodeUnavailable), and the handlers' actors stop. OnShutdown adds what
// else must finish first.
//
// # Streams
//
// A stream handler serves many streams at once, each on a goroutine of its
// own; a stream is placed once and stays on its instance, counted in its
// load while open. Server streaming: HandleServerStream, and the caller
// ranges over the responses:
//
//	for tick, err := range rpc.CallServerStream[Tick](ctx, b, "prices.watch", Watch{"EUR"}) {
//		if err != nil {
//			return err
//		}
//		use(tick)
//	}
//
// Client streaming: HandleClientStream and OpenClientStream (Send, then
// CloseAndRecv); bidirectional: HandleBidiStream and OpenBidiStream (Send,
// Recv or All, CloseSend). Each direction has its own credit window
// (StreamWindow), so a reader that stops costs bounded memory at both
// ends. The handler's return ends the stream, its error coded as a call's;
// the caller leaving the range, closing, or its ctx ending ends the
// handler's ctx. See docs/streaming.md.
//
// # Interceptors
//
// Calls: a ClientInterceptor wraps a call on the caller's side
// (WithClientInterceptors, per call or in an Options bundle), a
// ServerInterceptor a handler's every call (WithServerInterceptors).
// Streams: a StreamClientInterceptor wraps a caller's stream
// (WithStreamClientInterceptors): it may add metadata, refuse, sees the
// open's error, and sees the stream's end through StreamClientInfo.OnEnd;
// a StreamServerInterceptor wraps each stream of a
// stream handler (WithStreamServerInterceptors): it reads the stream's
// metadata, may refuse it with a coded error before the handler runs, and
// sees the error the stream ends with. The first given is the outermost.
// Call interceptors do not wrap streams, nor stream interceptors calls.
//
// A Server's interceptors wrap every handler registered WithServer(srv),
// each method Register makes included, outside the handler's own:
//
//	srv := rpc.NewServer(b, rpc.ServerInterceptors(auth), rpc.StreamServerInterceptors(streamAuth))
//	rpc.Register(b, "shop", shop, rpc.WithServer(srv))
package rpc
