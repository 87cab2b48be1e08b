package bus

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/xbus-dev/xbus/bus/internal/flow"
	"github.com/xbus-dev/xbus/bus/placement"
	"github.com/xbus-dev/xbus/mailbox"
)

// Streams (docs/streaming.md; the wire form in docs/wire.md).
//
// OpenStream places a name once, as an Ask would, and the stream stays on
// the instance it reached: the actor there receives the *Stream as a
// message and owns its other end. Each end has a flow.Receiver for what it
// reads and a flow.Sender for what it writes, so each direction has its own
// window: a sender with no credit waits, and a reader that stops costs at
// most a window held at its end. In process the two ends call each other;
// across a link they exchange envelopes on the link the stream opened on,
// and only that link: the table below is keyed by link and stream id.

// DefaultStreamWindow is the number of items one end of a stream accepts
// ahead of its reader when no option sets it (StreamWindow,
// WithStreamWindow).
const DefaultStreamWindow = 64

// maxStreamsPerLink bounds the streams one peer may have open on one link,
// so that a peer that opens streams and never ends them costs bounded
// memory here.
const maxStreamsPerLink = 1 << 14

// StreamOption configures one stream (OpenStream).
type StreamOption func(*streamConfig)

type streamConfig struct {
	window int
}

// StreamWindow sets how many items the opening end accepts ahead of its
// reader: what the far end may have in flight toward it. 1 to 2^20; zero
// keeps the bus's (WithStreamWindow).
func StreamWindow(n int) StreamOption {
	return func(c *streamConfig) { c.window = n }
}

// WithStreamWindow sets the window of every stream end of this bus that no
// StreamWindow option sets: those it opens and those its actors accept.
// Zero: DefaultStreamWindow.
func WithStreamWindow(n int) Option {
	return func(c *config) { c.streamWindow = n }
}

// sysStreamGrant grants N more items to the receiver's end of stream ID on
// the link it travels on.
type sysStreamGrant struct {
	ID uint64 `json:"i" cbor:"1,keyasint"`
	N  uint64 `json:"n" cbor:"2,keyasint"`
}

const sysStreamGrantType = "xbus.sgrant"

func registerStreamTypes(t *Types) error {
	return RegisterType[*sysStreamGrant](t, sysStreamGrantType)
}

// Stream is one end of a stream between two actors, or between a caller
// and an actor: items both ways, each direction with its own credit, an
// end per direction (CloseSend), and cancellation of the whole (Close).
//
// The end that OpenStream returns belongs to its caller; the other end
// arrives at the actor the stream reached, as a message of type *Stream,
// and belongs to that actor. Msg is the message the stream was opened
// with, Headers its metadata, and Context ends with the stream: when
// either end closes it, its deadline passes, the link it runs on goes
// down or the bus closes.
//
// One goroutine may Send while another Recvs; Sends are serialized, so
// items leave in the order their Sends returned. CloseSend and Close may
// come from any goroutine: a Send waiting for credit then fails.
type Stream struct {
	b       *Bus
	msg     any
	headers []Header
	ctx     context.Context
	stop    func()  // releases ctx's resources; finish calls it
	other   *Stream // the other end, in process
	link    Link    // the link the stream runs on; nil in process
	codec   Codec   // what its items are encoded with on link; nil: link's
	id      uint64
	stats   *placement.Stats // the load the stream counts in; nil for none

	sendMu sync.Mutex // one Send at a time, so that items leave in order

	mu       sync.Mutex
	recv     flow.Receiver
	buf      []any // received, not read yet: at most the window
	snd      flow.Sender
	wake     chan struct{} // closed on any change a waiter may wait for
	recvDone bool          // the other end sent its end
	recvErr  error         // with this error (nil: io.EOF)
	sendDone bool          // this end sent its end
	err      error         // why the stream was ended early; nil if it was not
	finished bool
	endErr   error // Err, fixed as the stream finished
}

// errStreamFinished is the cause a finished stream's context carries.
var errStreamFinished = errors.New("bus: stream ended")

