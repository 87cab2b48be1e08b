package bus

import (
	"encoding/binary"
	"fmt"
	"math"
	"time"
)

// Kind says what an envelope carries.
type Kind uint8

const (
	KindTell       Kind = iota + 1 // one-way message to an actor
	KindAsk                        // request; the receiver owes a reply or an error to From/Corr
	KindReply                      // the answer to an ask
	KindError                      // an ask failed; Msg is an error
	KindPublish                    // a message on a topic; To.Name is the subject
	KindStreamItem                 // one item of a stream
	KindStreamEnd                  // the end of a stream (Msg may be an error)
	KindCancel                     // the asker gave up: stop work on Corr
	KindSystem                     // bus-to-bus control (names, subscriptions and credit, heartbeats)
	kindMax
)

var kindNames = [...]string{"invalid", "tell", "ask", "reply", "error", "publish", "stream-item", "stream-end", "cancel", "system"}

func (k Kind) String() string {
	if k < kindMax {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Header is one key/value pair of envelope metadata.
type Header struct {
	Key, Value string
}

// Envelope is what travels between actors: an addressed message.
//
// Inside one process only Msg is used and nothing is encoded. When an envelope
// crosses a process boundary the transport encodes the header fields with
// AppendBinary and the body (Msg) with a Codec into Type and Body; the
// receiving side reverses both. The binary layout is specified in
// docs/envelope.md.
type Envelope struct {
	Kind Kind
	From Ref    // sender; zero when sent from outside any actor
	To   Ref    // destination; ID 0 means "any instance of To.Name"
	Corr uint64 // correlation id of an ask and its reply; unique per From.Node
	// Timeout is what was left of an ask's time when it was sent; 0 for
	// no deadline. It travels as this remaining budget, as gRPC's
	// grpc-timeout does, not as a time of day: hosts' clocks differ. The
	// receiver's deadline is the envelope's arrival plus Timeout.
	Timeout time.Duration
	Headers []Header // optional metadata
	// Codec names the codec Body is encoded with when it is not the
	// link's own (wire only); empty for the link's codec.
	Codec string
	Type  string // registered type name of the body (wire only)
	Body  []byte // encoded message (wire only)
	Msg   any    // the message value (in process, and after decoding)
}

// Header returns the value of the first header with key k.
func (e *Envelope) Header(k string) (string, bool) {
	for _, h := range e.Headers {
		if h.Key == k {
			return h.Value, true
		}
	}
	return "", false
}

// clearEnvelope zeroes *e field by field: storing a whole envelope (200
// bytes) takes the collector's bulk write barrier over all of it whenever
// it is marking, which a message's few pointer fields, stored one by one,
// do not.
func clearEnvelope(e *Envelope) {
	e.Kind, e.Corr, e.Timeout = 0, 0, 0
	setRef(&e.From, &Ref{})
	setRef(&e.To, &Ref{})
	e.Headers, e.Codec, e.Type, e.Body, e.Msg = nil, "", "", nil, nil
}

// copyHead sets every field of *dst but Body and Msg to *src's, field by
// field (see clearEnvelope).
func copyHead(dst, src *Envelope) {
	dst.Kind, dst.Corr, dst.Timeout, dst.Headers, dst.Codec, dst.Type = src.Kind, src.Corr, src.Timeout, src.Headers, src.Codec, src.Type
	setRef(&dst.From, &src.From)
	setRef(&dst.To, &src.To)
}

// setRef sets *dst to *src field by field, so that only Name's pointer
// takes a write barrier.
func setRef(dst, src *Ref) {
	dst.Node, dst.Name, dst.ID = src.Node, src.Name, src.ID
}

// Limits of the binary envelope header. They bound what a decoder allocates
// before it has checked anything else.
const (
	WireVersion    = 2    // 2: the deadline travels as a remaining budget
	MaxNameLen     = 1024 // bytes of an actor name or subject
	MaxTypeLen     = 512  // bytes of a type name
	MaxHeaders     = 64   // headers per envelope
	MaxHeaderBytes = 8192 // bytes of one header's key plus value
)

const (
	flagFrom    = 1 << 0
	flagTo      = 1 << 1
	flagTimeout = 1 << 2
	flagHeaders = 1 << 3
	flagCodec   = 1 << 4
	flagMask    = flagFrom | flagTo | flagTimeout | flagHeaders | flagCodec
)

// AppendBinary appends the binary form of e (header fields, Type and Body;
// never Msg) to dst. It fails only when a field is over its limit.
func (e *Envelope) AppendBinary(dst []byte) ([]byte, error) {
	dst, err := e.appendHeader(dst)
	if err != nil {
		return dst, err
	}
	return append(dst, e.Body...), nil
}

// appendHeader is AppendBinary without the body, which ends the binary
// form.
func (e *Envelope) appendHeader(dst []byte) ([]byte, error) {
	if e.Kind == 0 || e.Kind >= kindMax {
		return dst, fmt.Errorf("%w: kind %d", ErrBadEnvelope, e.Kind)
	}
	if len(e.From.Name) > MaxNameLen || len(e.To.Name) > MaxNameLen {
		return dst, fmt.Errorf("%w: name longer than %d bytes", ErrBadEnvelope, MaxNameLen)
	}
	if len(e.Type) > MaxTypeLen {
		return dst, fmt.Errorf("%w: type name longer than %d bytes", ErrBadEnvelope, MaxTypeLen)
	}
	if len(e.Codec) > MaxCodecLen {
		return dst, fmt.Errorf("%w: codec name longer than %d bytes", ErrBadEnvelope, MaxCodecLen)
	}
	if e.Timeout < 0 {
		return dst, fmt.Errorf("%w: negative timeout %v", ErrBadEnvelope, e.Timeout)
	}
	if len(e.Headers) > MaxHeaders {
		return dst, fmt.Errorf("%w: %d headers, at most %d", ErrBadEnvelope, len(e.Headers), MaxHeaders)
	}
	for _, h := range e.Headers {
		if len(h.Key)+len(h.Value) > MaxHeaderBytes {
			return dst, fmt.Errorf("%w: header %q longer than %d bytes", ErrBadEnvelope, h.Key, MaxHeaderBytes)
		}
	}
	var flags byte
	if !e.From.IsZero() {
		flags |= flagFrom
	}
	if !e.To.IsZero() {
		flags |= flagTo
	}
	if e.Timeout > 0 {
		flags |= flagTimeout
	}
	if len(e.Headers) > 0 {
		flags |= flagHeaders
	}
	if e.Codec != "" {
		flags |= flagCodec
	}
	dst = append(dst, WireVersion, byte(e.Kind), flags)
	if flags&flagFrom != 0 {
		dst = appendRef(dst, e.From)
	}
	if flags&flagTo != 0 {
		dst = appendRef(dst, e.To)
	}
	dst = binary.AppendUvarint(dst, e.Corr)
	if flags&flagTimeout != 0 {
		dst = binary.AppendUvarint(dst, uint64(e.Timeout))
	}
	if flags&flagHeaders != 0 {
		dst = binary.AppendUvarint(dst, uint64(len(e.Headers)))
		for _, h := range e.Headers {
			dst = appendString(dst, h.Key)
			dst = appendString(dst, h.Value)
		}
	}
	if flags&flagCodec != 0 {
		dst = appendString(dst, e.Codec)
	}
	return appendString(dst, e.Type), nil
}

func appendRef(dst []byte, r Ref) []byte {
	dst = append(dst, r.Node[:]...)
	dst = binary.AppendUvarint(dst, r.ID)
	return appendString(dst, r.Name)
}

func appendString(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

// DecodeEnvelope parses one binary envelope that fills data exactly. It
// treats data as hostile: every length is checked against the limits and the
// bytes that remain before anything is allocated, and a bad envelope is an
// error wrapping ErrBadEnvelope, never a panic. e.Body aliases data; copy it
// if data will be reused. e.Msg is left nil.
func DecodeEnvelope(data []byte, e *Envelope) error {
	var nd *EnvelopeDecoder
	return nd.Decode(data, e)
}

// EnvelopeDecoder decodes envelopes like DecodeEnvelope, but hands out one
// copy of each short string (actor names, type names, header keys) it has
// seen recently, so that a link's reader receiving the same names over and
// over allocates them once. Its cache is a direct-mapped table of 256
// strings indexed by length and end bytes: its size is fixed whatever a peer
// sends, and a hit costs one comparison. The zero value is ready; a nil
// *EnvelopeDecoder copies every string. It belongs to one goroutine.
//
// It also keeps the header of the last envelope it decoded that was not an
// ask or an answer (Corr 0) and had no headers: an envelope whose bytes
// begin with that header's bytes has that header (the encoding reads it
// front to back and nothing after it), so a stream of tells from one
// sender to one actor decodes each header with one comparison.
type EnvelopeDecoder struct {
	names   [256]string
	last    [maxLastHeader]byte // the last header's bytes: last[:lastLen]
	lastLen int                 // 0: none kept
	lastEnv Envelope            // it decoded, without Body
}

// maxLastHeader is the longest envelope header an EnvelopeDecoder keeps.
const maxLastHeader = 192

// maxInternedLen is the longest string an EnvelopeDecoder keeps.
const maxInternedLen = 128

func (nd *EnvelopeDecoder) intern(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	if nd == nil || len(b) > maxInternedLen {
		return string(b)
	}
	slot := &nd.names[(uint(len(b))*7+uint(b[0])*3+uint(b[len(b)-1]))&255]
	if *slot == string(b) { // the comparison does not allocate
		return *slot
	}
	*slot = string(b)
	return *slot
}

// Decode parses one binary envelope that fills data exactly; see
// DecodeEnvelope.
func (nd *EnvelopeDecoder) Decode(data []byte, e *Envelope) error {
	if nd != nil && nd.lastLen > 0 && len(data) >= nd.lastLen && string(data[:nd.lastLen]) == string(nd.last[:nd.lastLen]) {
		if !nd.holdsLast(e) {
			copyHead(e, &nd.lastEnv) // with no Corr and no Headers
			e.Msg = nil
		}
		e.Body = nil
		if len(data) > nd.lastLen {
			e.Body = data[nd.lastLen:]
		}
		return nil
	}
	err := nd.decode(data, e)
	if nd != nil && err == nil && e.Corr == 0 && e.Headers == nil {
		if n := len(data) - len(e.Body); n <= maxLastHeader {
			nd.lastLen = copy(nd.last[:], data[:n])
			nd.lastEnv = *e
			nd.lastEnv.Body = nil
		}
	}
	return err
}

// holdsLast reports whether e holds the last header already, and no
// headers or message: a reader decoding into the envelopes of its last
// batch then only sets the body, instead of copying a whole envelope,
// whose pointers cost write barriers while the collector runs.
func (nd *EnvelopeDecoder) holdsLast(e *Envelope) bool {
	h := &nd.lastEnv
	return e.Corr == h.Corr && e.Timeout == h.Timeout && e.Headers == nil && e.Msg == nil && SameHeader(h, e)
}

// decode is Decode without the last header.
func (nd *EnvelopeDecoder) decode(data []byte, e *Envelope) error {
	d := decoder{b: data, names: nd}
	if len(data) < 3 {
		return fmt.Errorf("%w: %d bytes, shorter than the 3-byte prefix", ErrBadEnvelope, len(data))
	}
	if data[0] != WireVersion {
		return fmt.Errorf("%w: envelope version %d, want %d", ErrBadEnvelope, data[0], WireVersion)
	}
	kind, flags := Kind(data[1]), data[2]
	if kind == 0 || kind >= kindMax {
		return fmt.Errorf("%w: unknown kind %d", ErrBadEnvelope, data[1])
	}
	if flags&^flagMask != 0 {
		return fmt.Errorf("%w: unknown flags %#x", ErrBadEnvelope, flags)
	}
	d.b = data[3:]
	clearEnvelope(e)
	e.Kind = kind
	if flags&flagFrom != 0 {
		e.From = d.ref()
	}
	if flags&flagTo != 0 {
		e.To = d.ref()
	}
	e.Corr = d.uvarint()
	if flags&flagTimeout != 0 {
		if t := d.uvarint(); t > math.MaxInt64 {
			d.fail("timeout of %d ns overflows", t)
		} else {
			e.Timeout = time.Duration(t)
		}
	}
	if flags&flagHeaders != 0 {
		n := d.uvarint()
		if n == 0 || n > MaxHeaders || n*2 > uint64(len(d.b)) {
			d.fail("header count %d, want 1..%d within %d bytes", n, MaxHeaders, len(d.b))
		} else if d.err == nil {
			e.Headers = make([]Header, 0, n)
			for range n {
				k := d.string(MaxHeaderBytes)
				v := d.string(MaxHeaderBytes - len(k))
				if d.err != nil {
					break
				}
				e.Headers = append(e.Headers, Header{k, v})
			}
		}
	}
	if flags&flagCodec != 0 {
		if e.Codec = d.string(MaxCodecLen); e.Codec == "" {
			d.fail("empty codec name")
		}
	}
	e.Type = d.string(MaxTypeLen)
	if d.err != nil {
		return d.err
	}
	if len(d.b) > 0 {
		e.Body = d.b
	}
	return nil
}

// decoder reads varints and strings from a bounded buffer; the first error
// sticks and every later read returns zero.
type decoder struct {
	b     []byte
	names *EnvelopeDecoder // where strings come from; nil: copied
	err   error
}

func (d *decoder) fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: "+format, append([]any{ErrBadEnvelope}, args...)...)
	}
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail("bad varint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) string(max int) string {
	n := d.uvarint()
	if d.err != nil {
		return ""
	}
	if n > uint64(max) || n > uint64(len(d.b)) {
		d.fail("string of %d bytes, limit %d, %d left", n, max, len(d.b))
		return ""
	}
	s := d.names.intern(d.b[:n])
	d.b = d.b[n:]
	return s
}

func (d *decoder) ref() Ref {
	if d.err != nil {
		return Ref{}
	}
	if len(d.b) < len(NodeID{}) {
		d.fail("truncated node id")
		return Ref{}
	}
	var r Ref
	copy(r.Node[:], d.b)
	d.b = d.b[len(r.Node):]
	r.ID = d.uvarint()
	r.Name = d.string(MaxNameLen)
	return r
}
