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
	"github.com/xbus-dev/xbus/internal/shmsys"
)

const (
	// parkSlice is the longest futex sleep of the reader, a safety net: Close
	// wakes it at once. Short slices cost an idle process CPU: each return
	// from the syscall restarts the Go runtime's monitor thread's fast
	// polling (docs/performance.md, "Shared memory", Idle). A
	// PeerTimeout under 4 s on either side shortens it (parkSliceFor).
	parkSlice = time.Second
)

// link is one peer. Goroutines: reader (polls cons, bumps beat) and
// watcher (reads the socket for EOF). pollMu guards cons and what a poll
// keeps (the batch, the names, the message being reassembled): the reader
// takes it for each poll, and an asker waiting for its reply may take it
// to poll in the reader's stead (Poll); from the end of the reader's loop
// the reader holds it for good. Senders share prod
// (lock-free) and fragTurn (held across all fragments of one message, so
// fragments of two messages never interleave; whole records may). memMu
// guards the mappings: Send holds it for reading while it writes the ring,
// release for writing. dogMu guards dog, which the reader and senders
// waiting for room consult (see liveness.go); under it only Close runs,
// which takes none of the link's locks.
type link struct {
	t     *Transport
	h     bus.Host
	batch bus.BatchHost // h when it takes envelopes in batches, else nil
	conn  *net.UnixConn
	peer  bus.NodeID
	codec bus.Codec // agreed in the hello: Config.Codec or the peer's

	own, peerMem []byte
	prod         *producer
	cons         *consumer
	bellOut      *atomic.Uint32 // in own: rung by our producers
	bellIn       *atomic.Uint32 // in the peer's segment: we wait on it
	beat         *atomic.Uint64 // in own: our reader's heartbeat
	peerBeat     *atomic.Uint64 // in the peer's segment: its reader's heartbeat
	drained      *atomic.Uint32 // in own: our reader took its last record (see end)
	peerDrained  *atomic.Uint32 // in the peer's segment: its reader took its last
	peerPID      int            // the peer's process (SO_PEERCRED); 0 if unknown
	slice        time.Duration  // the reader's longest futex sleep
	timeout      time.Duration  // ours: the peer's silence we tolerate; 0 for ever

	dogMu    sync.Mutex
	dog      watchdog
	declared bool // the peer was declared gone; guarded by dogMu

	// fragTurn holds a token while a sender writes a message in fragments:
	// a channel, so that a sender waiting for its turn leaves at its ctx.
	fragTurn chan struct{}

	hdrs bus.HeaderCache // the header of the last tell or publish sent

	memMu  sync.RWMutex
	mapped bool // guarded by memMu
	ending bool // the link ended: Send writes nothing more; guarded by memMu

	parksAtOnce atomic.Bool // the reader's spin budget is 0 (see ReaderSpins); written by read

	roomMu    sync.Mutex
	roomGate  chan struct{} // while a sender sleeps in the kernel for room: closed when it wakes (roomTurn); guarded by roomMu
	roomWaits atomic.Uint64 // sleeps of senders waiting for room (waitRoom)
	roomSlept atomic.Uint64 // of them, those that lasted their whole slice: no wake-up came

	pollMu sync.Mutex
	names  bus.EnvelopeDecoder // cache of recent names; guarded by pollMu
	in     *inBatch            // what a poll took from the ring for the bus; guarded by pollMu
	freed  uint64              // bytes read since senders were seen waiting for room (wakeRoom); guarded by pollMu
	frag   reassembler         // the message in fragments being rebuilt; guarded by pollMu
	lent   int                 // records askers took (Poll) since the reader's last poll; guarded by pollMu
	asker  bool                // an asker polls (Poll): it takes only replies; guarded by pollMu
	// fragAnswer: the message in fragments begun is a reply or an error,
	// whose fragments an asker polling takes too; guarded by pollMu.
	fragAnswer bool

	done     chan struct{}
	once     sync.Once
	err      error // set before done is closed
	watchEnd chan struct{}
}