func (b *Bus) newStream(window int) (*Stream, error) {
	if window == 0 {
		window = b.streamWindow
	}
	r, err := flow.NewReceiver(window)
	if err != nil {
		return nil, fmt.Errorf("bus: stream window: %w", err)
	}
	return &Stream{b: b, recv: r}, nil
}

// arm gives s its context: under parent, ending at deadline when it is not
// zero. When it ends for any reason but the stream's own finish, the
// stream is ended with that reason and the other end told.
func (s *Stream) arm(parent context.Context, deadline time.Time) {
	ctx, cancel := context.WithCancelCause(parent)
	s.ctx, s.stop = ctx, func() { cancel(errStreamFinished) }
	if !deadline.IsZero() {
		dctx, dcancel := context.WithDeadline(ctx, deadline)
		s.ctx, s.stop = dctx, func() { dcancel(); cancel(errStreamFinished) }
	}
	context.AfterFunc(s.ctx, func() {
		if context.Cause(ctx) == errStreamFinished {
			return
		}
		s.abort(ctxError(s.ctx.Err()), true)
	})
}

// Msg is the message the stream was opened with (nil for none).
func (s *Stream) Msg() any { return s.msg }

// Headers is the stream's metadata, set by its opener (WithHeaders).
func (s *Stream) Headers() []Header { return s.headers }

// Context ends when the stream does; at the accepting end it carries the
// opener's deadline.
func (s *Stream) Context() context.Context { return s.ctx }

// Err is why the stream ended, once its Context is done, as Recv reports
// it after the last item: nil where Recv returns io.EOF (the other end
// closed its sending cleanly), the error the other end closed it with, or
// why it ended before the other end closed (Close here, a cancel from the
// other end, its context's end, a lost link). Before the end it is nil.
func (s *Stream) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.finished {
		return s.endErr
	}
	err := s.ctx.Err()
	switch {
	case err == nil:
		return nil
	case s.recvDone:
		return s.recvErr
	case s.err != nil:
		return s.err
	}
	return ctxError(err) // ended by its context: what arm's abort, on its way, ends it with
}

// Buffered is the number of items that arrived and were not read yet;
// never more than the window.
func (s *Stream) Buffered() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.buf)
}

// signal wakes every waiter; mu must be held.
func (s *Stream) signal() {
	if s.wake != nil {
		close(s.wake)
		s.wake = nil
	}
}

// waitChan returns a channel closed on the next change; mu must be held.
func (s *Stream) waitChan() chan struct{} {
	if s.wake == nil {
		s.wake = make(chan struct{})
	}
	return s.wake
}

// Send sends msg to the other end. It waits while the other end has no
// room for it (its window is in flight or unread), bounded by ctx. It fails
// once this end was closed for sending (CloseSend, Close) or the stream
// ended: with the reason it ended.
func (s *Stream) Send(ctx context.Context, msg any) error {
	s.sendMu.Lock()
	defer s.sendMu.Unlock()
	for {
		s.mu.Lock()
		if s.err != nil {
			err := s.err
			s.mu.Unlock()
			return err
		}
		if s.sendDone {
			s.mu.Unlock()
			return fmt.Errorf("%w: the stream was closed for sending", ErrClosed)
		}
		if s.snd.Send() == nil {
			s.mu.Unlock()
			break
		}
		w := s.waitChan()
		s.mu.Unlock()
		select {
		case <-w:
		case <-ctx.Done():
			return ctxError(ctx.Err())
		}
	}
	if s.other != nil {
		if err := s.other.onItem(msg); err != nil {
			s.b.deadLetter(msg, Ref{}, Ref{}, err) // the other end closed meanwhile
		}
		return nil
	}
	o := getOutgoing()
	o.env = Envelope{Kind: KindStreamItem, Corr: s.id, Msg: msg}
	o.codec = s.codec
	if err := s.b.sendOut(ctx, s.link, o, s.b.sendTimeout); err != nil {
		// The item took its credit and never left: the two ends' counts
		// no longer agree, so the stream cannot go on.
		s.abort(err, true)
		return err
	}
	return nil
}

