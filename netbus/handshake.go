package netbus

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/xbus-dev/xbus/bus"
	xcodec "github.com/xbus-dev/xbus/codec"
)

// The handshake opens every connection. The dialer sends its hello, offering
// the highest protocol version it speaks; the acceptor answers with its
// hello, naming the version of the connection: the offer, or the highest it
// speaks if that is lower. Then each sends an auth frame proving it holds
// the shared secret, then a ready frame once it has checked the peer's
// proof. The layout is in docs/wire.md.
//
// handshake is the protocol as a goroutine-free state machine: the driver
// (dialConn/acceptConn) writes what start and feed return and reads bytes
// into feed until done, so every rule is table-tested and fuzzed without a
// socket or a timer.

// Protocol versions this build speaks: 3; 4, which adds the repeat frame
// (repeat.go); and 5, which adds the fence frame (link.Fence). A connection
// speaks one; the writer sends repeat frames only on a connection of
// version 4 or above, fence frames only on one of version 5 or above.
const (
	minVersion    = 3
	maxVersion    = 5
	versionRepeat = 4 // the first with repeat frames
	versionFence  = 5 // the first with fence frames
)

const (
	helloFixed   = 70 // bytes of a hello before the codec name
	maxCodecName = 64
	nonceLen     = 32
	proofLen     = sha256.Size
)

var magic = [4]byte{'X', 'B', 'U', 'S'}

// hello flags
const (
	helloAuth   = 1 << 0 // the sender requires the HMAC proof
	helloDialer = 1 << 1 // the sender opened the connection
	helloMask   = helloAuth | helloDialer
)

// hsConfig is what one end puts in its hello.
type hsConfig struct {
	Node     bus.NodeID
	Codec    string
	Secret   []byte      // empty: no HMAC authentication
	Decode   byte        // compressions this end decodes (compS2<<0 | …): bit0 s2, bit1 zstd
	Compress Compression // what this end sends with, if the peer decodes it
	Dialer   bool
	LinkID   uint64 // dialer: the pooled link this connection belongs to
	Conn     uint8  // dialer: index of this connection in the pool
	Pool     uint8  // dialer: connections in the pool (1..255)
	MaxFrame uint32 // the largest frame payload this end accepts
	Nonce    [nonceLen]byte
	// Version is the highest protocol version this end speaks (minVersion..
	// maxVersion; 0 means maxVersion). A dialer offers it; an acceptor
	// answers with the lower of it and the offer.
	Version uint8
}

// hsResult is what a completed handshake established.
type hsResult struct {
	Peer         bus.NodeID
	LinkID       uint64
	Conn, Pool   uint8
	PeerMaxFrame int
	SendComp     byte   // compression flag to send data frames with (compNone if none agreed)
	Codec        string // the link's codec, agreed from both hellos (codec.Agree)
	Version      uint8  // the connection's protocol version
}

type hsState uint8

const (
	hsHello hsState = iota
	hsAuth
	hsReady
	hsDone
	hsFailed
)

type handshake struct {
	cfg       hsConfig
	state     hsState
	in        []byte // bytes received and not yet consumed
	mine      []byte // our hello, as sent
	theirs    []byte // the peer's hello, as received
	res       hsResult
	peerAuth  bool
	err       error
	maxBuffer int
	// peerVersion is the version byte of the peer's hello once it arrived
	// (0 before): a dialer whose offer an older acceptor refused redials
	// offering it.
	peerVersion uint8
}

func newHandshake(cfg hsConfig) *handshake {
	if cfg.Version == 0 {
		cfg.Version = maxVersion
	}
	return &handshake{cfg: cfg, maxBuffer: helloFixed + maxCodecName + 2*frameHeaderLen + maxAuthPayload + 1 + maxCloseReason}
}

// start returns what to send first: the dialer's hello. The acceptor sends
// nothing first: its hello names the version, which it knows once the
// dialer's offer arrived (feed sends it then, before anything else). A
// node of version 3 checks the version byte for equality, so an acceptor
// that sent its own first would be refused by an older dialer.
func (h *handshake) start() []byte {
	if !h.cfg.Dialer {
		return nil
	}
	return h.hello(h.cfg.Version)
}

// hello returns this end's hello naming version v.
func (h *handshake) hello(v uint8) []byte {
	c := &h.cfg
	b := make([]byte, 0, helloFixed+len(c.Codec))
	b = append(b, magic[:]...)
	var flags byte
	if len(c.Secret) > 0 {
		flags |= helloAuth
	}
	if c.Dialer {
		flags |= helloDialer
	}
	b = append(b, v, flags, c.Decode, c.Pool, c.Conn, byte(len(c.Codec)))
	b = append(b, c.Node[:]...)
	b = binary.BigEndian.AppendUint64(b, c.LinkID)
	b = binary.BigEndian.AppendUint32(b, c.MaxFrame)
	b = append(b, c.Nonce[:]...)
	b = append(b, c.Codec...)
	h.mine = b
	return b
}

