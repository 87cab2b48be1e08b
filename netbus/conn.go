package netbus

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/xbus-dev/xbus/bus"
)

// conn is one socket of a link, after its handshake.
//
// Goroutines: a reader (reads frames, hands envelopes to the link) and a
// writer (writes what senders queued, sends heartbeats, watches for an idle
// peer). Senders encode a frame outside any lock, then append it to out under
// mu and kick the writer. The writer swaps out for its spare buffer under mu
// and writes the whole batch with one call, without the lock: frames queued
// while it writes go out in the next batch, so the socket is flushed exactly
// when the queue runs dry. The exception is a lone ask or reply on a quiet
// link, which its sender writes itself (writeNow); the writing flag keeps
// that write and the writer's from overlapping.
//
// Acknowledgements: the reader counts the data frames it read (dataIn) and
// the writer sends that count in a ping on each heartbeat tick it moved,
// and as soon as it moved by ackEvery. The sending side keeps, in order, one
// bit per data frame queued (ring: whether it is a tell or a publish) and
// three sequence numbers: queued (sent), written whole to the socket
// (wrote) and acknowledged by the peer (acked).
//
// Closing: each end sends one close frame carrying how many data frames it
// handed to its node on this connection; it hands over none after that
// (stopped). The end that closes first flushes its queue, sends its close
// frame and reads on, discarding, to the peer's; the peer drops its queue,
// reads on to the close frame and answers with its own. Each end then hands
// back, exactly, every tell or publish it sent past the peer's count. When
// no count arrives (the connection broke), those past the last
// acknowledgement are handed back as in doubt.
type conn struct {
	l   *link
	id  connID // the same on both ends
	nc  net.Conn
	res hsResult
	br  io.Reader // handshake leftovers, then nc, buffered

	raw     syscall.RawConn // the socket's file descriptor; nil for TLS
	writeFD func(fd uintptr) bool
	direct  directWrite // owned by the sender that set writing

	mu      sync.Mutex // guards the fields below
	out     []byte     // frames waiting for the writer
	skip    int        // bytes at out's front ending a frame writeNow began
	writing bool       // a write is under way (the writer's or a sender's)
	kicked  bool       // queue kicked the writer, which has not taken out since
	closed  bool       // no more frames are accepted; the writer ends the connection
	fenced  bool       // frames sent unfenced are refused (link.Fence)
	ending  ending     // how, once closed
	why     error      // why, once closed
	space   chan struct{}

	ring      []uint64 // ackRing bits: data frame seq is a tell or a publish
	asks      askRing  // the asks among the data frames not acknowledged
	sent      uint64   // data frames queued (or written at once)
	wrote     uint64   // of those, written whole to the socket
	acked     uint64   // of those, acknowledged by the peer
	queuedOut int      // data frames whose last byte is in out
	peerRead  uint64   // the peer's count in its close frame, if peerSaid
	peerSaid  bool
	rep       bool         // the last data frame queued is repeatable, with header repHdr
	repHdr    bus.Envelope // a tell with this header goes as a repeat frame

	stopped bool // no more data frames go to the host; guarded by l.deliverMu

	kick       chan struct{} // cap 1: the writer has work
	recv       atomic.Uint64 // frames received, as of the reader's last batch; the writer's idle check reads it
	atFence    atomic.Bool   // the reader waits at a fence frame for the other connections' (link.fenceIn)
	dataIn     atomic.Uint64 // data frames read and handed to the host
	ackOut     atomic.Uint64 // the last count the writer sent in a ping
	readerDone chan struct{} // closed when readLoop has returned
	handedBack chan struct{} // closed by the writer once it has handed back what it never wrote
}

// ackRing bounds the data frames a connection keeps written but not
// acknowledged: a sender waits for acknowledgements past it. ackEvery is
// how far the read count may move before the writer acknowledges at once,
// without waiting for its heartbeat tick. Each such ping wakes this end's
// writer and the peer's reader, so a stream of tells pays one pair of
// wake-ups per ackEvery frames: 4096 costs both processes less CPU per tell
// than 1024 (docs/performance.md, "Why netbus acknowledges every 4096
// frames") and leaves the ring 16 times that.
const (
	ackRing  = 1 << 16
	ackEvery = 4096 // a 14-byte ping per 4096 data frames read
)

// countable reports whether a frame of kind k is one Host.Undelivered counts.
func countable(k bus.Kind) bool { return k == bus.KindTell || k == bus.KindPublish }

