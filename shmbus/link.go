package shmbus

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/xbus-dev/xbus/bus"
	"github.com/xbus-dev/xbus/shmbus/internal/shmsys"
)

const (
	// parkSlice is the longest futex sleep of the reader, a safety net: Close
	// wakes it at once. Short slices cost an idle process CPU: each return
	// from the syscall restarts the Go runtime's monitor thread's fast
	// polling (50 ms slices: ~2 % of a CPU per idle process; 1 s: ~0).
	parkSlice = time.Second
	fragHdr   = 8 // first fragment: total length uint32, reserved uint32
)

// link is one peer. Goroutines: reader (owns cons and reassembly) and
// watcher (reads the socket for EOF). Senders share prod (lock-free) and
// fragMu (held across all fragments of one message, so fragments of two
// messages never interleave; whole records may). memMu guards the mappings:
// Send holds it for reading while it writes the ring, release for writing.
type link struct {
	t    *Transport
	h    bus.Host
	conn *net.UnixConn
	peer bus.NodeID

	own, peerMem []byte
	prod         *producer
	cons         *consumer
	bellOut      *atomic.Uint32 // in own: rung by our producers
	bellIn       *atomic.Uint32 // in the peer's segment: we wait on it

	fragMu sync.Mutex
	memMu  sync.RWMutex
	mapped bool // guarded by memMu

	names bus.EnvelopeDecoder // the reader's cache of recent names; owned by read
	env   bus.Envelope        // what deliver decodes into; owned by read

	done     chan struct{}
	once     sync.Once
	err      error // set before done is closed
	watchEnd chan struct{}
}

func newLink(t *Transport, h bus.Host, c *net.UnixConn, peer bus.NodeID, own, peerMem []byte, peerKey, ownKey uint64) *link {
	l := &link{t: t, h: h, conn: c, peer: peer, own: own, peerMem: peerMem, mapped: true,
		done: make(chan struct{}), watchEnd: make(chan struct{})}
	l.prod, l.cons, l.bellOut, l.bellIn = rings(own, peerMem, t.cfg.RingSize, ownKey, peerKey)
	return l
}

func (l *link) start() {
	l.t.wg.Go(l.watch)
	l.t.wg.Go(l.read)
}

func (l *link) Peer() bus.NodeID       { return l.peer }
func (l *link) Locality() bus.Locality { return bus.SameHost }
func (l *link) Scheme() string         { return "shm" }
func (l *link) Codec() bus.Codec       { return l.t.codec }

// ReaderSpins implements bus.SpinningLink: the reader polls the ring for
// up to 100 µs before it parks, so an asker may poll for its reply too.
func (l *link) ReaderSpins() bool { return true }

// Close closes the link; the reader then releases everything and reports
// LinkDown once.
func (l *link) Close(err error) {
	l.once.Do(func() {
		if err == nil {
			err = errLinkClosed
		}
		l.err = err
		close(l.done)
		l.conn.Close()
		// Wake the reader if it is parked. The segments are still mapped:
		// the reader's finish unmaps them only after its own Close call,
		// which returns once this function has.
		shmsys.FutexWake(l.bellIn)
	})
}

// watch reads the socket: the peer never writes after the handshake, so
// anything it returns (EOF above all) means the peer is gone.
func (l *link) watch() {
	defer close(l.watchEnd)
	var b [1]byte
	_, err := l.conn.Read(b[:])
	if err == nil {
		err = errors.New("unexpected bytes on the control socket")
	}
	l.Close(fmt.Errorf("shmbus: control socket: %w", err))
}

// Send writes env (its body already encoded by the bus) into the ring, in
// fragments if it is bigger than a record.
func (l *link) Send(ctx context.Context, env *bus.Envelope) error {
	bp := getBuf()
	err := l.send(ctx, env, bp)
	putBuf(bp)
	return err
}

// send encodes env into bp and writes it. It has no loop, so that its
// defer is open-coded (the fragmenting path, with its loop, is apart).
func (l *link) send(ctx context.Context, env *bus.Envelope, bp *sendBuf) error {
	out, err := env.AppendBinary(bp.out[:0])
	if err != nil {
		return err
	}
	bp.out = out
	if len(out) > l.t.cfg.MaxMessage {
		return fmt.Errorf("%w: %d bytes, the link's limit is %d", bus.ErrTooLarge, len(out), l.t.cfg.MaxMessage)
	}
	l.memMu.RLock()
	defer l.memMu.RUnlock()
	if !l.mapped {
		return l.closedErr()
	}
	if len(out) <= l.prod.maxRecord {
		return l.offer(ctx, recordData, out, nil)
	}
	return l.sendFragments(ctx, out)
}

// sendFragments writes a message bigger than a record as a first fragment,
// middles and a last one; memMu is held for reading.
func (l *link) sendFragments(ctx context.Context, out []byte) error {
	max := l.prod.maxRecord
	l.fragMu.Lock()
	defer l.fragMu.Unlock()
	var hdr [fragHdr]byte
	binary.LittleEndian.PutUint32(hdr[:], uint32(len(out)))
	first := max - fragHdr
	if err := l.offer(ctx, recordFirst, hdr[:], out[:first]); err != nil {
		return err
	}
	for rest := out[first:]; len(rest) > 0; {
		n, typ := min(len(rest), max), uint32(recordMiddle)
		if n == len(rest) {
			typ = recordLast
		}
		if err := l.offer(ctx, typ, rest[:n], nil); err != nil {
			// The peer holds a partial message: the stream is broken.
			l.Close(err)
			return err
		}
		rest = rest[n:]
	}
	return nil
}