// Recv returns the next item from the other end, waiting for one bounded
// by ctx. After the last item it returns io.EOF if the other end closed
// its sending cleanly (and only then: no other error matches io.EOF), the error it closed with if not, or the reason the
// stream ended early.
func (s *Stream) Recv(ctx context.Context) (any, error) {
	for {
		s.mu.Lock()
		if len(s.buf) > 0 {
			m := s.buf[0]
			s.buf[0] = nil
			s.buf = s.buf[1:]
			grant := s.recv.Consume()
			s.mu.Unlock()
			if grant > 0 {
				s.grant(grant)
			}
			return m, nil
		}
		if s.recvDone {
			err := s.recvErr
			s.mu.Unlock()
			if err == nil {
				return nil, io.EOF
			}
			return nil, err
		}
		if s.err != nil {
			err := s.err
			s.mu.Unlock()
			return nil, err
		}
		w := s.waitChan()
		s.mu.Unlock()
		select {
		case <-w:
		case <-ctx.Done():
			return nil, ctxError(ctx.Err())
		}
	}
}

// CloseSend ends this end's sending: the other end reads what was sent,
// then err from its Recv, or io.EOF when err is nil. Recv goes on here.
func (s *Stream) CloseSend(err error) error {
	s.mu.Lock()
	if s.err != nil || s.sendDone {
		e := s.err
		s.mu.Unlock()
		return e
	}
	s.sendDone = true
	s.snd.Close(nil)
	s.signal() // a Send waiting for credit returns
	s.mu.Unlock()
	s.sendMu.Lock() // after an item being sent now
	e := s.sendEnd(err)
	s.sendMu.Unlock()
	s.mu.Lock()
	done := s.recvDone
	s.mu.Unlock()
	if done {
		s.finish()
	}
	return e
}

// Close ends the stream from this end: unless it was already, its sending
// is closed with err (the other end's Recv returns err after what was
// sent, io.EOF when err is nil), and unless the other end closed its
// sending, the other end is told that nothing more is read here (its
// Sends fail, its Context ends). Close is idempotent.
func (s *Stream) Close(err error) {
	s.mu.Lock()
	if s.finished {
		s.mu.Unlock()
		return
	}
	sendOpen, recvOpen := !s.sendDone && s.err == nil, !s.recvDone
	s.sendDone = true
	if recvOpen && s.err == nil {
		s.err = fmt.Errorf("%w: the stream was closed", ErrCanceled)
	}
	s.snd.Close(nil)
	s.recv.Close(nil)
	s.signal()
	s.mu.Unlock()
	if sendOpen {
		s.sendMu.Lock() // after an item being sent now
		_ = s.sendEnd(err)
		s.sendMu.Unlock()
	}
	if recvOpen {
		reason := err
		if reason == nil {
			reason = fmt.Errorf("%w: the other end closed the stream", ErrCanceled)
		}
		s.sendCancel(reason)
	}
	s.finish()
}

// abort ends the stream early for reason; notify tells the other end.
func (s *Stream) abort(reason error, notify bool) {
	reason = notEOF(reason)
	s.mu.Lock()
	if s.finished || s.err != nil {
		s.mu.Unlock()
		return
	}
	s.err = reason
	s.snd.Close(reason)
	s.recv.Close(reason)
	s.signal()
	s.mu.Unlock()
	if notify {
		s.sendCancel(reason)
	}
	s.finish()
}

// notEOF returns err, or when it matches io.EOF (a link whose socket read
// EOF ended with it) an error of the same code and text that does not: a
// reader takes io.EOF for the other end's clean end.
func notEOF(err error) error {
	if !errors.Is(err, io.EOF) {
		return err
	}
	return &RemoteError{Code: CodeOf(err), Text: err.Error()}
}