// record notes a data frame of kind k (corr, if an ask) about to be
// queued or written, in wire order. c.mu is held and the ring has room.
func (c *conn) record(k bus.Kind, corr uint64) {
	i, bit := (c.sent/64)%(ackRing/64), uint64(1)<<(c.sent%64)
	if countable(k) {
		c.ring[i] |= bit
	} else {
		c.ring[i] &^= bit
	}
	if k == bus.KindAsk {
		c.asks.push(c.sent, corr)
	}
	c.sent++
	c.rep = false // queue sets it again after a repeatable frame
}

// askRing keeps, in order, the sequence number and correlation id of each
// ask among a connection's data frames not yet acknowledged: enough to
// hand an ask back when the peer's close frame proves it never read it. A
// circular buffer that grows (doubling) only while more asks are
// unacknowledged than ever before, so a steady flow allocates nothing, up
// to maxAskRecs: an ask past that is not kept, and fails with its link as
// one that may have run.
type askRing struct {
	recs       []askRec // a power of two long, or nil
	head, size int
}

type askRec struct{ seq, corr uint64 }

const maxAskRecs = 4 * ackEvery // 256 KiB

func (r *askRing) push(seq, corr uint64) {
	if r.size == len(r.recs) {
		if r.size == maxAskRecs {
			return
		}
		grown := make([]askRec, max(8, 2*len(r.recs)))
		for i := range r.size {
			grown[i] = r.recs[(r.head+i)&(len(r.recs)-1)]
		}
		r.recs, r.head = grown, 0
	}
	r.recs[(r.head+r.size)&(len(r.recs)-1)] = askRec{seq, corr}
	r.size++
}

// trim forgets the asks before seq: acknowledged, read by the peer.
func (r *askRing) trim(seq uint64) {
	for r.size > 0 && r.recs[r.head].seq < seq {
		r.head = (r.head + 1) & (len(r.recs) - 1)
		r.size--
	}
}

// drop forgets the ask at seq if it is the last one kept.
func (r *askRing) drop(seq uint64) {
	if r.size > 0 && r.recs[(r.head+r.size-1)&(len(r.recs)-1)].seq == seq {
		r.size--
	}
}

// each calls f with the correlation id of each ask from seq from to seq to.
func (r *askRing) each(from, to uint64, f func(corr uint64)) {
	for i := range r.size {
		if rec := r.recs[(r.head+i)&(len(r.recs)-1)]; rec.seq >= from && rec.seq < to {
			f(rec.corr)
		}
	}
}

// ringFull reports whether the peer must acknowledge before another data
// frame is queued. c.mu is held.
func (c *conn) ringFull() bool { return c.sent-c.acked >= ackRing }

// frameBufs pools the scratch buffers senders encode frames into.
var frameBufs = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

func getBuf() *[]byte { return frameBufs.Get().(*[]byte) }
func putBuf(b *[]byte) {
	if cap(*b) <= 1<<20 {
		*b = (*b)[:0]
		frameBufs.Put(b)
	}
}

// send frames env (its body already encoded) and queues it. Unfenced, it
// refuses env with bus.ErrLinkFenced once the connection is fenced.
func (c *conn) send(ctx context.Context, env *bus.Envelope, unfenced bool) error {
	if !isCall(env.Kind) { // never written at once: see link.alone
		if done, err := c.queue(env, unfenced); done {
			return err
		}
	}
	t := c.l.t
	frameBuf := getBuf()
	defer putBuf(frameBuf)
	frame := append((*frameBuf)[:0], make([]byte, frameHeaderLen)...)
	frame, err := env.AppendBinary(frame)
	*frameBuf = frame
	if err != nil {
		return err
	}
	var flags byte
	if alg := c.res.SendComp; alg != compNone && len(frame)-frameHeaderLen >= t.cfg.CompressMin {
		zb := getBuf()
		defer putBuf(zb)
		z := t.comp.compress(append((*zb)[:0], make([]byte, frameHeaderLen)...), frame[frameHeaderLen:], alg)
		*zb = z
		if len(z) < len(frame) { // incompressible payloads go as they are
			frame, flags = z, alg
		}
	}
	n := len(frame) - frameHeaderLen
	if n > c.res.PeerMaxFrame {
		return fmt.Errorf("netbus: %d-byte frame, peer accepts %d: %w", n, c.res.PeerMaxFrame, bus.ErrTooLarge)
	}
	putFrameHeader(frame, frameData, flags, n)
	if c.l.alone(env.Kind) {
		if done, err := c.writeNow(frame, env.Kind, env.Corr, unfenced); done {
			return err
		}
	}
	return c.enqueue(ctx, frame, env.Kind, env.Corr, unfenced)
}