// newLink builds the link to peer over the two mapped segments; peerTimeout
// is the silence the peer tolerates of us (from its hello; 0 for ever).
func newLink(t *Transport, h bus.Host, c *net.UnixConn, peer bus.NodeID, own, peerMem []byte, peerKey, ownKey uint64, peerTimeout time.Duration) *link {
	l := &link{t: t, h: h, conn: c, peer: peer, codec: t.codec, own: own, peerMem: peerMem, mapped: true,
		fragTurn: make(chan struct{}, 1), frag: reassembler{max: t.cfg.MaxMessage},
		done: make(chan struct{}), watchEnd: make(chan struct{})}
	l.prod, l.cons, l.bellOut, l.bellIn = rings(own, peerMem, t.cfg.RingSize, ownKey, peerKey)
	l.beat, l.peerBeat = atomic64(own, offBeat), atomic64(peerMem, offBeat)
	l.drained, l.peerDrained = atomic32(own, offDrained), atomic32(peerMem, offDrained)
	l.batch, _ = h.(bus.BatchHost)
	l.in = newInBatch(l.prod.maxRecord)
	l.peerPID, _ = shmsys.PeerPID(c)
	l.timeout = t.peerTimeout()
	l.slice = parkSliceFor(l.timeout, peerTimeout)
	l.dog = newWatchdog(l.timeout, l.peerBeat.Load(), time.Now())
	return l
}

func (l *link) start() {
	l.t.wg.Go(l.watch)
	l.t.wg.Go(l.read)
}

func (l *link) Peer() bus.NodeID       { return l.peer }
func (l *link) Locality() bus.Locality { return bus.SameHost }
func (l *link) Scheme() string         { return "shm" }
func (l *link) Codec() bus.Codec       { return l.codec }

// Poll implements bus.PollingLink: unless the reader (or another asker)
// is polling now, it takes the replies that have come from the ring and
// delivers them as the reader would, on the caller's goroutine, so that an
// asker that finds its reply has no hand-off to wait for. It stops at the
// first record that is not of a reply or an error (whole or in fragments),
// which the reader takes: a tell or an ask may run an actor (WithInline)
// on whoever delivers it, and one run on the asker would hold that asker,
// which it may be waiting for. The reader counts what it took as its own
// (lent), so that its spinning still pays by the same measure.
func (l *link) Poll() bool {
	if !l.pollMu.TryLock() {
		return false
	}
	defer l.pollMu.Unlock()
	l.asker = true
	n, err := l.poll()
	l.asker = false
	if err != nil {
		l.Close(err)
	}
	l.lent += n
	return n > 0
}

// ReaderSpins implements bus.SpinningLink: while the reader polls the
// ring before it parks (its spins pay, see spinner), an asker may poll for
// its reply too; while it parks at once, the asker parks at once as well.
func (l *link) ReaderSpins() bool { return !l.parksAtOnce.Load() }

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
		// Wake the reader if it is parked, and our senders waiting for
		// room. The segments are still mapped: the reader's finish unmaps
		// them only after its own Close call, which returns once this
		// function has.
		shmsys.FutexWake(l.bellIn)
		shmsys.FutexWake(l.prod.w.room)
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
	// The header is the one kept of the tells before it, or encoded on the
	// stack, and the body is copied into the ring from where it lies (it
	// ends the envelope's binary form), so a record costs no buffer of its
	// own.
	var a [hdrStack]byte
	hdr, err := l.hdrs.Header(env, a[:0])
	if err != nil {
		return err
	}
	body := env.Body
	if n := len(hdr) + len(body); n > l.t.cfg.MaxMessage {
		return fmt.Errorf("%w: %d bytes, the link's limit is %d", bus.ErrTooLarge, n, l.t.cfg.MaxMessage)
	}
	return l.send(ctx, hdr, body)
}

