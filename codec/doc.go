// Package codec holds the codecs that encode message bodies when they leave
// the process; in-process delivery never encodes. Each link has a codec of
// its own (Link.Codec: agreed in the handshake from the codec each end's
// transport is configured with, Binary by default; see Agree),
// and a message may be sent in another (bus.WithCodec, rpc.WithCodec), whose
// name then travels with it so the receiver decodes it alike. The bus
// encodes and decodes bodies through bus.Types.EncodeBody and DecodeBody:
//
//	body, err := types.EncodeBody(codec.Binary(), env, buf[:0])
//
// Binary returns the default, CBOR (package codec/cbor), chosen over
// MessagePack by measurement: see DEPENDENCIES.md. JSON (codec/json) is
// readable and needs only the standard library. Raw (codec/raw) carries
// []byte and string bodies as they are. Protobuf messages have codec/proto,
// a module of its own. Any type with the three methods of bus.Codec is a
// codec too: docs/codecs.md says what each is for, how the ends agree and
// how to write one.
package codec