// isCall reports whether a frame of kind k is an ask or its answer, the
// frames link.alone counts.
func isCall(k bus.Kind) bool { return k == bus.KindAsk || k == bus.KindReply || k == bus.KindError }

// maxInPlace bounds the body that queue encodes while it holds c.mu.
const maxInPlace = 8 << 10

// queue encodes env's frame straight into the writer's queue, under c.mu:
// no scratch buffer and no copy, and a kick only for the first frame the
// writer has not yet seen. That is the whole of a send when the connection
// is open, the queue and the ack ring have room and the frame goes
// uncompressed; otherwise queue reports false, having queued nothing, and
// send takes the general path, which waits for room and compresses. An
// envelope that does not encode is reported as done, with the error, and
// so is one sent unfenced to a fenced connection (bus.ErrLinkFenced).
func (c *conn) queue(env *bus.Envelope, unfenced bool) (done bool, err error) {
	cfg := &c.l.t.cfg
	comp := c.res.SendComp != compNone
	if len(env.Body) > maxInPlace || comp && len(env.Body) >= cfg.CompressMin {
		return false, nil
	}
	c.mu.Lock()
	if unfenced && c.fenced {
		c.mu.Unlock()
		return true, bus.ErrLinkFenced
	}
	if c.closed || c.ringFull() {
		c.mu.Unlock()
		return false, nil
	}
	start := len(c.out)
	out, typ, err := append(c.out, make([]byte, frameHeaderLen)...), frameData, error(nil)
	canRepeat := c.res.Version >= versionRepeat && repeatable(env)
	repeat := canRepeat && c.rep && sameHeader(&c.repHdr, env)
	if repeat {
		out, typ = append(out, env.Body...), frameRepeat
	} else {
		out, err = env.AppendBinary(out)
	}
	n := len(out) - start - frameHeaderLen
	if err != nil || n > c.res.PeerMaxFrame || comp && n >= cfg.CompressMin || start > 0 && len(out) > cfg.MaxQueued {
		c.out = out[:start] // what it grew to stays for the next frame
		c.mu.Unlock()
		return err != nil, err
	}
	putFrameHeader(out[start:], typ, compNone, n)
	c.out = out
	c.record(env.Kind, env.Corr)
	if canRepeat {
		if !repeat && !sameHeader(&c.repHdr, env) {
			c.repHdr = headerOf(env)
		}
		c.rep = true
	}
	c.queuedOut++
	kick := !c.kicked
	c.kicked = true
	c.mu.Unlock()
	if kick {
		select {
		case c.kick <- struct{}{}:
		default:
		}
	}
	return true, nil
}

// writeNow writes frame straight to the socket when the link is quiet (no
// write under way, nothing queued), saving the hand-off to the writer
// goroutine and back that would otherwise sit in every ask's round trip. It
// makes one non-blocking write attempt: whatever the socket does not take
// goes to the front of the queue for the writer. It reports false, having
// done nothing, when the link is busy; the caller then queues the frame.
// A write that fails before any byte of the frame went out returns the
// error: the frame never reached the peer, and the link is closing.
//
// Only a lone ask or reply takes this path (see link.alone): with many calls
// in flight, or a stream of one-way tells, frames go through the writer,
// which batches them into one write.
func (c *conn) writeNow(frame []byte, k bus.Kind, corr uint64, unfenced bool) (bool, error) {
	if c.raw == nil {
		return false, nil
	}
	c.mu.Lock()
	if c.closed || c.writing || len(c.out) > 0 || c.ringFull() || unfenced && c.fenced {
		c.mu.Unlock()
		return false, nil
	}
	c.writing = true
	seq := c.sent
	c.record(k, corr)
	c.mu.Unlock()
	c.direct = directWrite{frame: frame}
	if err := c.raw.Write(c.writeFD); err != nil && c.direct.err == nil {
		c.direct.err = err
	}
	n, werr := c.direct.n, c.direct.err
	c.direct = directWrite{}
	c.mu.Lock()
	c.writing = false
	if werr == nil && n < len(frame) {
		// The socket is full: the rest goes first, before frames queued
		// meanwhile.
		c.out = append(append(make([]byte, 0, len(frame)-n+len(c.out)), frame[n:]...), c.out...)
		c.skip = len(frame) - n
		c.queuedOut++
	} else {
		c.wrote++ // whole, or failed: an ask or reply, which LinkDown settles
		if werr != nil && n == 0 {
			c.asks.drop(seq) // its Send fails: the bus places it again
		}
	}
	kick := len(c.out) > 0 || c.closed
	c.mu.Unlock()
	if werr != nil {
		werr = fmt.Errorf("netbus: write to %s: %w", c.nc.RemoteAddr(), werr)
		c.l.close(werr)
		if n == 0 && !countable(k) { // an ask or reply the socket never began
			return true, c.l.sendErr()
		}
		return true, nil // the link is closing; an ask fails with it
	}
	if kick {
		select {
		case c.kick <- struct{}{}:
		default:
		}
	}
	return true, nil
}

