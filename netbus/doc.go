// Package netbus carries the bus between processes and hosts over TCP or
// Unix sockets (one implementation for both).
//
// A Transport plugs into a bus with bus.WithTransport and serves the "tcp"
// and "unix" schemes. It listens on the addresses in Config.Listen. The bus
// dials: bus.Connect (or bus.WithPeers, or Config.Peers, which the transport
// hands to the bus) keeps an address linked, dialing it through Dial and
// again with exponential backoff and jitter whenever the link drops or a
// dial fails; the transport itself never redials. Each link is reported to
// the bus, which then exchanges with the peer the names and subscriptions
// both host: from then on Tell, Ask and Subscribe reach actors on the other
// node with the same calls as in process.
//
//	tr := netbus.New(netbus.Config{
//		Listen: []string{"tcp://0.0.0.0:7400"},
//		Secret: []byte(os.Getenv("XBUS_SECRET")),
//	})
//	b, err := bus.New(bus.WithName("billing"), bus.WithTransport(tr),
//		bus.WithPeers("tcp://orders.internal:7400"))
//	...
//	sum, err := bus.AskAs[Sum](ctx, b, "add", Add{1, 2}) // "add" may live on the peer
//
// # Connections
//
// A connection starts with a handshake: magic and protocol version (the
// dialer offers the highest it speaks, the acceptor answers with the lower
// of that and its own, and the connection speaks the answer; a node of
// version 3, which refuses any other, is dialed again offering 3, so nodes
// of both versions link during a rolling upgrade), node id,
// the name of the body codec each end prefers (from which both compute the
// link's: the same name, else the acceptor's when it is built in, else the
// dialer's when it is; docs/codecs.md), the compressions each end decodes, and a
// shared-secret HMAC challenge/response in which both ends prove they hold
// Config.Secret without sending it (each proof covers both hellos and their
// fresh nonces, so it cannot be replayed or reflected). Optional TLS
// (Config.TLS, with client certificates for mutual authentication) runs
// underneath. A peer that fails any check is refused with a close frame that
// names the reason; nothing it sends reaches the bus. A refusal retrying
// cannot heal (wrong secret, version, two codecs neither end has of the
// other's, a hello that breaks the rules,
// a TLS certificate refused) wraps bus.ErrRefused on both ends: Dial returns
// it at once, the bus stops dialing that address, and each end logs it at Warn.
//
// After the handshake a connection carries length-prefixed frames: data
// (one binary envelope, compressed with S2 or Zstd above Config.CompressMin
// when both ends agree), repeat frames on a connection of version 4 (the
// body of a tell whose envelope header is the one of the frame before it,
// so a stream of tells from one sender to one actor sends its header once
// per write), fence frames on a pooled link of version 5 (one per
// connection as the bus moves a peer off a link and marks the new one: the
// receiver hands over what follows on any connection only once every
// connection's has arrived, so the old link's fence follows, and the new
// link's mark precedes, every sender's messages), pings, and a close
// frame with a reason. Frames over
// Config.MaxFrameSize, payloads that decompress past Config.MaxDecompressed,
// and an envelope header that does not decode close that link with a clear
// error; every other link keeps going. A body is the bus's to decode: one
// that does not decode fails only its message. Memory follows the bytes that
// arrive, not what a peer announces: a frame's buffer grows as its bytes
// come in, and the buffers and zstd decoders a large frame needed are let go
// after it. docs/wire.md specifies every byte.
//
// Each connection has one writer goroutine: a tell or publish with a body
// of up to 8 KiB is encoded straight into the connection's queue under a
// short lock (an ask or reply, a larger frame, one to compress or one that
// must wait for room is encoded before it) and the sender kicks the writer,
// which writes everything queued in one call, so a busy connection makes
// one syscall per batch and an idle one flushes at once. A lone ask or
// reply on a quiet link (no other call in flight) skips the hand-off: its
// sender writes it with one non-blocking write and leaves any rest to the
// writer, which saves two goroutine wake-ups per round trip (on Unix, over a
// plain socket; under TLS or elsewhere every frame goes through the writer).
// A reader goroutine
// decodes frames and hands them to the bus in order, the frames its buffer
// already holds whole together (bus.BatchHost), never waiting to fill a
// batch. Pings flow when a
// connection has been quiet for Config.HeartbeatInterval, or its reader read
// data frames since the last one (a ping acknowledges them); a peer silent for
// Config.IdleTimeout is declared dead.
//
// # Links and failure
//
// A link is Config.PoolSize connections to one peer, all of whose
// handshakes agreed on one codec (else the link is refused with
// ErrHandshake). The messages of one
// sender (its Ref, or for a message from outside any actor, its destination)
// always take the same connection, so per-sender order holds. The pool
// lives and dies as one: when any of its connections fails, the link
// closes; each writer hands back the asks it never wrote, and, when the
// peer closed first, those it wrote past the count in the peer's close
// frame (the peer never read them); the bus places them again on another
// instance of their name, then hears
// LinkDown and fails every other ask waiting on that peer with
// bus.ErrPeerGone, well before their deadlines. The bus then
// redials an address it keeps; replies that were in flight are not replayed.
// A peer's graceful close is not a failure: it sends a close frame on each
// connection after what it queued there, and every connection is read up to
// its close frame, so what was sent before the close arrives.
//
// Every tell or publish Send accepted that the peer did not hand to its bus
// is handed back with Host.Undelivered, which counts it as a dead letter, so
// none goes uncounted. A close frame, whichever end sends it first, says
// how many data frames its sender handed over on that connection, the last
// it ever will, and the other end answers with its own: so when either node
// closes a link, or shuts down mid-stream, the frames past the peer's count
// are handed back exactly. When a connection breaks instead, the frames the
// socket never took whole (still queued, or cut short by the failing write)
// are handed back at once, exactly; those it took whole and the peer did not
// acknowledge in a ping are in doubt. Each end keeps a record of the broken
// connection, and when the two nodes link again they exchange their read
// counts (a settle frame), which settles those exactly too. A peer that does
// not link again within Config.SettleTimeout leaves them in doubt: they are
// handed back with ErrInDoubt, the peer may have processed them, and then
// they are counted twice (docs/wire.md, "2.5 What a closing or broken link
// loses"). A sender waits when 65,536 data frames of a connection are
// unacknowledged.
//
// Close stops listening, ends dials in progress, tells every peer it is
// shutting down, and waits for all of the transport's goroutines.
package netbus