// finish releases what the stream holds once, when both directions ended
// or the stream was ended early: its entry in the bus's table, its count
// in its instance's load, its context.
func (s *Stream) finish() {
	s.mu.Lock()
	if s.finished {
		s.mu.Unlock()
		return
	}
	s.finished = true
	s.endErr = s.err
	if s.recvDone { // as Recv reports it; an end that arrives later changes nothing
		s.endErr = s.recvErr
	}
	s.mu.Unlock()
	s.b.streams.remove(s)
	if s.stats != nil {
		s.stats.Add(-1)
	}
	if s.stop != nil {
		s.stop()
	}
}

// onItem takes an item the other end sent: an error wrapping
// flow.ErrOverflow means it had no credit for it (it lies), one wrapping
// flow.ErrClosed that this end is closed (the item is dropped).
func (s *Stream) onItem(msg any) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.recv.Receive(); err != nil {
		return err
	}
	s.buf = append(s.buf, msg)
	s.signal()
	return nil
}

// onGrant adds credit the other end granted; an error means it granted
// more than a window holds (it lies).
func (s *Stream) onGrant(n uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.snd.Grant(n); err != nil {
		return err
	}
	s.signal()
	return nil
}

// onEnd takes the other end's end of its sending. A stream this end
// already ended early (Close, abort) ignores it, so an end that answers
// this end's own close of sending cannot turn its Err into a clean end.
func (s *Stream) onEnd(err error) {
	s.mu.Lock()
	if s.recvDone || s.err != nil {
		s.mu.Unlock()
		return
	}
	s.recvDone, s.recvErr = true, err
	s.recv.Close(nil)
	done := s.sendDone
	s.signal()
	s.mu.Unlock()
	if done {
		s.finish()
	}
}

// grant gives the other end n more credit.
func (s *Stream) grant(n uint32) {
	if s.other != nil {
		_ = s.other.onGrant(uint64(n))
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.b.sendTimeout)
	defer cancel()
	err := s.b.sendOn(ctx, s.link, &Envelope{Kind: KindSystem, Msg: &sysStreamGrant{ID: s.id, N: uint64(n)}})
	if err != nil && !errors.Is(err, ErrPeerGone) {
		s.abort(err, true) // the other end would wait for this credit for ever
	}
}

// sendEnd tells the other end this end sends nothing more; sendMu must be
// held, so that the end follows every item.
func (s *Stream) sendEnd(err error) error {
	if s.other != nil {
		s.other.onEnd(err)
		return nil
	}
	env := Envelope{Kind: KindStreamEnd, Corr: s.id}
	if err != nil {
		env.Msg = err
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.b.sendTimeout)
	defer cancel()
	return s.b.sendOn(ctx, s.link, &env)
}

// sendCancel tells the other end the stream ended early, for reason.
func (s *Stream) sendCancel(reason error) {
	if s.other != nil {
		s.other.abort(reason, false)
		return
	}
	s.b.sendCancel(s.link, s.id, reason)
}

// sendCancel sends a cancel of stream id with reason on l, without waiting
// when l has room, else from a goroutine of its own, bounded by
// replyTimeout.
func (b *Bus) sendCancel(l Link, id uint64, reason error) {
	env := Envelope{Kind: KindCancel, Corr: id, Msg: reason}
	e := b.sendOn(noWait, l, &env)
	if e == nil || errors.Is(e, ErrPeerGone) {
		return
	}
	b.tasks.Go(func() {
		ctx, cancel := context.WithTimeout(context.Background(), replyTimeout)
		defer cancel()
		_ = b.sendOn(ctx, l, &Envelope{Kind: KindCancel, Corr: id, Msg: reason})
	})
}

// OpenStream opens a stream to a Ref or a name, with msg as its first
// message (nil for none), and returns the caller's end. A name is placed
// among its instances as an Ask is, once: the stream stays on the instance
// it reached, and counts in that instance's load while it is open. The
// actor there receives the other end as a message of type *Stream.
//
// ctx bounds the whole stream: when it ends, the stream ends and the other
// end is told (its Context ends); its deadline travels to the other end.
// Across a link OpenStream returns once the stream is sent; a refusal there
// (no such actor, a full mailbox, a body that does not decode) arrives as
// the error of the first Send or Recv.
func (b *Bus) OpenStream(ctx context.Context, to any, msg any, opts ...StreamOption) (*Stream, error) {
	if b.closing.Load() {
		return nil, ErrClosed
	}
	var cfg streamConfig
	for _, o := range opts {
		o(&cfg)
	}
	pl, err := b.targetWait(ctx, to, 0, nil)
	if err != nil {
		return nil, err
	}
	if pl.p != nil {
		return b.openLocal(ctx, pl.p, msg, cfg)
	}
	return b.openRemote(ctx, pl, msg, cfg)
}