// done reports whether the handshake completed; rest returns the bytes
// received after it (the first frames of the connection).
func (h *handshake) done() bool       { return h.state == hsDone }
func (h *handshake) result() hsResult { return h.res }
func (h *handshake) rest() []byte     { return h.in }

// feed consumes bytes received from the peer. It returns bytes to send (it
// may return some together with an error: a close frame telling the peer why
// it is refused; send them, then close). After an error, or once done, feed
// must not be called again.
func (h *handshake) feed(p []byte) (out []byte, err error) {
	if h.state == hsDone || h.state == hsFailed {
		return nil, fmt.Errorf("%w: feed after the end", ErrHandshake)
	}
	h.in = append(h.in, p...)
	for {
		var progressed bool
		out, progressed, err = h.step(out)
		if err != nil {
			h.state, h.err = hsFailed, err
			if !isRejection(err) {
				out = h.appendRefusal(out, err)
			}
			return out, err
		}
		if !progressed || h.state == hsDone {
			if h.state != hsDone && len(h.in) > h.maxBuffer {
				// Unreachable with a well-formed peer: every message is bounded.
				err = fmt.Errorf("%w: %d bytes buffered", ErrHandshake, len(h.in))
				h.state, h.err = hsFailed, err
				return h.appendRefusal(out, err), err
			}
			return out, nil
		}
	}
}

// appendRefusal appends the close frame refusing the peer for err. An
// acceptor refusing before its hello went out sends its hello first, so
// that the dialer reads the close frame after a hello, as from any node.
func (h *handshake) appendRefusal(out []byte, err error) []byte {
	if h.mine == nil {
		out = append(out, h.hello(h.answer())...)
	}
	return appendCloseFrame(out, err)
}

// isRejection reports whether err is the peer's refusal (which needs no close
// frame in answer).
func isRejection(err error) bool { return errors.Is(err, ErrRejected) }

// step makes at most one transition.
func (h *handshake) step(out []byte) ([]byte, bool, error) {
	switch h.state {
	case hsHello:
		// Check the magic and version byte by byte as they arrive, so a peer
		// speaking another protocol is refused at once.
		for i := 0; i < len(h.in) && i < len(magic); i++ {
			if h.in[i] != magic[i] {
				return out, false, fmt.Errorf("%w: got % x", ErrBadMagic, h.in[:min(len(h.in), 4)])
			}
		}
		if len(h.in) > 4 && h.peerVersion == 0 {
			v := h.in[4]
			if err := h.checkVersion(v); err != nil {
				return out, false, err
			}
			h.peerVersion = v
		}
		if len(h.in) < 10 {
			return out, false, nil
		}
		n := helloFixed + int(h.in[9])
		if len(h.in) < n {
			return out, false, nil
		}
		if err := h.parseHello(h.in[:n]); err != nil {
			// A hello is the peer's configuration: sent again, it breaks
			// the same rule.
			return out, false, refused(err)
		}
		h.theirs = append([]byte(nil), h.in[:n]...)
		h.in = h.in[n:]
		if !h.cfg.Dialer {
			out = append(out, h.hello(h.res.Version)...)
		}
		proof := h.proof(h.cfg.Dialer)
		out = appendFrameHeader(out, frameAuth, 0, len(proof))
		out = append(out, proof...)
		h.state = hsAuth
		return out, true, nil
	case hsAuth, hsReady:
		if len(h.in) < frameHeaderLen {
			return out, false, nil
		}
		typ, flags, n, err := parseFrameHeader(h.in, 1+closeCountLen+maxCloseReason)
		if err != nil {
			return out, false, fmt.Errorf("%w: %w", ErrHandshake, err)
		}
		if len(h.in) < frameHeaderLen+n {
			return out, false, nil
		}
		payload := h.in[frameHeaderLen : frameHeaderLen+n]
		want := frameAuth
		if h.state == hsReady {
			want = frameReady
		}
		switch typ {
		case frameClose:
			_, _, reason := parseClose(flags, payload)
			return out, false, reason
		case want:
		default:
			return out, false, fmt.Errorf("%w: frame type %d while waiting for %d", ErrHandshake, typ, want)
		}
		if h.state == hsAuth {
			if len(h.cfg.Secret) > 0 && !hmac.Equal(payload, h.proof(!h.cfg.Dialer)) {
				return out, false, fmt.Errorf("%w: the peer's proof does not match this node's secret", ErrAuth)
			}
			out = appendFrameHeader(out, frameReady, 0, 0)
			h.state = hsReady
		} else {
			h.state = hsDone
		}
		h.in = h.in[frameHeaderLen+n:]
		return out, true, nil
	}
	return out, false, fmt.Errorf("%w: state %d", ErrHandshake, h.state)
}