// sendBuf holds the encoding buffer of one Send; pooled, so a steady
// stream of sends allocates nothing here. Buffers grown past poolMax (by a
// large message) are dropped rather than kept.
type sendBuf struct{ out []byte }

const poolMax = 64 << 10

var sendBufs = sync.Pool{New: func() any { return &sendBuf{out: make([]byte, 0, 512)} }}

func getBuf() *sendBuf { return sendBufs.Get().(*sendBuf) }

func putBuf(b *sendBuf) {
	if cap(b.out) > poolMax {
		return
	}
	sendBufs.Put(b)
}

func (l *link) closedErr() error {
	<-l.done
	return fmt.Errorf("shmbus: link to %s closed: %w: %w", l.peer.Short(), bus.ErrPeerGone, l.err)
}

// offer writes one record, waiting while the ring is full.
func (l *link) offer(ctx context.Context, typ uint32, a, b []byte) error {
	for i := 0; ; i++ {
		wake, err := l.prod.offer(typ, a, b)
		if err == nil {
			if wake {
				shmsys.FutexWake(l.bellOut)
			}
			return nil
		}
		if !errors.Is(err, errRingFull) {
			l.Close(err)
			return err
		}
		select {
		case <-l.done:
			return l.closedErr()
		case <-ctx.Done():
			return ctx.Err()
		default:
		}
		if i < 100 {
			runtime.Gosched()
		} else {
			time.Sleep(20 * time.Microsecond)
		}
	}
}

// read is the consumer loop: poll, spin for the spinner's budget, then
// park on the peer's doorbell. It ends when the link closes or the memory is corrupt, then
// releases the link.
func (l *link) read() {
	defer l.finish()
	var buf []byte // reassembly and copy-out buffer, owned here
	var want int   // total of the message being reassembled; 0 when none
	handle := func(typ uint32, p []byte) error {
		switch typ {
		case recordData:
			if want == 0 {
				buf = append(buf[:0], p...)
				return l.deliver(buf)
			}
			return l.deliver(append([]byte(nil), p...))
		case recordFirst:
			if want != 0 || len(p) < fragHdr {
				return fmt.Errorf("%w: unexpected first fragment", ErrCorrupt)
			}
			n := int(binary.LittleEndian.Uint32(p))
			if n <= len(p)-fragHdr || n > l.t.cfg.MaxMessage {
				return fmt.Errorf("%w: fragmented message of %d bytes (limit %d)", ErrCorrupt, n, l.t.cfg.MaxMessage)
			}
			want = n
			buf = append(make([]byte, 0, n), p[fragHdr:]...)
		default: // middle or last
			if want == 0 || len(buf)+len(p) > want || (typ == recordMiddle) == (len(buf)+len(p) == want) {
				return fmt.Errorf("%w: fragment does not fit the message being reassembled", ErrCorrupt)
			}
			buf = append(buf, p...)
			if typ == recordLast {
				want = 0
				err := l.deliver(buf)
				buf = nil
				return err
			}
		}
		return nil
	}
	sp := newSpinner()
	for {
		n, err := l.cons.poll(64, handle)
		if err != nil {
			l.Close(err)
			return
		}
		if n > 0 {
			sp.worked()
			runtime.Gosched() // let whom we readied (an asker, a worker) run before we poll again
			continue
		}
		if !sp.spin() {
			continue
		}
		select {
		case <-l.done:
			return
		default:
		}
		if err := l.cons.check(); err != nil {
			l.Close(err)
			return
		}
		seq := l.cons.prepareToPark()
		n, err = l.cons.poll(64, handle)
		if n == 0 && err == nil {
			shmsys.FutexWait(l.bellIn, seq, parkSlice)
		}
		l.cons.unpark()
		sp.parked()
		if err != nil {
			l.Close(err)
			return
		}
	}
}

// deliver decodes one whole envelope's header (in memory we own) and hands
// it to the bus with its raw body, which the bus decodes before Deliver
// returns. It runs on the reader goroutine only.
func (l *link) deliver(b []byte) error {
	env := &l.env
	*env = bus.Envelope{}
	if err := l.names.Decode(b, env); err != nil {
		return err
	}
	l.h.Deliver(l, env)
	env.Body = nil
	return nil
}

// finish runs once, when the reader ends: it waits for the watcher and for
// senders to leave the memory, unmaps both segments and reports LinkDown.
func (l *link) finish() {
	l.Close(errLinkClosed)
	<-l.watchEnd
	l.release()
	l.t.removeLink(l)
	l.h.LinkDown(l, l.err)
}

func (l *link) release() {
	l.memMu.Lock()
	if l.mapped {
		l.mapped = false
		shmsys.Unmap(l.own)
		shmsys.Unmap(l.peerMem)
	}
	l.memMu.Unlock()
}