// openLocal opens a stream to p, in process: two ends that call each other.
func (b *Bus) openLocal(ctx context.Context, p *process, msg any, cfg streamConfig) (*Stream, error) {
	a, err := b.newStream(cfg.window)
	if err != nil {
		return nil, err
	}
	z, _ := b.newStream(0)
	a.other, z.other = z, a
	_ = a.snd.Grant(uint64(z.recv.Window()))
	_ = z.snd.Grant(uint64(a.recv.Window()))
	z.msg, z.headers = msg, headersOf(ctx)
	dl, _ := ctx.Deadline()
	z.arm(context.Background(), dl)
	a.stats = &p.stats
	p.stats.Add(1)
	b.streams.addLocal(a)
	a.arm(ctx, time.Time{})
	if err := p.send(ctx, tellOf(z, nil), mailbox.Default); err != nil {
		a.abort(err, true)
		return nil, err
	}
	return a, nil
}

// openRemote opens a stream to the actor pl names on a peer: the open (a
// stream item with To), then this end's window as a grant, on the nearest
// link as read inside its peer's send gate (enterPeer), which the stream
// keeps.
func (b *Bus) openRemote(ctx context.Context, pl placed, msg any, cfg streamConfig) (*Stream, error) {
	to := pl.remote
	pr, l, e := b.enterPeer(nil, to.Node, KindStreamItem)
	if l == nil {
		return nil, noLinkTo(to)
	}
	defer pr.gate.exit(e)
	var timeout time.Duration
	if dl, ok := ctx.Deadline(); ok {
		if timeout = time.Until(dl); timeout <= 0 {
			return nil, ctxError(context.DeadlineExceeded)
		}
	}
	s, err := b.newStream(cfg.window)
	if err != nil {
		return nil, err
	}
	s.link, s.id = l, b.nextCorr()
	if pl.in != nil {
		s.stats = pl.in.stats
		s.stats.Add(1)
	}
	s.arm(ctx, time.Time{}) // before the table makes s visible to the link's reader
	if err := b.streams.addFrom(s); err != nil {
		s.finish()
		return nil, fmt.Errorf("%w: %d streams open on that link", ErrMailboxFull, maxStreamsPerLink)
	}
	hs, c := wireOptionsOf(ctx)
	if c != nil {
		b.codecs.learn(c) // the other end's items come back in c
		s.codec = c
	}
	o := getOutgoing()
	o.env = Envelope{Kind: KindStreamItem, From: Ref{Node: b.id}, To: to, Corr: s.id, Timeout: timeout, Headers: hs, Msg: msg}
	o.codec = c
	if err := b.sendOut(ctx, l, o, b.sendTimeout); err != nil {
		s.abort(err, false)
		return nil, neverRan(err)
	}
	err = b.sendOn(ctx, l, &Envelope{Kind: KindSystem, Msg: &sysStreamGrant{ID: s.id, N: uint64(s.recv.Window())}})
	if err != nil {
		s.abort(err, true)
		return nil, err
	}
	return s, nil
}

