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

// Agree returns the name of the codec a link uses when its ends prefer the
// codecs named own (this end's) and peer: that name when they are equal;
// else the acceptor's, when the dialer has it (it is built in: "cbor",
// "json", "raw"); else the dialer's, when the acceptor has it. Both ends
// compute the same name from the two, so they agree without another
// message. ok is false when neither end has the other's codec.
func Agree(own, peer string, dialer bool) (name string, ok bool) {
	if own == peer {
		return own, true
	}
	acceptor, dial := own, peer
	if dialer {
		acceptor, dial = peer, own
	}
	if _, ok := ByName(acceptor); ok {
		return acceptor, true
	}
	if _, ok := ByName(dial); ok {
		return dial, true
	}
	return "", false
}

// RegisterBuiltins gives h the built-in codecs and own (a transport's
// Config.Codec) when h registers codecs, as a *bus.Bus does
// (RegisterCodec), so that a message in any of them decodes there
// whatever codec its link agreed on. A name h holds for another codec
// keeps it.
func RegisterBuiltins(h bus.Host, own bus.Codec) {
	r, ok := h.(interface{ RegisterCodec(bus.Codec) error })
	if !ok {
		return
	}
	for _, c := range All() {
		_ = r.RegisterCodec(c)
	}
	if own != nil {
		_ = r.RegisterCodec(own)
	}
}

// All returns the built-in codecs: the default (CBOR), JSON and raw. Give
// them to a bus with bus.WithCodecs(codec.All()...) to decode a message in
// any of them.
func All() []bus.Codec { return []bus.Codec{Binary(), JSON, Raw} }