// hdrStack is the room on Send's stack for an envelope's header; a bigger
// one (many headers) spills to the heap.
const hdrStack = 256

// send writes the message hdr+body. It has no loop, so that its defer is
// open-coded (the fragmenting path, with its loop, is apart).
func (l *link) send(ctx context.Context, hdr, body []byte) error {
	l.memMu.RLock()
	defer l.memMu.RUnlock()
	if !l.mapped || l.ending {
		return l.closedErr()
	}
	if len(hdr)+len(body) <= l.prod.maxRecord {
		return l.offer(ctx, recordData, hdr, body)
	}
	bp := getBuf()
	bp.out = append(append(bp.out[:0], hdr...), body...)
	err := l.sendFragments(ctx, bp.out)
	putBuf(bp)
	return err
}

// sendFragments writes a message bigger than a record as a first fragment,
// middles and a last one; memMu is held for reading. Each fragment waits
// for room only as long as ctx allows (a Send with an ended ctx takes
// what fits at once): a sender stopped after its first fragment writes an
// abort record, which tells the peer's reader to drop what it has of the
// message, and returns its error. The message was not accepted, so
// nothing is lost: the error is its sender's report. The link stays up.
func (l *link) sendFragments(ctx context.Context, out []byte) error {
	if err := l.takeFragTurn(ctx); err != nil {
		return err
	}
	if !l.t.noAbortRoom {
		l.prod.reserved.Store(recordHeaderLen) // room for the abort record, which needs no padding
	}
	defer func() {
		l.prod.reserved.Store(0)
		<-l.fragTurn
	}()
	max := l.prod.maxRecord
	var hdr [fragHdr]byte
	binary.LittleEndian.PutUint32(hdr[:], uint32(len(out)))
	first := max - fragHdr
	if err := l.offer(ctx, recordFirst, hdr[:], out[:first]); err != nil {
		return err
	}
	for rest, sent := out[first:], 1; len(rest) > 0; sent++ {
		if h := l.t.fragHook; h != nil {
			h(l, sent)
		}
		n, typ := min(len(rest), max), uint32(recordMiddle)
		if n == len(rest) {
			typ = recordLast
		}
		if err := l.offer(ctx, typ, rest[:n], nil); err != nil {
			l.abort()
			return err
		}
		rest = rest[n:]
	}
	return nil
}

// takeFragTurn waits until no other sender of the link writes a message
// in fragments, for as long as ctx allows and the link lasts. A turn
// taken on a closed link is given back: the sender before may have left
// its message unended (abort writes nothing on a closed link), and a
// first fragment after it would be corrupt memory to the peer's reader,
// which may still read the ring.
func (l *link) takeFragTurn(ctx context.Context) error {
	select {
	case l.fragTurn <- struct{}{}:
	default:
		select {
		case l.fragTurn <- struct{}{}:
		case <-l.done:
			return l.closedErr()
		case <-ctx.Done():
			return fmt.Errorf("shmbus: waiting to send a message in fragments to %s: %w", l.peer.Short(), ctx.Err())
		}
	}
	select {
	case <-l.done:
		<-l.fragTurn
		return l.closedErr()
	default:
		return nil
	}
}

// abort ends the message in fragments the caller began and stopped
// sending with an abort record. There is room for it: every offer leaves
// the record's 16 bytes free while the message is sent (producer.reserved).
// The caller holds the turn. On a closed link it writes nothing, and no
// message in fragments follows (takeFragTurn): the peer's reader ends
// holding part of the message, which it drops.
func (l *link) abort() {
	select {
	case <-l.done:
		return
	default:
	}
	wake, err := l.prod.offer(recordAbort, nil, nil)
	if err != nil {
		l.Close(err) // the peer holds part of a message: the stream is broken
		return
	}
	if wake {
		shmsys.FutexWake(l.bellOut)
	}
}