// checkVersion checks the version byte of the peer's hello. An acceptor
// takes any offer from minVersion up (a newer dialer speaks the older
// versions too, and falls back to the one answered); a dialer takes an
// answer from minVersion up to its own offer.
func (h *handshake) checkVersion(v uint8) error {
	if v < minVersion || h.cfg.Dialer && v > h.cfg.Version {
		return fmt.Errorf("%w: peer speaks version %d, this node %d to %d", ErrVersion, v, minVersion, h.cfg.Version)
	}
	return nil
}

// answer returns the connection's version: the lower of this end's highest
// and the peer's hello's (the dialer's offer, or the acceptor's answer). An
// acceptor refusing a hello whose version it has not read, or one below
// minVersion, names its own highest.
func (h *handshake) answer() uint8 {
	if h.peerVersion == 0 {
		return h.cfg.Version
	}
	return min(h.peerVersion, h.cfg.Version)
}

func (h *handshake) parseHello(b []byte) error {
	flags, decode, pool, conn, nameLen := b[5], b[6], b[7], b[8], int(b[9])
	var peer bus.NodeID
	copy(peer[:], b[10:26])
	linkID := binary.BigEndian.Uint64(b[26:34])
	maxFrame := binary.BigEndian.Uint32(b[34:38])
	codec := string(b[helloFixed:])
	agreed, codecOK := xcodec.Agree(h.cfg.Codec, codec, h.cfg.Dialer)
	switch {
	case flags&^helloMask != 0:
		return fmt.Errorf("%w: unknown hello flags %#x", ErrHandshake, flags)
	case decode&^compMask != 0:
		return fmt.Errorf("%w: unknown compressions %#x", ErrHandshake, decode)
	case nameLen == 0 || nameLen > maxCodecName:
		return fmt.Errorf("%w: codec name of %d bytes", ErrHandshake, nameLen)
	case peer.IsZero():
		return fmt.Errorf("%w: zero node id", ErrHandshake)
	case peer == h.cfg.Node:
		return fmt.Errorf("%w: connected to itself (node %s)", ErrHandshake, peer.Short())
	case maxFrame < minMaxFrame:
		return fmt.Errorf("%w: max frame %d below %d", ErrHandshake, maxFrame, minMaxFrame)
	case (flags&helloDialer != 0) == h.cfg.Dialer:
		return fmt.Errorf("%w: both ends claim the same role", ErrHandshake)
	case !codecOK:
		return fmt.Errorf("%w: peer uses %q, this node %q, and neither has the other's (each has its own, cbor, json and raw)", ErrCodecMismatch, codec, h.cfg.Codec)
	case (flags&helloAuth != 0) != (len(h.cfg.Secret) > 0):
		if len(h.cfg.Secret) > 0 {
			return fmt.Errorf("%w: peer has no shared secret", ErrAuth)
		}
		return fmt.Errorf("%w: peer requires a shared secret and this node has none", ErrAuth)
	}
	if h.cfg.Dialer {
		pool, conn, linkID = h.cfg.Pool, h.cfg.Conn, h.cfg.LinkID
	} else if pool == 0 || conn >= pool {
		return fmt.Errorf("%w: connection %d of a pool of %d", ErrHandshake, conn, pool)
	}
	h.res = hsResult{Peer: peer, LinkID: linkID, Conn: conn, Pool: pool, PeerMaxFrame: int(maxFrame), Codec: agreed, Version: h.answer()}
	if f := h.cfg.Compress.flag(); f != compNone && decode&f != 0 {
		h.res.SendComp = f
	}
	return nil
}

// proof is the HMAC-SHA256, keyed with the shared secret, of a label naming
// the prover's role and both hellos (dialer's first). Each hello carries a
// fresh random nonce, so a proof is good for one connection only (no replay),
// and the role label stops a peer from reflecting our own proof back to us.
// Without a secret the proof is empty.
func (h *handshake) proof(dialer bool) []byte {
	if len(h.cfg.Secret) == 0 {
		return nil
	}
	m := hmac.New(sha256.New, h.cfg.Secret)
	d, a := h.mine, h.theirs
	if !h.cfg.Dialer {
		d, a = a, d
	}
	if dialer {
		m.Write([]byte("xbus-netbus-v1 dialer"))
	} else {
		m.Write([]byte("xbus-netbus-v1 acceptor"))
	}
	m.Write(d)
	m.Write(a)
	return m.Sum(nil)
}