// enqueue appends a complete frame to the writer's queue, waiting for space
// while more than MaxQueued bytes are waiting, or ackRing data frames are
// unacknowledged. Unfenced, it refuses the frame once the connection is
// fenced, even after waiting.
func (c *conn) enqueue(ctx context.Context, frame []byte, k bus.Kind, corr uint64, unfenced bool) error {
	c.mu.Lock()
	for !c.closed && !(unfenced && c.fenced) && (len(c.out) > 0 && len(c.out)+len(frame) > c.l.t.cfg.MaxQueued || c.ringFull()) {
		if c.space == nil {
			c.space = make(chan struct{})
		}
		space := c.space
		c.mu.Unlock()
		select {
		case <-space:
		case <-ctx.Done():
			return ctx.Err()
		case <-c.l.done:
		}
		c.mu.Lock()
	}
	if c.closed {
		c.mu.Unlock()
		return c.l.sendErr()
	}
	if unfenced && c.fenced {
		c.mu.Unlock()
		return bus.ErrLinkFenced
	}
	c.record(k, corr)
	c.out = append(c.out, frame...)
	c.queuedOut++
	c.mu.Unlock()
	select {
	case c.kick <- struct{}{}:
	default:
	}
	return nil
}

// ending is how a closed connection ends (see conn).
type ending uint8

const (
	endClose  ending = iota // this end closes: flush, close frame, read on to the peer's
	endAnswer               // the peer closed: drop the queue, answer with a close frame
	endCut                  // the socket failed: nobody to tell; stop reading now
)

// shut stops intake and tells the writer to end the connection: err is
// why; byPeer says the peer's close frame arrived.
func (c *conn) shut(err error, byPeer bool) {
	c.mu.Lock()
	first := !c.closed
	if first {
		c.closed, c.why = true, err
		switch {
		case byPeer:
			c.ending = endAnswer
		case errors.Is(err, ErrRejected) || errors.Is(err, errRelinked) || isIOErr(err):
			c.ending = endCut
		default:
			c.ending = endClose
		}
		if c.space != nil {
			close(c.space)
			c.space = nil
		}
	}
	cut := c.ending == endCut
	c.mu.Unlock()
	select {
	case c.kick <- struct{}{}:
	default:
	}
	if first {
		// A write under way gets lingerTimeout more to finish, not the
		// idle timeout: the writer has a close to run.
		c.nc.SetWriteDeadline(time.Now().Add(lingerTimeout))
	}
	if first && cut {
		c.nc.SetReadDeadline(time.Now()) // unblock the reader now
	}
}

// fence, with refuse, refuses every frame sent unfenced from now on, and
// wakes the senders that wait for room, so that such a sender is refused at
// once. With frame it queues a fence frame, under the lock that refuses
// them: it follows every frame sent unfenced on the connection.
func (c *conn) fence(refuse, frame bool) {
	c.mu.Lock()
	c.fenced = c.fenced || refuse
	if frame && !c.closed {
		c.out = appendFrameHeader(c.out, frameFence, 0, 0)
	}
	if c.space != nil {
		close(c.space)
		c.space = nil
	}
	c.mu.Unlock()
	if frame {
		select {
		case c.kick <- struct{}{}:
		default:
		}
	}
}

// stop ends the hand-over of data frames to the host and returns how many
// were handed over: the count a close frame carries.
func (c *conn) stop() uint64 {
	c.l.deliverMu.Lock()
	c.stopped = true
	n := c.dataIn.Load()
	c.l.deliverMu.Unlock()
	return n
}

// isIOErr reports whether err came from the socket rather than the protocol
// (then there is nobody to send a close frame to).
func isIOErr(err error) bool {
	var ne net.Error
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) || errors.As(err, &ne)
}

// directWrite is the state of one writeNow; the sender that set writing owns
// it. It lives in the conn so that a write allocates nothing.
type directWrite struct {
	frame []byte
	n     int   // bytes written
	err   error // a failure other than a full socket
}