// sendBuf holds a message bigger than a record, whole, while Send writes
// its fragments; pooled, so a steady stream of them allocates nothing here. Buffers grown past poolMax (by a
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
	if errors.Is(l.err, bus.ErrPeerGone) {
		return fmt.Errorf("shmbus: link to %s closed: %w", l.peer.Short(), l.err)
	}
	return fmt.Errorf("shmbus: link to %s closed: %w: %w", l.peer.Short(), bus.ErrPeerGone, l.err)
}

// offerYields is how many times a sender that found the ring full waits
// a moment for room (awaitHead) before it sleeps until the peer's reader
// frees room. Few: a sender that spins takes the CPU the peer's reader
// needs to free room, and the reader wakes it (docs/performance.md, "A
// full ring").
const offerYields = 10

// headPolls bounds each of those waits: the polls of the peer's head,
// each a read of a line the peer's reader writes. The sender polls rather
// than yielding to the Go scheduler, which woke an idle thread of the
// process at each yield; but in a ring under pollMinRing it yields, as
// polling there cut the rate of a stream of tells (docs/performance.md,
// "A full ring").
const (
	headPolls   = 64
	pollMinRing = 16 << 10
)

// pauseForRoom is one of offer's waits for room.
func (l *link) pauseForRoom() {
	if l.prod.capacity < pollMinRing {
		runtime.Gosched()
		return
	}
	l.prod.awaitHead(headPolls)
}

// roomSlice is the longest sleep of a sender waiting for room. The peer's
// reader wakes it once it frees room; the slice only bounds how late a
// sender sees its ctx cancelled or the peer stopped, and a variable so
// that a test can make a missed wake-up show.
var roomSlice = time.Millisecond

// offer writes one record, waiting while the ring is full: until ctx ends,
// the link closes or the peer is declared gone (checkPeer), never longer.
// It waits offerYields times, then sleeps until the peer's reader frees
// room (waitRoom). memMu is held for reading.
func (l *link) offer(ctx context.Context, typ uint32, a, b []byte) error {
	var rw roomWait
	for i := 0; ; i++ {
		var wake bool
		var err error
		if i <= offerYields {
			wake, err = l.prod.offer(typ, a, b)
		} else {
			var stop error
			if wake, err, stop = l.waitRoom(ctx, &rw, typ, a, b); stop != nil {
				return stop
			}
		}
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
		if i < offerYields {
			select {
			case <-l.done:
				return l.closedErr()
			default:
			}
			if ctx.Err() != nil {
				return l.fullErr(ctx)
			}
			l.pauseForRoom()
		}
	}
}

// roomWait is what a sender waiting for room knows of its ctx's deadline,
// asked once: a bus's lazy timeout starts its timer when asked.
type roomWait struct {
	asked, has bool
	deadline   time.Time
}

// waitRoom announces the sender as waiting for room (producer.awaitRoom),
// offers the record once more and, if the ring is still full, sleeps until
// the peer's reader frees room and wakes it: for at most roomSlice, and
// never past ctx's deadline. Of a link's senders one sleeps in the kernel
// at a time; the others wait for it in Go (roomTurn). It returns the
// offer's result, or in stop the error that ends the send: ctx ended, the
// link closed or the peer is gone.
func (l *link) waitRoom(ctx context.Context, rw *roomWait, typ uint32, a, b []byte) (wake bool, err, stop error) {
	select {
	case <-l.done:
		return false, nil, l.closedErr()
	default:
	}
	if l.checkPeer(time.Now()) {
		return false, nil, l.closedErr()
	}
	if ctx.Err() != nil {
		return false, nil, l.fullErr(ctx)
	}
	if !rw.asked {
		rw.deadline, rw.has = ctx.Deadline()
		rw.asked = true
	}
	d := roomSlice
	if rw.has {
		if d = min(d, time.Until(rw.deadline)); d <= 0 {
			<-ctx.Done()
			return false, nil, l.fullErr(ctx)
		}
	}
	gate, own := l.roomTurn()
	if !own {
		select {
		case <-gate:
			wake, err = l.prod.offer(typ, a, b)
			return wake, err, nil
		case <-l.done:
		case <-ctx.Done():
		}
		return false, errRingFull, nil // the next call says why it ends
	}
	wake, slept, err := offerOrSleep(l.prod, typ, a, b, d, &l.roomWaits)
	if slept {
		l.roomSlept.Add(1)
	}
	l.roomMu.Lock()
	l.roomGate = nil
	l.roomMu.Unlock()
	close(gate)
	return wake, err, nil
}

