package shmbus

import (
	"encoding/binary"
	"fmt"
	"math"
	"time"

	"github.com/xbus-dev/xbus/bus"
	"github.com/xbus-dev/xbus/codec"
)

// hello is what each side sends, with its segment's fd, right after
// connecting. Layout (little endian):
//
//	0  magic    [8]byte "xbusshm1"
//	8  version  uint32
//	12 ringSize uint32
//	16 node     [16]byte
//	32 timeout  uint32  milliseconds of heartbeat silence after which the
//	                    sender declares its peer gone; 0 for never
//	36 codecLen uint8, codec name [32]byte
type hello struct {
	version  uint32
	ringSize uint32
	node     bus.NodeID
	timeout  time.Duration // 0: none
	codec    string
}

const (
	helloLen   = 69
	helloFixed = 12 // magic and version: what any version's hello starts with
)

func (h *hello) marshal() [helloLen]byte {
	var b [helloLen]byte
	copy(b[0:8], segMagic)
	binary.LittleEndian.PutUint32(b[8:], h.version)
	binary.LittleEndian.PutUint32(b[12:], h.ringSize)
	copy(b[16:32], h.node[:])
	ms := uint32(min(max(h.timeout.Milliseconds(), 0), math.MaxUint32))
	binary.LittleEndian.PutUint32(b[32:], ms)
	b[36] = byte(len(h.codec))
	copy(b[37:], h.codec)
	return b
}

// parseHello decodes the n bytes of a peer's hello. A version other than
// ours is a refusal (ErrPeerRefused), checked before the length: a hello of
// another version may have another length.
func parseHello(b []byte) (hello, error) {
	var h hello
	if len(b) < helloFixed || string(b[0:8]) != segMagic {
		return h, fmt.Errorf("%w: the peer's hello (%d bytes) does not start with %q", ErrHandshake, len(b), segMagic)
	}
	if h.version = binary.LittleEndian.Uint32(b[8:]); h.version != segVersion {
		return h, fmt.Errorf("%w: the peer speaks protocol version %d, this process %d", ErrPeerRefused, h.version, segVersion)
	}
	if len(b) != helloLen {
		return h, fmt.Errorf("%w: hello of %d bytes, want %d", ErrHandshake, len(b), helloLen)
	}
	h.ringSize = binary.LittleEndian.Uint32(b[12:])
	copy(h.node[:], b[16:32])
	h.timeout = time.Duration(binary.LittleEndian.Uint32(b[32:])) * time.Millisecond
	if n := int(b[36]); n > 32 {
		return h, fmt.Errorf("%w: codec name of %d bytes, at most 32", ErrHandshake, n)
	}
	h.codec = string(b[37 : 37+int(b[36])])
	return h, nil
}

// accept checks a peer's hello against ours and returns the name of the
// codec the link uses, the one both ends compute (codec.Agree; dialer
// says whether this end dialed). What must match is a refusal when it
// does not (ErrPeerRefused); a node id or timeout that cannot be is a
// failed handshake.
func (ours *hello) accept(peer *hello, dialer bool) (codecName string, err error) {
	codecName, agreed := codec.Agree(ours.codec, peer.codec, dialer)
	switch {
	case peer.ringSize != ours.ringSize:
		return "", fmt.Errorf("%w: the peer's ring size is %d bytes, this process's %d (Config.RingSize must match)", ErrPeerRefused, peer.ringSize, ours.ringSize)
	case !agreed:
		return "", fmt.Errorf("%w: the peer's codec is %q, this process's %q, and neither has the other's (each has its own, cbor, json and raw)", ErrPeerRefused, peer.codec, ours.codec)
	case peer.node.IsZero() || peer.node == ours.node:
		return "", fmt.Errorf("%w: bad peer node id %s", ErrHandshake, peer.node)
	case peer.timeout != 0 && peer.timeout < MinPeerTimeout:
		return "", fmt.Errorf("%w: the peer's timeout of %v is under the minimum %v", ErrHandshake, peer.timeout, MinPeerTimeout)
	}
	return codecName, nil
}
