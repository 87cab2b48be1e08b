package netbus

import (
	"encoding/binary"
	"fmt"

	"github.com/xbus-dev/xbus/bus"
)

// decodeEnvelope is bus.DecodeEnvelope with the strings (actor names, type
// names, headers) taken from in, so that a reader receiving the same names
// over and over allocates them once. It accepts and rejects exactly what
// bus.DecodeEnvelope does (FuzzEnvelopeDecoder holds the two to that) and
// fills e the same way; e.Body aliases data.
func decodeEnvelope(data []byte, e *bus.Envelope, in *interner) error {
	if len(data) < 3 {
		return fmt.Errorf("%w: %d bytes, shorter than the 3-byte prefix", bus.ErrBadEnvelope, len(data))
	}
	if data[0] != bus.WireVersion {
		return fmt.Errorf("%w: envelope version %d, want %d", bus.ErrBadEnvelope, data[0], bus.WireVersion)
	}
	kind, flags := bus.Kind(data[1]), data[2]
	if kind < bus.KindTell || kind > bus.KindSystem {
		return fmt.Errorf("%w: unknown kind %d", bus.ErrBadEnvelope, data[1])
	}
	if flags&^envFlagMask != 0 {
		return fmt.Errorf("%w: unknown flags %#x", bus.ErrBadEnvelope, flags)
	}
	d := envDecoder{b: data[3:], in: in}
	*e = bus.Envelope{Kind: kind}
	if flags&envFlagFrom != 0 {
		e.From = d.ref()
	}
	if flags&envFlagTo != 0 {
		e.To = d.ref()
	}
	e.Corr = d.uvarint()
	if flags&envFlagDeadline != 0 {
		e.Deadline = d.varint()
	}
	if flags&envFlagHeaders != 0 {
		n := d.uvarint()
		if n == 0 || n > bus.MaxHeaders || n*2 > uint64(len(d.b)) {
			d.fail("header count %d, want 1..%d within %d bytes", n, bus.MaxHeaders, len(d.b))
		} else if d.err == nil {
			e.Headers = make([]bus.Header, 0, n)
			for range n {
				k := d.string(bus.MaxHeaderBytes)
				v := d.string(bus.MaxHeaderBytes - len(k))
				if d.err != nil {
					break
				}
				e.Headers = append(e.Headers, bus.Header{Key: k, Value: v})
			}
		}
	}
	e.Type = d.string(bus.MaxTypeLen)
	if d.err != nil {
		return d.err
	}
	if len(d.b) > 0 {
		e.Body = d.b
	}
	return nil
}

// The envelope's flag bits, as docs/envelope.md specifies them.
const (
	envFlagFrom     = 1 << 0
	envFlagTo       = 1 << 1
	envFlagDeadline = 1 << 2
	envFlagHeaders  = 1 << 3
	envFlagMask     = envFlagFrom | envFlagTo | envFlagDeadline | envFlagHeaders
)

// envDecoder reads varints and strings from a bounded buffer; the first
// error sticks and every later read returns zero.
type envDecoder struct {
	b   []byte
	in  *interner
	err error
}

func (d *envDecoder) fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: "+format, append([]any{bus.ErrBadEnvelope}, args...)...)
	}
}

func (d *envDecoder) uvarint() uint64 {
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

func (d *envDecoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail("bad varint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *envDecoder) string(max int) string {
	n := d.uvarint()
	if d.err != nil {
		return ""
	}
	if n > uint64(max) || n > uint64(len(d.b)) {
		d.fail("string of %d bytes, limit %d, %d left", n, max, len(d.b))
		return ""
	}
	s := d.in.get(d.b[:n])
	d.b = d.b[n:]
	return s
}

func (d *envDecoder) ref() bus.Ref {
	if d.err != nil {
		return bus.Ref{}
	}
	var r bus.Ref
	if len(d.b) < len(r.Node) {
		d.fail("truncated node id")
		return bus.Ref{}
	}
	copy(r.Node[:], d.b)
	d.b = d.b[len(r.Node):]
	r.ID = d.uvarint()
	r.Name = d.string(bus.MaxNameLen)
	return r
}

// maxInternedLen is the longest string an interner keeps.
const maxInternedLen = 128

// interner hands out one copy of each short string it has seen recently: a
// direct-mapped cache of 256 strings, indexed by length and end bytes, so
// its size is fixed whatever a peer sends and a hit costs one comparison. A
// nil interner copies every time. It belongs to one reader goroutine.
type interner struct {
	slots [256]string
}

func (in *interner) get(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	if in == nil || len(b) > maxInternedLen {
		return string(b)
	}
	slot := &in.slots[(uint(len(b))*7+uint(b[0])*3+uint(b[len(b)-1]))&255]
	if *slot == string(b) { // the comparison does not allocate
		return *slot
	}
	*slot = string(b)
	return *slot
}