// writeLoop is the writer goroutine.
func (c *conn) writeLoop() {
	cfg := &c.l.t.cfg
	tick := time.NewTicker(cfg.HeartbeatInterval)
	defer tick.Stop()
	var spare []byte
	wrote, lastRecv, idleTicks := false, uint64(0), 0
	maxIdleTicks := int((cfg.IdleTimeout + cfg.HeartbeatInterval - 1) / cfg.HeartbeatInterval)
	for {
		ticked := false
		select {
		case <-c.kick:
		case <-tick.C:
			ticked = true
			// A reader waiting at a fence frame reads nothing, the peer's
			// heartbeats included, until the other connections' fence
			// frames arrive: their own idle checks bound that wait.
			if r := c.recv.Load(); r != lastRecv || c.atFence.Load() {
				lastRecv, idleTicks = r, 0
			} else if idleTicks++; idleTicks >= maxIdleTicks {
				c.l.close(fmt.Errorf("%w: nothing received for %v", ErrIdleTimeout, cfg.IdleTimeout))
			}
		}
		// A ping acknowledges what the reader read: on each tick the count
		// moved, and at once when it moved by ackEvery. A tick with nothing
		// written sends one anyway, as a heartbeat.
		if in, last := c.dataIn.Load(), c.ackOut.Load(); ticked && (in != last || !wrote) || in-last >= ackEvery {
			c.mu.Lock()
			if !c.closed {
				c.out = appendPing(c.out, in)
				c.ackOut.Store(in)
			}
			c.mu.Unlock()
		}
		if ticked {
			wrote = false
		}
		// Let senders that are running right now add their frames first, so
		// a burst goes out in one write instead of several. With nothing
		// else runnable it returns at once (measured: docs/performance.md,
		// "Why the netbus writer yields").
		runtime.Gosched()
		c.mu.Lock()
		if c.writing {
			// A sender is writing its frame; it kicks us when it is done
			// and anything is waiting.
			c.mu.Unlock()
			continue
		}
		if c.closed {
			c.mu.Unlock()
			c.end()
			return
		}
		batch, skip, frames := c.out, c.skip, c.queuedOut
		c.out, c.skip, c.queuedOut = spare[:0], 0, 0
		c.rep = false // each write begins with a whole envelope, for handBack
		c.writing, c.kicked = len(batch) > 0, false
		if c.space != nil {
			close(c.space)
			c.space = nil
		}
		c.mu.Unlock()
		if len(batch) > 0 {
			c.nc.SetWriteDeadline(time.Now().Add(cfg.IdleTimeout))
			n, err := c.nc.Write(batch)
			c.mu.Lock()
			c.writing = false
			if err == nil {
				c.wrote += uint64(frames)
			}
			c.mu.Unlock()
			wrote = true
			if err != nil {
				err = fmt.Errorf("netbus: write to %s: %w", c.nc.RemoteAddr(), err)
				c.l.close(err)
				whole := c.handBack(batch, skip, n, err)
				c.mu.Lock() // closed now: nothing more is queued
				c.wrote += uint64(whole)
				rest, skip := c.out, c.skip
				c.out, c.skip, c.queuedOut = nil, 0, 0
				c.mu.Unlock()
				c.handBack(rest, skip, 0, err)
				close(c.handedBack)
				c.stop()
				c.nc.SetReadDeadline(time.Now()) // a closing reader may be reading on
				<-c.readerDone                   // no acknowledgement comes after this
				c.nc.Close()
				c.handBackUnread(false)
				return
			}
		}
		if cap(batch) > 2*cfg.MaxQueued+64<<10 {
			batch = nil // a frame larger than the queue: do not keep its buffer
		}
		spare = batch
	}
}

// end ends the connection once it is closed (see conn and ending). It runs
// on the writer goroutine, which owns the socket's writes.
func (c *conn) end() {
	c.mu.Lock()
	batch, skip, frames, how, why := c.out, c.skip, c.queuedOut, c.ending, c.why
	c.out, c.skip, c.queuedOut = nil, 0, 0
	c.mu.Unlock()
	sentClose := false
	switch how {
	case endClose:
		// The peer reads on to our close frame: what we queued reaches it.
		n, err := c.lastWrite(batch)
		whole := frames
		if err != nil {
			whole = c.handBack(batch, skip, n, err)
		}
		c.mu.Lock()
		c.wrote += uint64(whole)
		c.mu.Unlock()
		close(c.handedBack)
		if err == nil {
			_, err = c.lastWrite(appendCountedClose(nil, why, c.stop()))
			sentClose = err == nil
		}
		// A peer silent for the idle timeout is not waited for: its count
		// would settle our frames, but it is most likely gone.
		c.linger(!sentClose || errors.Is(why, ErrIdleTimeout))
	case endAnswer:
		// The peer handed over nothing after its close frame: keep only the
		// end of a frame a direct write began, so our close frame parses.
		c.handBack(batch, skip, 0, why)
		_, err := c.lastWrite(batch[:skip])
		if skip > 0 {
			c.mu.Lock()
			c.wrote++ // past the peer's count, whole or not
			c.mu.Unlock()
		}
		c.linger(false) // its readers hand over what the peer sent before
		c.handBackUnreadAsks()
		close(c.handedBack)
		if err == nil {
			_, err = c.lastWrite(appendCountedClose(nil, why, c.stop()))
			sentClose = err == nil
		}
	case endCut:
		c.handBack(batch, skip, 0, why)
		close(c.handedBack)
		c.stop()
	}
	<-c.readerDone // no acknowledgement or count comes after this
	c.closeSocket(sentClose)
	c.handBackUnread(sentClose)
}

