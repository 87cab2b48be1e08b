package netbus

import (
	"crypto/tls"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/xbus-dev/xbus/bus"
	"github.com/xbus-dev/xbus/codec"
)

// Config configures a Transport. The zero value is valid: a transport that
// listens nowhere and dials only when asked, without authentication or
// compression, using codec.Binary() for bodies.
type Config struct {
	// Listen lists the addresses to accept links on: "host:port" or
	// "tcp://host:port" for TCP, "unix:///path" or "unix:path" for a Unix
	// socket (same protocol). Port 0 picks a free port; Addrs reports it.
	// A Unix socket file that a dead process left (nobody accepts on it) is
	// replaced; Close removes the file. Empty: accept nothing.
	Listen []string
	// Peers lists addresses the bus keeps linked from Start on: the
	// transport hands each to bus.Host.Connect, and the bus dials it and
	// redials it with backoff and jitter whenever the link drops (see
	// bus.Connect, bus.WithBackoff). Same forms as Listen.
	Peers []string
	// Secret is the shared secret of the HMAC challenge/response. Both ends
	// must hold the same one; it never crosses the wire. Empty: no HMAC
	// authentication, and peers that require it are refused.
	Secret []byte
	// TLS, when set, wraps every connection in TLS: the server side with it
	// for accepted connections, the client side for dialed ones (ServerName
	// defaults to the dialed host). For mutual TLS set Certificates, RootCAs,
	// ClientCAs and ClientAuth: tls.RequireAndVerifyClientCert. Nil: plain
	// sockets.
	TLS *tls.Config
	// Codec is the body codec this node prefers for its links. The
	// handshake agrees on one per link (codec.Agree): this one when the
	// peer names it too; else the acceptor's when it is built in (cbor,
	// json, raw), else the dialer's when it is; two codecs of their own
	// that differ are refused (ErrCodecMismatch). The bus is given it and
	// the built-in ones (RegisterCodec), so a message in any of them
	// decodes here. Nil: codec.Binary().
	Codec bus.Codec
	// Compression is what this node compresses data frames with, when the
	// peer can decode it (every netbus node decodes S2 and Zstd). Zero: none.
	Compression Compression
	// CompressMin is the smallest frame, in bytes, that gets compressed.
	// Zero: 1024.
	CompressMin int
	// MaxFrameSize is the largest frame payload this node accepts (announced
	// in the handshake; a larger frame closes the link). Zero: 16 MiB.
	MaxFrameSize int
	// MaxDecompressed is the largest payload a compressed frame may expand
	// to. Zero: 4 × MaxFrameSize.
	MaxDecompressed int
	// PoolSize is the number of connections per dialed link. Messages of one
	// sender always use the same connection, so per-sender order holds.
	// Zero: 1. At most 255.
	PoolSize int
	// HandshakeTimeout bounds connecting, the TLS and the xbus handshakes.
	// Zero: 10s.
	HandshakeTimeout time.Duration
	// HeartbeatInterval is how often a connection that has sent nothing else
	// sends a ping. Zero: 2s.
	HeartbeatInterval time.Duration
	// IdleTimeout closes a link whose peer sent nothing (not even a ping), or
	// took nothing we wrote, for this long. Zero: 3 × HeartbeatInterval.
	IdleTimeout time.Duration
	// MaxQueued is how many encoded bytes may wait for a connection's writer
	// before Send blocks (until its ctx ends). Zero: 256 KiB, which keeps
	// the writer's two queue buffers in the processor's cache while senders
	// outpace the peer (docs/performance.md, "Why netbus queues 256 KiB").
	MaxQueued int
	// SettleTimeout is how long the tells and publishes a broken connection
	// left in doubt (written, never acknowledged) wait for the peer to link
	// again and say which it read; then they are handed back in doubt
	// (ErrInDoubt). Zero: 10s. Negative: at once, and this end keeps no
	// record for the peer to settle with either (docs/wire.md, 2.5).
	SettleTimeout time.Duration
}

func (c Config) withDefaults() (Config, error) {
	if c.Codec == nil {
		c.Codec = codec.Binary()
	}
	if n := len(c.Codec.Name()); n == 0 || n > maxCodecName {
		return c, fmt.Errorf("netbus: codec name must be 1..%d bytes, got %q", maxCodecName, c.Codec.Name())
	}
	if c.Compression > Zstd {
		return c, fmt.Errorf("netbus: unknown compression %d", c.Compression)
	}
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	defD := func(v *time.Duration, d time.Duration) {
		if *v == 0 {
			*v = d
		}
	}
	def(&c.CompressMin, 1024)
	def(&c.MaxFrameSize, 16<<20)
	def(&c.MaxDecompressed, 4*c.MaxFrameSize)
	def(&c.PoolSize, 1)
	def(&c.MaxQueued, 256<<10)
	defD(&c.HandshakeTimeout, 10*time.Second)
	defD(&c.HeartbeatInterval, 2*time.Second)
	defD(&c.IdleTimeout, 3*c.HeartbeatInterval)
	defD(&c.SettleTimeout, 10*time.Second)
	switch {
	case c.MaxFrameSize < minMaxFrame || c.MaxFrameSize > 1<<31-1:
		return c, fmt.Errorf("netbus: MaxFrameSize must be %d..%d, got %d", minMaxFrame, 1<<31-1, c.MaxFrameSize)
	case c.MaxDecompressed < c.MaxFrameSize:
		return c, fmt.Errorf("netbus: MaxDecompressed %d is below MaxFrameSize %d", c.MaxDecompressed, c.MaxFrameSize)
	case c.PoolSize < 1 || c.PoolSize > 255:
		return c, fmt.Errorf("netbus: PoolSize must be 1..255, got %d", c.PoolSize)
	case c.IdleTimeout <= c.HeartbeatInterval:
		return c, fmt.Errorf("netbus: IdleTimeout %v must exceed HeartbeatInterval %v", c.IdleTimeout, c.HeartbeatInterval)
	case c.MaxQueued < 0 || c.CompressMin < 0:
		return c, fmt.Errorf("netbus: negative MaxQueued or CompressMin")
	}
	for _, a := range append(append([]string(nil), c.Listen...), c.Peers...) {
		if _, _, err := parseAddr(a); err != nil {
			return c, err
		}
	}
	return c, nil
}

// parseAddr splits an address into a network ("tcp" or "unix") and the
// address for net.Dial/net.Listen.
func parseAddr(s string) (network, addr string, err error) {
	switch {
	case strings.HasPrefix(s, "unix://"):
		network, addr = "unix", strings.TrimPrefix(s, "unix://")
	case strings.HasPrefix(s, "unix:"):
		network, addr = "unix", strings.TrimPrefix(s, "unix:")
	case strings.HasPrefix(s, "tcp://"):
		network, addr = "tcp", strings.TrimPrefix(s, "tcp://")
	default:
		network, addr = "tcp", s
	}
	if addr == "" {
		return "", "", fmt.Errorf("netbus: empty address in %q", s)
	}
	if network == "tcp" {
		if _, _, err := net.SplitHostPort(addr); err != nil {
			return "", "", fmt.Errorf("netbus: address %q: %v", s, err)
		}
	}
	return network, addr, nil
}

// formatAddr is the inverse of parseAddr.
func formatAddr(a net.Addr) string {
	if a.Network() == "unix" {
		return "unix://" + a.String()
	}
	return "tcp://" + a.String()
}
