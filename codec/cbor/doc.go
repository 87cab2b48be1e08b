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
// A flat struct (exported, untagged fields of bool, integer, float, string
// and []byte types, and no marshaling methods), or a pointer to one, is
// encoded and decoded by a plan made once per type instead of by
// reflection on every value: the same bytes out, and the same value in. A
// body the plan does not expect (keys in another case, a null, a float of
// another width, an unknown or repeated field...) goes to the general
// decoder, which decides. A plan takes the values it decodes several to an
// allocation, so a value the receiver keeps keeps a few hundred bytes
// alive, and a short string field may share its bytes with the same value
// decoded before (strings are immutable); no value is handed out twice.
//
// Decoding treats its input as hostile. The general decoder checks the
// whole body to be well-formed before it allocates anything, and a plan
// checks each length against the bytes left before it allocates, so a
// length can never claim more elements than the body holds bytes; nesting,
// array and map sizes are bounded (see Limits); trailing bytes after the
// value are an error.
package cbor
