package codec

import (
	"github.com/xbus-dev/xbus/bus"
	"github.com/xbus-dev/xbus/codec/cbor"
	"github.com/xbus-dev/xbus/codec/json"
	"github.com/xbus-dev/xbus/codec/raw"
)

// Binary returns the default codec for bodies that cross a process boundary:
// CBOR with default limits.
func Binary() bus.Codec { return cbor.Default() }

// JSON is the encoding/json codec, json.Codec (bus.JSON).
var JSON bus.Codec = json.Codec

// Raw is the codec of bodies that are bytes already, raw.Codec.
var Raw bus.Codec = raw.Codec

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

// All returns the built-in codecs: the default (CBOR), JSON and raw. Give
// them to a bus with bus.WithCodecs(codec.All()...) to decode a message in
// any of them.
func All() []bus.Codec { return []bus.Codec{Binary(), JSON, Raw} }
