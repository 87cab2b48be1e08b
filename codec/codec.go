package codec

import (
	"github.com/xbus-dev/xbus/bus"
	"github.com/xbus-dev/xbus/codec/cbor"
)

// Binary returns the default codec for bodies that cross a process boundary:
// CBOR with default limits.
func Binary() bus.Codec { return cbor.Default() }

// JSON is the encoding/json codec, bus.JSON.
var JSON bus.Codec = bus.JSON

// ByName returns the built-in codec called name ("cbor", "json", "raw"), for
// a transport that negotiates its codec by name in a handshake.
func ByName(name string) (bus.Codec, bool) {
	switch name {
	case "cbor":
		return Binary(), true
	case "json":
		return JSON, true
	case "raw":
		return Raw, true
	}
	return nil, false
}
