// Package json is the body codec of encoding/json: readable and needing
// nothing outside the standard library, slower and larger than the default
// binary codec (codec/cbor; docs/performance.md has the ratios). Use it
// where a person or a non-Go program reads the bodies:
//
//	sum, err := rpc.Call[Sum](ctx, b, "arith.add", Add{1, 2}, rpc.WithCodec(json.Codec))
//
// Every bus knows it without being told (it is bus.JSON), so a message in
// JSON decodes on any node. Structs travel as objects keyed by field name
// (json tags rename), so a receiver with an older or newer version of a
// struct decodes what it knows and ignores the rest. Decoding treats its
// input as hostile: a malformed body is an error, never a panic, and
// encoding/json bounds nesting at 10,000 levels.
package json

import "github.com/xbus-dev/xbus/bus"

// Codec encodes bodies as JSON. It is bus.JSON.
var Codec bus.Codec = bus.JSON