// lastWrite writes b while the connection ends, bounded by lingerTimeout.
func (c *conn) lastWrite(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	c.nc.SetWriteDeadline(time.Now().Add(lingerTimeout))
	return c.nc.Write(b)
}

// linger waits for the reader to read on to the peer's close frame (or
// the end of the socket), then stops it. A reader still working through
// what the peer sent before its close frame is not cut off: it is stopped
// once it has read nothing for the idle timeout (at least lingerTimeout),
// or after lingerMax in all, as a peer that never stops sending would hold
// it for ever. A peer whose node takes seconds over what arrived before
// our close frame (a slow actor run on its reader) sends nothing else
// meanwhile but its heartbeats: a shorter silence would take it for gone
// and leave in doubt what it handed over. With now set, it stops it at
// once.
func (c *conn) linger(now bool) {
	if !now {
		quiet := max(lingerTimeout, c.l.t.cfg.IdleTimeout)
		wait, most := time.NewTimer(quiet), time.NewTimer(lingerMax)
		defer wait.Stop()
		defer most.Stop()
		for read := c.recv.Load(); ; {
			select {
			case <-c.readerDone:
				return
			case <-most.C:
			case <-wait.C:
				if r := c.recv.Load(); r != read {
					read = r
					wait.Reset(quiet)
					continue
				}
			}
			break
		}
	}
	c.nc.SetReadDeadline(time.Now())
}

// handBack hands the host back each data frame of b (frames from offset
// skip) that the socket did not take whole: b's first written bytes went
// out. A frame never written in full never reached the peer. It returns
// how many data frames of b were written whole (the end of one writeNow
// began, before skip, counts as one).
func (c *conn) handBack(b []byte, skip, written int, err error) (whole int) {
	var env, prev bus.Envelope
	var scratch []byte
	if skip > 0 && written >= skip {
		whole++
	}
	// A repeat frame repeats the header of the data frame before it, which
	// begins at prevAt; prev holds that header once decoded (decodedAt). A
	// write begins with a data frame (writeLoop), so the one a repeat frame
	// repeats is in b.
	prevAt, decodedAt := -1, -1
	for pos := skip; pos+frameHeaderLen <= len(b); {
		n := int(binary.BigEndian.Uint32(b[pos:]))
		typ, flags := b[pos+4], b[pos+5]
		end := pos + frameHeaderLen + n
		if n < 0 || end > len(b) || end < pos {
			return whole // our own queue: never, but bounded anyway
		}
		data := typ == frameData || typ == frameRepeat
		if data && end <= written {
			whole++
		}
		if data && end > written {
			ok := false
			switch {
			case typ == frameData:
				env = bus.Envelope{}
				ok = c.l.t.comp.decodeData(&env, flags, b[pos+frameHeaderLen:end], &scratch, nil) == nil
			case prevAt >= 0:
				if decodedAt != prevAt {
					pn := int(binary.BigEndian.Uint32(b[prevAt:]))
					prev, decodedAt = bus.Envelope{}, prevAt
					if c.l.t.comp.decodeData(&prev, b[prevAt+5], b[prevAt+frameHeaderLen:prevAt+frameHeaderLen+pn], &scratch, nil) != nil {
						prev = bus.Envelope{}
					}
					prev.Body = nil
				}
				env, ok = prev, repeatable(&prev)
			}
			if ok {
				env.Body = nil
				c.l.t.host.Undelivered(c.l, &env, err)
			}
		}
		if typ == frameData {
			prevAt = pos
		}
		pos = end
	}
	return whole
}