// offerOrSleep is the offer of a producer that found p's ring full and
// will sleep for room: it announces the wait (producer.awaitRoom), offers
// the record once more and, if the ring is still full, adds one to sleeps
// (unless nil) and sleeps on the ring's room word until the consumer frees
// room and wakes it, or for d (slept: d passed with no wake-up). err is
// the offer's.
func offerOrSleep(p *producer, typ uint32, a, b []byte, d time.Duration, sleeps *atomic.Uint64) (wake, slept bool, err error) {
	seen := p.awaitRoom()
	wake, err = p.offer(typ, a, b)
	if errors.Is(err, errRingFull) {
		if sleeps != nil {
			sleeps.Add(1)
		}
		slept = shmsys.FutexWait(p.w.room, seen, d)
	}
	p.doneWaiting()
	return wake, slept, err
}

// roomTurn says how a sender waits for room: the first of a link's
// senders to wait sleeps in the kernel and owns the gate (own), which it
// opens when it wakes; the others wait in Go for the gate, their ctx or
// the link's end, parked without holding a thread each (a thread blocked
// in the futex per sender costs its process a thread's wake-up and
// sleep each time; docs/performance.md, "What limits it"), and offer
// again when the gate opens.
func (l *link) roomTurn() (gate chan struct{}, own bool) {
	l.roomMu.Lock()
	defer l.roomMu.Unlock()
	if l.roomGate != nil {
		return l.roomGate, false
	}
	l.roomGate = make(chan struct{})
	return l.roomGate, true
}

func (l *link) fullErr(ctx context.Context) error {
	return fmt.Errorf("shmbus: the ring to %s stayed full: %w", l.peer.Short(), ctx.Err())
}

// checkPeer reads the peer's heartbeat at now and, when it has been still
// for longer than our timeout, closes the link with an error wrapping
// bus.ErrPeerGone and reports true. The memory must be mapped: the reader
// and senders (under memMu) call it.
func (l *link) checkPeer(now time.Time) bool {
	if l.timeout == 0 {
		return false
	}
	l.dogMu.Lock()
	silent, gone := l.dog.observe(l.peerBeat.Load(), now)
	if !gone || l.declared {
		l.dogMu.Unlock()
		return gone
	}
	l.declared = true
	err := fmt.Errorf("shmbus: peer %s showed no sign of life for %v (PeerTimeout %v): %w",
		l.peer.Short(), silent.Round(time.Millisecond), l.timeout, bus.ErrPeerGone)
	// Closed under the lock: another caller that sees the peer gone then
	// finds the link closed with this error, not a reader's later
	// errLinkClosed that would reach LinkDown without ErrPeerGone.
	l.Close(err)
	l.dogMu.Unlock()
	l.h.Logger().Warn("shmbus: closing the link to a peer that shows no sign of life", "peer", l.peer.Short(), "err", err)
	return true
}

// read is the consumer loop: poll, spin for the spinner's budget, then
// park on the peer's doorbell. It ends when the link closes or the memory is corrupt, then
// releases the link.
func (l *link) read() {
	defer l.finish()
	l.loop()
	l.pollMu.Lock() // for good: no asker polls a link that ends
	l.end()
}

