// Package raw is the body codec for messages that are bytes already: a
// []byte or a string travels as it is, with no framing and no type
// information beyond the envelope's type name. Use it for payloads your
// program encodes itself (an image, a file, another format's message):
//
//	reply, err := b.Ask(bus.WithCodec(ctx, raw.Codec), "thumbnail", pngBytes)
//
// Any other type is refused with an error wrapping bus.ErrUnsupported,
// when it is sent (a typed rpc call with raw.Codec must carry []byte or
// string). Decoding cannot fail on any input: every byte string is a valid
// body.
package raw
