// Package codec holds the codecs that encode message bodies when they leave
// the process; in-process delivery never encodes. A transport is configured
// with one bus.Codec (Link.Codec), and the bus encodes and decodes bodies
// with it through bus.Types.EncodeBody and DecodeBody:
//
//	body, err := types.EncodeBody(codec.Binary(), env, buf[:0])
//
// Binary returns the default, CBOR (package codec/cbor), chosen over
// MessagePack by measurement: see DEPENDENCIES.md. JSON is readable and needs
// only the standard library. Raw carries []byte and string bodies as they
// are. Any type with the three methods of bus.Codec is a codec too.
package codec