// acceptRemote takes a stream a peer opened on l: it finds the actor (the
// instance To names, or one of To.Name's here), grants this end's window
// and queues the stream for the actor, without waiting (Deliver runs on
// the link's reader). A refusal goes back as a cancel with the reason.
func (b *Bus) acceptRemote(l Link, env *Envelope) {
	if env.Corr == 0 {
		b.deadLetter(env.Msg, env.To, env.From, fmt.Errorf("%w: a stream opened with id 0", ErrBadEnvelope))
		return
	}
	refuse := func(err error) {
		b.sendCancel(l, env.Corr, err)
		b.deadLetter(env.Msg, env.To, env.From, err)
	}
	var p *process
	if env.To.ID != 0 {
		if env.To.Node == b.id {
			p = b.procs.get(env.To.ID)
		}
	} else {
		p = b.placeLocal(env.To.Name)
	}
	if p == nil {
		refuse(fmt.Errorf("%w: %s", ErrNoRoute, env.To))
		return
	}
	s, _ := b.newStream(0)
	s.link, s.id, s.msg, s.headers = l, env.Corr, env.Msg, env.Headers
	// Items go back in the actor's reply codec, else in the open's.
	if s.codec = p.opts.replyTo; s.codec == nil && env.Codec != "" {
		s.codec, _ = b.codecFor(l, env.Codec) // known: the open decoded
	}
	var dl time.Time
	if env.Timeout > 0 {
		dl = time.Now().Add(env.Timeout)
	}
	s.stats = &p.stats
	p.stats.Add(1)
	s.arm(context.Background(), dl) // before the table makes s visible
	switch b.streams.addFrom(s) {
	case errStreamDup:
		s.finish()
		err := fmt.Errorf("%w: stream %d opened twice", ErrBadEnvelope, env.Corr)
		b.deadLetter(env.Msg, env.To, env.From, err)
		b.log.Warn("a peer opened a stream it has open; closing its link", "peer", l.Peer().Short())
		l.Close(err)
		return
	case errStreamsFull:
		s.finish()
		refuse(fmt.Errorf("%w: %d streams open on this link", ErrMailboxFull, maxStreamsPerLink))
		return
	}
	g := &Envelope{Kind: KindSystem, Msg: &sysStreamGrant{ID: s.id, N: uint64(s.recv.Window())}}
	if e := b.sendOn(noWait, l, g); e != nil && !errors.Is(e, ErrPeerGone) {
		b.tasks.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), replyTimeout)
			defer cancel()
			if err := b.sendOn(ctx, l, g); err != nil {
				s.abort(err, true)
			}
		})
	}
	pol := mailbox.Default
	if p.mb.Options().Policy == mailbox.Block {
		pol = mailbox.FailFast
	}
	if err := p.send(context.Background(), tellOf(s, nil), pol); err != nil {
		s.abort(err, true)
		b.deadLetter(env.Msg, env.To, env.From, err)
	}
}

// deliverStream takes a stream item or end that arrived on l. An open (an
// item with To) goes to acceptRemote. An item or end of a stream l does
// not carry (it ended, or never was, or runs on another link) is a dead
// letter; an item beyond the credit granted closes the link.
func (b *Bus) deliverStream(l Link, env *Envelope) {
	if env.Kind == KindStreamItem && !env.To.IsZero() {
		b.acceptRemote(l, env)
		return
	}
	s := b.streams.get(l, env.Corr)
	if s == nil {
		b.deadLetter(env.Msg, env.To, Ref{Node: l.Peer()}, fmt.Errorf("%w: no stream %d on this link", ErrNoRoute, env.Corr))
		return
	}
	if env.Kind == KindStreamEnd {
		err, _ := env.Msg.(error)
		s.onEnd(err)
		return
	}
	err := s.onItem(env.Msg)
	switch {
	case err == nil:
	case errors.Is(err, flow.ErrOverflow):
		err = fmt.Errorf("%w: stream %d: %w", ErrBadEnvelope, s.id, err)
		b.deadLetter(env.Msg, Ref{}, Ref{Node: l.Peer()}, err)
		b.log.Warn("a peer sent a stream item beyond the credit granted; closing its link", "peer", l.Peer().Short(), "err", err)
		l.Close(err)
	default:
		b.deadLetter(env.Msg, Ref{}, Ref{Node: l.Peer()}, err)
	}
}

// streamCanceled ends the stream corr on l, if l carries one, with the
// reason the peer gave.
func (b *Bus) streamCanceled(l Link, env *Envelope) {
	s := b.streams.get(l, env.Corr)
	if s == nil {
		return
	}
	reason, _ := env.Msg.(error)
	if reason == nil {
		reason = fmt.Errorf("%w: the other end canceled the stream", ErrCanceled)
	}
	s.abort(reason, false)
}