// handBackUnreadAsks hands the host back each ask the socket took whole
// that the peer never read: past the count in its close frame. It runs on
// the writer, once the reader is done (the count is final) and before
// handedBack, so before LinkDown: the bus places those asks again.
func (c *conn) handBackUnreadAsks() {
	c.mu.Lock()
	from, to, said := c.peerRead, c.wrote, c.peerSaid
	c.mu.Unlock()
	if !said {
		return
	}
	reason := fmt.Errorf("netbus: the peer closed the connection before reading it: %w", c.l.err)
	c.asks.each(from, to, func(corr uint64) {
		env := bus.Envelope{Kind: bus.KindAsk, Corr: corr}
		c.l.t.host.Undelivered(c.l, &env, reason)
	})
}

// handBackUnread hands the host back, once the connection is over, each
// tell or publish the socket took whole that the peer did not hand to its
// node: exactly those past the count in its close frame, or in a settle
// frame that came first. Without a count (the connection broke), those
// past its last acknowledgement wait, kept in a record, for the peer to
// link again and settle them (settle.go). Unless both close frames
// crossed, the record also keeps this end's read count for the peer.
func (c *conn) handBackUnread(sentClose bool) {
	t := c.l.t
	c.mu.Lock()
	from, to, said := c.acked, c.wrote, c.peerSaid
	if said {
		from = c.peerRead
	}
	c.mu.Unlock()
	closed := said // by the peer's close frame
	if !said {
		if read, ok := t.told(c.l.peer, c.id); ok && read >= from && read <= to {
			from, said = read, true
		}
	}
	if said {
		reason := fmt.Errorf("netbus: the peer closed the connection before reading it: %w", c.l.err)
		for seq := from; seq < to; seq++ {
			if c.ring[(seq/64)%(ackRing/64)]&(1<<(seq%64)) != 0 {
				env := bus.Envelope{Kind: bus.KindTell}
				t.host.Undelivered(c.l, &env, reason)
			}
		}
		if closed && sentClose {
			return // each end has the other's count
		}
		from = to
	}
	r := newRecord(c, from, to)
	c.br, c.ring, c.asks = nil, nil, askRing{} // a record keeps the link for a while, not its buffers
	t.keep(r)
}

// lingerTimeout bounds each of a closing connection's last writes, and is
// the least it waits for the peer's close frame while nothing arrives (see
// linger); lingerMax bounds that wait however much arrives.
const (
	lingerTimeout = time.Second
	lingerMax     = 10 * lingerTimeout
)

// closeSocket closes the socket once the reader is done. After a close
// frame that the peer did not answer, it half-closes first and discards
// what arrives until the peer hangs up (or lingerTimeout): closing at once
// while the peer's frames sit unread in our receive buffer makes the
// kernel reset the connection, and the reset can destroy the close frame
// before the peer reads it: the peer would see "connection reset" instead
// of the reason.
func (c *conn) closeSocket(sentClose bool) {
	c.mu.Lock()
	answered := c.peerSaid
	c.mu.Unlock()
	if hc, ok := c.nc.(interface{ CloseWrite() error }); ok && sentClose && !answered && hc.CloseWrite() == nil {
		c.nc.SetReadDeadline(time.Now().Add(lingerTimeout))
		io.Copy(io.Discard, c.nc)
	}
	c.nc.Close()
}