// handle takes one record from the ring; pollMu is held.
func (l *link) handle(typ uint32, p []byte) error {
	if typ == recordData {
		if !l.in.room(len(p)) {
			l.flush()
		}
		b := l.in.copy(p)
		if l.asker && !isAnswer(b) {
			l.in.buf = l.in.buf[:len(l.in.buf)-len(b)]
			return errLeave // see Poll
		}
		return l.add(b)
	}
	// An asker takes the fragments of a reply or an error too, or a reply
	// bigger than a record would wait for the reader, parked perhaps.
	if l.asker && typ != recordFirst && (!l.fragAnswer || !l.frag.begun()) {
		return errLeave // see Poll
	}
	msg, err := l.frag.take(typ, p)
	if err != nil {
		return err
	}
	if typ == recordFirst {
		// Judged on the bytes copied, not on the ring the peer may change.
		if l.fragAnswer = l.frag.answer(); l.asker && !l.fragAnswer {
			l.frag.unbegin()
			return errLeave // see Poll
		}
	}
	if msg == nil {
		return nil
	}
	return l.add(msg) // the batch keeps it until it is delivered
}

// isAnswer reports whether the envelope b is a reply or an error: its kind
// is its second byte (docs/envelope.md).
func isAnswer(b []byte) bool {
	return len(b) > 1 && (bus.Kind(b[1]) == bus.KindReply || bus.Kind(b[1]) == bus.KindError)
}

// batchMax bounds the records one poll takes, and so the envelopes of one
// batch handed to the bus.
const batchMax = 64

// inBatch is what the reader has taken from the ring and not yet handed to
// the bus: the envelopes, their headers decoded, and the bytes of the
// records they came in, which their Bodies alias. It is owned by the reader.
type inBatch struct {
	buf  []byte // copies of the records; never grown, so Bodies stay valid
	envs [batchMax]bus.Envelope
	n    int
}

// newInBatch returns a batch whose buffer holds at least two records of
// maxRecord bytes.
func newInBatch(maxRecord int) *inBatch {
	return &inBatch{buf: make([]byte, 0, max(32<<10, 2*maxRecord))}
}

// room reports whether a record of n bytes fits in the buffer.
func (b *inBatch) room(n int) bool { return len(b.buf)+n <= cap(b.buf) }

// copy copies a record out of shared memory into the buffer, which must
// have room for it, and returns the copy.
func (b *inBatch) copy(p []byte) []byte {
	at := len(b.buf)
	b.buf = append(b.buf, p...)
	return b.buf[at:len(b.buf):len(b.buf)]
}

// poll takes up to a batch of records from the ring and hands the bus
// every whole envelope among them, also those before a record that ends
// the link (err).
// Senders of the peer waiting for room are woken as soon as the records
// are copied out, before the bus takes them, once there is room enough
// (wakeRoom).
// pollMu is held.
func (l *link) poll() (int, error) {
	from := l.cons.pos
	n, err := l.cons.poll(batchMax, l.handle)
	if took := l.cons.pos - from; took != 0 || l.freed != 0 {
		l.wakeRoom(took, n < batchMax)
	}
	l.flush()
	return n, err
}

// wakeRoom wakes the peer's senders waiting for room, after a poll that
// took took bytes, once a quarter of the ring is free since they were
// first seen waiting or a poll found no more records (drained): a sender
// woken for one record's room fills it and sleeps again, each lap a
// futex wake-up here and a sleep there. A waiter always wakes: the
// reader polls until the ring is empty, freeing room as it goes, and a
// poll that takes nothing while freed bytes are owed is drained.
func (l *link) wakeRoom(took uint64, drained bool) {
	if !l.cons.roomWanted() {
		l.freed = 0
		return
	}
	if l.freed += took; l.freed >= l.cons.capacity/4 || drained {
		l.freed = 0
		shmsys.FutexWake(l.cons.w.room)
	}
}

