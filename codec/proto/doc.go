// Package proto is the body codec for protocol buffers: a message that is a
// proto.Message (a pointer to a type protoc-gen-go generated) travels in
// its protobuf binary form, so a service can exchange the messages it
// already has a schema for, and a non-Go peer can read them.
//
// A node decodes a body in this codec only when it knows it: give it to
// the bus (bus.WithCodecs(proto.Codec)) or to the handler
// (rpc.WithServerCodec(proto.Codec)); a caller's bus learns it from
// rpc.WithCodec. A typed rpc call whose request and response are protobuf
// messages chooses it on both ends, and then registers their types by
// protobuf's rules rather than the bus's (Codec is a bus.TypeChecker: a
// generated message's unexported fields are the library's own):
//
//	rpc.Handle(b, "orders.place", place, rpc.WithServerCodec(proto.Codec))
//	receipt, err := rpc.Call[*pb.Receipt](ctx, b, "orders.place", &pb.Order{Id: 7}, rpc.WithCodec(proto.Codec))
//
// Only proto.Message values encode; anything else is an error wrapping
// bus.ErrUnsupported. Decoding treats its input as hostile: malformed
// bytes, a wrong wire type, a length past the end, nesting deeper than
// protobuf's recursion limit (10,000) are errors, never panics, and nothing
// is allocated beyond what the input holds. Unknown fields are kept, as
// protobuf does, so a newer sender's fields survive a relay.
//
// This package is a module of its own, so that google.golang.org/protobuf
// is a dependency only of programs that use it (DEPENDENCIES.md).
package proto