// readLoop is the reader goroutine. It hands envelopes to the link in the
// order received, in batches: the data frames that lie whole in its buffer
// already go together (readBatch), so a batch never waits for the socket.
func (c *conn) readLoop() {
	defer close(c.readerDone)
	t := c.l.t
	fr := newFrameReader(c.br, t.cfg.MaxFrameSize)
	var scratch []byte
	var names bus.EnvelopeDecoder
	batch := make([]bus.Envelope, 0, readBatch)
	var frames uint64 // frames read; published in c.recv once per batch, not per frame
	// last is the header of the last data frame handed over, for a repeat
	// frame that comes first in a batch.
	var last bus.Envelope
	lastOK := false
	// deliver hands over the batch. Once stopped, its frames are dropped:
	// the count in our close frame leaves them out, and the peer hands
	// them back.
	deliver := func() {
		c.recv.Store(frames)
		if n := len(batch); n > 0 {
			if e := &batch[n-1]; !repeatable(e) {
				lastOK = false
			} else if !lastOK || !sameHeader(&last, e) {
				last, lastOK = headerOf(e), true
			}
		}
		if len(batch) > 0 && c.l.deliver(c, batch) && c.dataIn.Load()-c.ackOut.Load() >= ackEvery {
			select { // acknowledge now, not at the next tick
			case c.kick <- struct{}{}:
			default:
			}
		}
		batch = batch[:0]
		if cap(scratch) > keepFrameBuf { // a large frame's buffer goes with it
			scratch = nil
		}
	}
	for {
		typ, flags, p, err := fr.next()
		if err != nil {
			deliver()
			c.l.close(err)
			return
		}
		frames++
		if typ != frameData && typ != frameRepeat {
			deliver()
		}
		switch typ {
		case frameData, frameRepeat:
			batch = batch[:len(batch)+1]
			env := &batch[len(batch)-1]
			var err error
			if typ == frameData {
				err = t.comp.decodeData(env, flags, p, &scratch, &names)
			} else if c.res.Version < versionRepeat {
				err = fmt.Errorf("%w: repeat frame on a connection of version %d", ErrBadFrame, c.res.Version)
			} else if len(batch) > 1 {
				err = decodeRepeat(env, &batch[len(batch)-2], p)
			} else if lastOK {
				err = decodeRepeat(env, &last, p)
			} else {
				err = decodeRepeat(env, nil, p)
			}
			if err != nil {
				batch = batch[:len(batch)-1]
				deliver()
				c.l.close(err)
				return
			}
			c.l.received(env.Kind)
			// A decompressed body lies in scratch, which the next one
			// would overwrite; an uncompressed one stays where it is in
			// the buffer while the frames after it are there whole.
			if flags&compMask != compNone || len(batch) == cap(batch) || !fr.buffered() {
				deliver()
			}
		case framePing:
			if err := c.acknowledged(p); err != nil {
				c.l.close(err)
				return
			}
		case frameSettle:
			t.settled(c.l.peer, parseSettle(p))
		case frameFence:
			if c.res.Version < versionFence {
				c.l.close(fmt.Errorf("%w: fence frame on a connection of version %d", ErrBadFrame, c.res.Version))
				return
			}
			c.atFence.Store(true)
			c.l.fenceIn()
			c.atFence.Store(false)
		case frameClose:
			read, counted, reason := parseClose(flags, p)
			if counted {
				if err := c.peerClosed(read); err != nil {
					c.l.close(err)
					return
				}
			}
			c.l.closedByPeer(reason)
			return
		default:
			c.l.close(fmt.Errorf("%w: frame type %d after the handshake", ErrBadFrame, typ))
			return
		}
	}
}

// readBatch bounds the envelopes a reader hands to its host with one call.
const readBatch = 64

// acknowledged takes the peer's acknowledgement in a ping's payload p. A
// count that goes back, or past the data frames sent, is a protocol error.
func (c *conn) acknowledged(p []byte) error {
	read, ok, err := parsePing(p)
	if err != nil || !ok {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if read < c.acked || read > c.sent {
		return fmt.Errorf("%w: ping acknowledges %d data frames; %d were acknowledged, %d sent", ErrBadFrame, read, c.acked, c.sent)
	}
	c.acked = read
	c.asks.trim(read)
	if c.space != nil { // a sender may wait for the ring
		close(c.space)
		c.space = nil
	}
	return nil
}

// queueControl queues frame, not a data frame, for the writer, unless the
// connection is closed.
func (c *conn) queueControl(frame []byte) {
	c.mu.Lock()
	if !c.closed {
		c.out = append(c.out, frame...)
	}
	c.mu.Unlock()
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

// peerClosed takes the count in the peer's close frame: it handed over the
// first read data frames sent on this connection and will hand over no
// more. A count below its acknowledgements, or past the frames sent, is a
// protocol error, and what it would settle stays in doubt.
func (c *conn) peerClosed(read uint64) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if read < c.acked || read > c.sent {
		return fmt.Errorf("%w: close frame counts %d data frames read; %d were acknowledged, %d sent", ErrBadFrame, read, c.acked, c.sent)
	}
	c.peerRead, c.peerSaid = read, true
	c.asks.trim(read)
	return nil
}

// newConn wraps a socket whose handshake completed; rest holds the bytes
// read past the handshake.
func newConn(nc net.Conn, res hsResult, rest []byte) *conn {
	c := &conn{nc: nc, res: res, kick: make(chan struct{}, 1), readerDone: make(chan struct{}), handedBack: make(chan struct{}), ring: make([]uint64, ackRing/64)}
	if c.raw = rawConn(nc); c.raw != nil { // nil: every frame goes through the writer
		c.writeFD = c.writeDirect
	}
	var r io.Reader = nc
	if len(rest) > 0 {
		r = io.MultiReader(bytes.NewReader(append([]byte(nil), rest...)), nc)
	}
	c.br = bufio.NewReaderSize(r, 64<<10)
	return c
}