// readerPoll is the reader's poll: it counts the records askers took since
// its last one (Poll) as taken by it. It does not wait for an asker that
// polls now (polled false): that asker takes what comes, and a reader
// that waited for the lock would park in the Go scheduler and need a
// wake-up. Only where it would park anyway does the reader wait (loop).
func (l *link) readerPoll() (n int, err error, polled bool) {
	if !l.pollMu.TryLock() {
		return 0, nil, false
	}
	n, err = l.poll()
	n += l.lent
	l.lent = 0
	l.pollMu.Unlock()
	return n, err, true
}

// loop polls, spins and parks until the link closes or the memory is
// corrupt.
func (l *link) loop() {
	sp := newSpinner()
	for {
		n, err, _ := l.readerPoll()
		if err != nil {
			l.Close(err)
			return
		}
		if n > 0 {
			l.beat.Add(1)
			sp.worked()
			runtime.Gosched() // let whom we readied (an asker, a worker) run before we poll again
			continue
		}
		if !sp.spin() {
			continue
		}
		if atOnce := sp.budget == 0; atOnce != l.parksAtOnce.Load() {
			l.parksAtOnce.Store(atOnce)
		}
		select {
		case <-l.done:
			return
		default:
		}
		// An asker polling now (delivering the replies it took on its
		// goroutine) leaves anything else to us: wait for it here, where
		// the reader would park anyway, instead of spinning on the lock.
		l.pollMu.Lock()
		err = l.cons.check()
		l.pollMu.Unlock()
		if err != nil {
			l.Close(err)
			return
		}
		seq := l.cons.prepareToPark()
		n, err, polled := l.readerPoll()
		if polled && n == 0 && err == nil {
			// Beat before each sleep: a parked reader still shows life
			// every slice, so an idle peer is never declared gone.
			l.beat.Add(1)
			shmsys.FutexWait(l.bellIn, seq, l.slice)
		}
		l.cons.unpark()
		if polled {
			sp.parked()
		}
		if err != nil {
			l.Close(err)
			return
		}
		if l.checkPeer(time.Now()) {
			return
		}
	}
}

// add decodes one whole envelope's header (in memory we own) into the
// batch, with its raw body, which the bus decodes when the batch is
// delivered (flush). pollMu is held.
func (l *link) add(b []byte) error {
	in := l.in
	// Decoded into the envelope of the last batch as it stands: a header
	// like the last one then only sets the body (EnvelopeDecoder.Decode).
	env := &in.envs[in.n]
	if err := l.names.Decode(b, env); err != nil {
		*env = bus.Envelope{}
		return err // poll delivers what came before it
	}
	if in.n++; in.n == batchMax {
		l.flush()
	}
	return nil
}

// flush hands the batch to the bus: with one DeliverBatch call when the
// host takes batches, else one Deliver per envelope. The bus decodes the
// bodies before it returns, so the buffer is free again.
func (l *link) flush() {
	in := l.in
	if in.n == 0 {
		in.buf = in.buf[:0]
		return
	}
	envs := in.envs[:in.n]
	if l.batch != nil {
		l.batch.DeliverBatch(l, envs)
	} else {
		for i := range envs {
			l.h.Deliver(l, &envs[i])
		}
	}
	for i := range envs { // the other fields hold only names, which the decoder keeps anyway
		envs[i].Headers, envs[i].Body, envs[i].Msg = nil, nil, nil
	}
	in.n, in.buf = 0, in.buf[:0]
}

// drainWait bounds how long end waits for a live peer's reader to take its
// last record before it hands back what that reader has not taken.
const drainWait = 2 * time.Second

