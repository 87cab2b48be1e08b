// Package cbor is the CBOR (RFC 8949) body codec, built on
// github.com/fxamacker/cbor/v2. It is xbus's default binary codec: see
// codec.Binary.
//
// Structs encode as maps keyed by field name (a `cbor:"name"` or
// `json:"name"` tag renames a field, as encoding/json does), so a receiver
// built from an older or newer version of a struct decodes what it knows and
// ignores the rest. time.Time travels as RFC 3339 text with nanoseconds; Go
// strings travel as CBOR text and may hold any bytes, valid UTF-8 or not; a
// map inside an interface value decodes as map[string]any.
//
// Decoding treats its input as hostile. The whole body is checked to be
// well-formed before anything is allocated, so a length can never claim more
// elements than the body holds bytes; nesting, array and map sizes are
// bounded (see Limits); trailing bytes after the value are an error.
package cbor