// onStreamGrant adds a peer's grant to the stream it names on l; one
// beyond the largest window closes the link.
func (b *Bus) onStreamGrant(l Link, m *sysStreamGrant) {
	s := b.streams.get(l, m.ID)
	if s == nil {
		return // ended; the grant crossed the end
	}
	if err := s.onGrant(m.N); err != nil {
		err = fmt.Errorf("%w: stream %d: %w", ErrBadEnvelope, m.ID, err)
		b.log.Warn("a peer granted more stream credit than a window holds; closing its link", "peer", l.Peer().Short(), "err", err)
		l.Close(err)
	}
}

// streamUndecodable ends the stream an envelope whose body does not decode
// belongs to, telling the other end why: the item is lost, so the stream
// cannot go on. An open is refused.
func (b *Bus) streamUndecodable(l Link, env *Envelope, err error) {
	if env.Kind == KindStreamItem && !env.To.IsZero() {
		b.sendCancel(l, env.Corr, err)
		return
	}
	if s := b.streams.get(l, env.Corr); s != nil {
		s.abort(err, true)
	}
}

// streamTable is the bus's open streams: those on links by link and id,
// and the caller's ends of those in process. A stream is in it from its
// open to its finish.
type streamTable struct {
	mu    sync.Mutex
	byKey map[streamKey]*Stream
	perL  map[Link]int
	local map[*Stream]struct{}
}

type streamKey struct {
	link Link
	id   uint64
}

var (
	errStreamDup   = errors.New("duplicate stream")
	errStreamsFull = errors.New("too many streams")
)

// addFrom enters s, a stream on a link, unless one with its key is there
// or its link has maxStreamsPerLink open.
func (t *streamTable) addFrom(s *Stream) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	k := streamKey{s.link, s.id}
	if t.byKey[k] != nil {
		return errStreamDup
	}
	if t.perL[s.link] >= maxStreamsPerLink {
		return errStreamsFull
	}
	if t.byKey == nil {
		t.byKey, t.perL = map[streamKey]*Stream{}, map[Link]int{}
	}
	t.byKey[k] = s
	t.perL[s.link]++
	return nil
}

func (t *streamTable) addLocal(s *Stream) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.local == nil {
		t.local = map[*Stream]struct{}{}
	}
	t.local[s] = struct{}{}
}

func (t *streamTable) get(l Link, id uint64) *Stream {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.byKey[streamKey{l, id}]
}

func (t *streamTable) remove(s *Stream) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if s.link == nil {
		delete(t.local, s)
		return
	}
	k := streamKey{s.link, s.id}
	if t.byKey[k] == s {
		delete(t.byKey, k)
		if t.perL[s.link]--; t.perL[s.link] <= 0 {
			delete(t.perL, s.link)
		}
	}
}

// on returns the streams running on l.
func (t *streamTable) on(l Link) []*Stream {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.perL[l] == 0 {
		return nil
	}
	var out []*Stream
	for k, s := range t.byKey {
		if k.link == l {
			out = append(out, s)
		}
	}
	return out
}

// busy reports whether a stream runs on l.
func (t *streamTable) busy(l Link) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.perL[l] > 0
}

func (t *streamTable) all() []*Stream {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]*Stream, 0, len(t.byKey)+len(t.local))
	for _, s := range t.byKey {
		out = append(out, s)
	}
	for s := range t.local {
		out = append(out, s)
	}
	return out
}

// streamsDown ends every stream on l, which went down with reason.
func (b *Bus) streamsDown(l Link, reason error) {
	for _, s := range b.streams.on(l) {
		s.abort(reason, false)
	}
}

// closeStreams ends every open stream as the bus closes: those in process
// at both ends, those on links here (the links' end tells their peers).
func (b *Bus) closeStreams() {
	for _, s := range b.streams.all() {
		s.abort(ErrClosed, s.link == nil)
	}
}