// end accounts for every message still in the rings when the link ends,
// however it ends (the peer's exit or kill, a heartbeat timeout, Close):
// senders stop, so our tail is final; the reader delivers every complete
// record the peer left in our inbound ring (the peer's segment stays mapped
// until release) and marks drained; then, once the peer's reader marked
// drained too or the peer's process is gone, so that its head is final,
// the records it never took are handed back with Host.Undelivered. A peer
// alive that did not drain within drainWait (stopped, say, by SIGSTOP)
// may still take them when it resumes: its tells and publishes are handed
// back in doubt, and its asks not at all, so that they fail at LinkDown
// as asks that may have run instead of being placed again.
// The reader holds pollMu.
func (l *link) end() {
	l.Close(errLinkClosed)
	l.memMu.Lock() // waits for the senders writing now
	l.ending = true
	l.memMu.Unlock()
	if l.cons.check() == nil {
		// At most one ring's worth: a peer still writing cannot keep us here.
		for budget := l.cons.capacity; budget > 0; {
			from := l.cons.pos
			n, err := l.poll()
			if n == 0 || err != nil {
				break
			}
			budget -= min(budget, l.cons.pos-from)
		}
	}
	l.drained.Store(1)
	deadline := time.Now().Add(drainWait)
	if errors.Is(l.err, ErrCorrupt) {
		deadline = time.Time{} // a peer that broke the protocol is owed no wait
	}
	final := false // the peer's head: it drained, or its process is gone
	for {
		if l.peerDrained.Load() != 0 || l.peerPID > 0 && shmsys.ProcessGone(l.peerPID) {
			final = true
			break
		}
		if !time.Now().Before(deadline) {
			break
		}
		time.Sleep(100 * time.Microsecond)
	}
	reason := l.err
	if !final {
		reason = fmt.Errorf("%w: the peer's reader had not taken it when the link ended, and may yet: %w", ErrInDoubt, l.err)
	}
	l.handBack(reason, final)
}

// handBack hands the bus back each message between the peer's head and our
// tail: accepted by Send, not taken by the peer's reader, with reason.
// Unless the head is final, asks are not handed back (see end). The
// records are in our own segment, written by us: they are trusted, yet
// bounded anyway.
func (l *link) handBack(reason error, final bool) {
	p := l.prod
	head, tail := p.w.head.Load(), p.w.tail.Load()
	if head > tail || tail-head > p.capacity {
		return // the peer's head is impossible: it broke the protocol
	}
	var env bus.Envelope
	var first []byte // the first fragment of a message whose last is not yet seen
	for pos := head; pos < tail; {
		off := pos & p.mask
		if atomic64(p.data, off).Load() != p.stamp(pos) {
			return // claimed, never published: its Send failed
		}
		length := uint64(binary.LittleEndian.Uint32(p.data[off+8:]))
		typ := binary.LittleEndian.Uint32(p.data[off+12:])
		if recordHeaderLen+length > p.capacity-off {
			return
		}
		payload := p.data[off+recordHeaderLen : off+recordHeaderLen+length]
		switch typ {
		case recordPad:
			pos += p.capacity - off
			continue
		case recordData:
			l.handBackOne(&env, payload, reason, final)
		case recordFirst:
			if len(payload) >= fragHdr {
				first = payload[fragHdr:]
			}
		case recordLast:
			// A message counts once its last fragment is written: a Send
			// that stopped short returned an error. A last whose first the
			// peer took is in part with the peer, which drops it.
			if first != nil {
				l.handBackOne(&env, first, reason, final)
			}
			first = nil
		case recordAbort: // its Send returned an error
			first = nil
		}
		pos += align(recordHeaderLen+length, recordAlign)
	}
}

// handBackOne hands back the message whose encoding starts with b (a first
// fragment holds its header, enough to name its kind), with reason; an ask
// only if final.
func (l *link) handBackOne(env *bus.Envelope, b []byte, reason error, final bool) {
	*env = bus.Envelope{}
	if bus.DecodeEnvelope(b, env) != nil {
		if len(b) < 2 {
			return
		}
		*env = bus.Envelope{Kind: bus.Kind(b[1])} // a truncated header: its kind is at byte 1
	}
	if env.Kind == bus.KindAsk && !final {
		return
	}
	env.Body = nil
	l.h.Undelivered(l, env, reason)
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
