package netbus

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
)

// Frames. After the handshake's hello, everything on a connection is a frame:
//
//	0  4  length of the payload, big-endian uint32
//	4  1  type
//	5  1  flags (compression of a data frame's payload)
//	6  …  payload
//
// The layout, byte by byte, is in docs/wire.md.
const frameHeaderLen = 6

// Frame types.
const (
	frameData    byte = 1 // payload: one binary envelope (bus.Envelope.AppendBinary), maybe compressed
	framePing    byte = 2 // heartbeat; payload: empty, or the data frames read so far (acknowledgement)
	frameClose   byte = 3 // the sender closes: 1 byte close code, [read count,] then UTF-8 reason
	frameAuth    byte = 4 // handshake: HMAC proof (32 bytes, or empty without a secret)
	frameReady   byte = 5 // handshake: the sender accepted the peer's proof; empty
	frameSettle  byte = 6 // read counts of connections to the peer that broke (settle.go)
	frameRepeat  byte = 7 // payload: the body of a tell with the header of the data frame before it (repeat.go)
	frameFence   byte = 8 // empty: the link's fence; what follows on this connection waits for the fence on all of them (link.Fence)
	frameTypeMax byte = 9
)

// Flags of a data frame: the compression of its payload. A compressed payload
// is the uvarint length of the decompressed bytes followed by the compressed
// bytes.
const (
	compNone byte = 0
	compS2   byte = 1
	compZstd byte = 2
	compMask byte = 3
)

// closeCounted is the flag of a close frame that carries, after its code,
// how many data frames its sender read on the connection and handed to its
// node: the last it will ever hand over. Every close frame after the
// handshake carries it.
const closeCounted byte = 1

// Limits.
const (
	maxCloseReason = 1024 // bytes of a close frame's reason
	maxAuthPayload = 64   // bytes of an auth frame's payload
	minMaxFrame    = 1024 // smallest MaxFrameSize a node may announce
)

// appendFrameHeader appends a frame header for a payload of n bytes.
func appendFrameHeader(dst []byte, typ, flags byte, n int) []byte {
	dst = binary.BigEndian.AppendUint32(dst, uint32(n))
	return append(dst, typ, flags)
}

// putFrameHeader writes a frame header into b[:frameHeaderLen].
func putFrameHeader(b []byte, typ, flags byte, n int) {
	binary.BigEndian.PutUint32(b, uint32(n))
	b[4], b[5] = typ, flags
}

// pingAckLen is the length of a ping's payload when it carries an
// acknowledgement: how many data frames the sender has read on this
// connection, a big-endian uint64.
const pingAckLen = 8

// appendPing appends a ping acknowledging the first read data frames.
func appendPing(dst []byte, read uint64) []byte {
	dst = appendFrameHeader(dst, framePing, 0, pingAckLen)
	return binary.BigEndian.AppendUint64(dst, read)
}

// parsePing returns the acknowledgement a ping's payload carries; ok is
// false for an empty payload, which acknowledges nothing.
func parsePing(p []byte) (read uint64, ok bool, err error) {
	switch len(p) {
	case 0:
		return 0, false, nil
	case pingAckLen:
		return binary.BigEndian.Uint64(p), true, nil
	}
	return 0, false, fmt.Errorf("%w: %d-byte ping", ErrBadFrame, len(p))
}

// appendCloseFrame appends a close frame telling the peer why, as the
// handshake sends it: without a read count.
func appendCloseFrame(dst []byte, err error) []byte {
	reason := closeReason(err)
	dst = appendFrameHeader(dst, frameClose, 0, 1+len(reason))
	dst = append(dst, byte(codeFor(err)))
	return append(dst, reason...)
}

// appendCountedClose appends a close frame telling the peer why, and that
// this end read and handed over the first read data frames the peer sent on
// the connection and will hand over no more.
func appendCountedClose(dst []byte, err error, read uint64) []byte {
	reason := closeReason(err)
	dst = appendFrameHeader(dst, frameClose, closeCounted, 1+closeCountLen+len(reason))
	dst = append(dst, byte(codeFor(err)))
	dst = binary.BigEndian.AppendUint64(dst, read)
	return append(dst, reason...)
}

// closeCountLen is the length of a counted close frame's read count.
const closeCountLen = 8

func closeReason(err error) string {
	reason := err.Error()
	if len(reason) > maxCloseReason {
		reason = reason[:maxCloseReason]
	}
	return reason
}

// parseFrameHeader checks a frame header against the protocol and max, the
// largest payload this side accepts.
func parseFrameHeader(h []byte, max int) (typ, flags byte, n int, err error) {
	n64 := binary.BigEndian.Uint32(h)
	typ, flags = h[4], h[5]
	if typ == 0 || typ >= frameTypeMax {
		return 0, 0, 0, fmt.Errorf("%w: unknown frame type %d", ErrBadFrame, typ)
	}
	if uint64(n64) > uint64(max) {
		return 0, 0, 0, fmt.Errorf("%w: %d-byte payload, limit %d", ErrFrameTooLarge, n64, max)
	}
	n = int(n64)
	switch typ {
	case frameData:
		if flags&^compMask != 0 || flags&compMask == compMask {
			return 0, 0, 0, fmt.Errorf("%w: unknown data frame flags %#x", ErrBadFrame, flags)
		}
		if n == 0 {
			return 0, 0, 0, fmt.Errorf("%w: empty data frame", ErrBadFrame)
		}
	case frameRepeat:
		if flags != 0 {
			return 0, 0, 0, fmt.Errorf("%w: repeat frame with flags %#x", ErrBadFrame, flags)
		}
	case framePing:
		if flags != 0 || n != 0 && n != pingAckLen {
			return 0, 0, 0, fmt.Errorf("%w: ping frame with flags %#x and %d bytes", ErrBadFrame, flags, n)
		}
	case frameReady, frameFence:
		if flags != 0 || n != 0 {
			return 0, 0, 0, fmt.Errorf("%w: type %d frame with flags %#x and %d bytes", ErrBadFrame, typ, flags, n)
		}
	case frameClose:
		fixed := 1
		if flags == closeCounted {
			fixed += closeCountLen
		}
		if flags&^closeCounted != 0 || n < fixed || n > fixed+maxCloseReason {
			return 0, 0, 0, fmt.Errorf("%w: close frame with flags %#x and %d bytes", ErrBadFrame, flags, n)
		}
	case frameSettle:
		if flags != 0 || n == 0 || n%settleEntryLen != 0 || n > maxSettleEntries*settleEntryLen {
			return 0, 0, 0, fmt.Errorf("%w: settle frame with flags %#x and %d bytes", ErrBadFrame, flags, n)
		}
	case frameAuth:
		if flags != 0 || n > maxAuthPayload {
			return 0, 0, 0, fmt.Errorf("%w: auth frame with flags %#x and %d bytes", ErrBadFrame, flags, n)
		}
	}
	return typ, flags, n, nil
}

// frameReader reads frames from a stream. Its buffer grows as a payload's
// bytes arrive, not from the length the header announces, so a peer that
// announces a large frame and sends little of it costs little. A payload it
// returns is valid until the next call; a buffer above keepFrameBuf is let go
// then, so one large frame does not stay held by an idle connection.
//
// On a *bufio.Reader, a frame that fits the reader's buffer is returned
// where it lies in that buffer, without a copy (see bufio.Reader.Peek), and
// so is each frame after it that the buffer already holds whole, parsed
// with no call to the reader; they are skipped once one is not.
type frameReader struct {
	r    io.Reader
	max  int
	hdr  [frameHeaderLen]byte
	buf  []byte
	br   *bufio.Reader // r, when it is one
	peek int           // bytes of br to skip before reading it: the frames returned in place
	run  []byte        // br's buffered bytes after those: the frames next returns without calling br
}

// newFrameReader returns a frameReader of r for payloads up to max bytes.
func newFrameReader(r io.Reader, max int) frameReader {
	br, _ := r.(*bufio.Reader)
	return frameReader{r: r, max: max, br: br}
}

const (
	frameChunk   = 64 << 10 // first step of a buffer growing for a large payload
	keepFrameBuf = 1 << 20  // largest buffer kept between frames
)

// next reads one frame. Errors that mean the peer broke the protocol wrap
// ErrBadFrame or ErrFrameTooLarge; I/O errors are returned as they are.
func (fr *frameReader) next() (typ, flags byte, payload []byte, err error) {
	if cap(fr.buf) > keepFrameBuf {
		fr.buf = nil
	}
	if fr.br != nil {
		if typ, flags, payload, ok, err := fr.fromRun(); ok || err != nil {
			return typ, flags, payload, err
		}
		if fr.peek > 0 {
			fr.br.Discard(fr.peek) // buffered: it cannot fail
			fr.peek, fr.run = 0, nil
		}
		if _, err := fr.br.Peek(frameHeaderLen); err == nil { // a failure is read again below
			if typ, flags, payload, ok, err := fr.inPlace(); ok || err != nil {
				return typ, flags, payload, err
			}
		}
	}
	if _, err := io.ReadFull(fr.r, fr.hdr[:]); err != nil {
		return 0, 0, nil, err
	}
	typ, flags, n, err := parseFrameHeader(fr.hdr[:], fr.max)
	if err != nil {
		return 0, 0, nil, err
	}
	payload, err = fr.readPayload(n)
	if err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return 0, 0, nil, err
	}
	return typ, flags, payload, nil
}

// inPlace returns the next frame where it lies in fr.br's buffer, which
// holds its header; ok is false, having consumed nothing, when
// the frame does not fit the buffer, or the read of its rest failed: the
// caller then reads it the general way, which reports that failure.
func (fr *frameReader) inPlace() (typ, flags byte, payload []byte, ok bool, err error) {
	h, _ := fr.br.Peek(frameHeaderLen)
	typ, flags, n, err := parseFrameHeader(h, fr.max)
	if err != nil {
		return 0, 0, nil, false, err
	}
	if frameHeaderLen+n > fr.br.Size() {
		return 0, 0, nil, false, nil
	}
	f, err := fr.br.Peek(frameHeaderLen + n) // waits for the rest, if need be
	if err != nil {
		return 0, 0, nil, false, nil
	}
	all, _ := fr.br.Peek(fr.br.Buffered()) // buffered: no read
	fr.peek, fr.run = len(f), all[len(f):]
	return typ, flags, f[frameHeaderLen:len(f):len(f)], true, nil
}

// fromRun returns the next frame from fr.run, the bytes that were in br's
// buffer past the frames returned in place, when it lies whole there: a
// buffered run of frames is parsed with no call to br per frame. ok is
// false, having consumed nothing, when the next frame is not whole in
// fr.run; next then discards what was returned and reads on from br.
func (fr *frameReader) fromRun() (typ, flags byte, payload []byte, ok bool, err error) {
	if len(fr.run) < frameHeaderLen {
		return 0, 0, nil, false, nil
	}
	typ, flags, n, err := parseFrameHeader(fr.run, fr.max)
	if err != nil {
		return 0, 0, nil, false, err
	}
	end := frameHeaderLen + n
	if len(fr.run) < end {
		return 0, 0, nil, false, nil
	}
	payload = fr.run[frameHeaderLen:end:end]
	fr.run = fr.run[end:]
	fr.peek += end
	return typ, flags, payload, true, nil
}

// buffered reports whether the frame after the one next returned last
// lies whole in fr.br's buffer already, and that one was returned where it
// lies there. Reading the next frame then moves nothing in the buffer: the
// payloads returned since it last filled stay valid.
func (fr *frameReader) buffered() bool {
	return len(fr.run) >= frameHeaderLen && uint64(len(fr.run)) >= frameHeaderLen+uint64(binary.BigEndian.Uint32(fr.run))
}

// readPayload reads n bytes into fr.buf. Past its capacity the buffer grows
// in steps, doubling from frameChunk up to n, each step once the previous
// one is full (as io.ReadAll does).
func (fr *frameReader) readPayload(n int) ([]byte, error) {
	if n <= cap(fr.buf) {
		p := fr.buf[:n]
		_, err := io.ReadFull(fr.r, p)
		return p, err
	}
	p := fr.buf[:0]
	for len(p) < n {
		if len(p) == cap(p) {
			np := make([]byte, len(p), min(n, max(2*cap(p), frameChunk)))
			copy(np, p)
			p = np
			fr.buf = np
		}
		m, err := io.ReadFull(fr.r, p[len(p):cap(p)])
		p = p[:len(p)+m]
		if err != nil {
			return nil, err
		}
	}
	return p, nil
}

// parseClose decodes a close frame's payload, its header already checked
// (parseFrameHeader), into the error it reports and, if its flags say it
// carries one, the peer's read count.
func parseClose(flags byte, p []byte) (read uint64, counted bool, reason error) {
	code, text := closeCode(p[0]), p[1:]
	if flags&closeCounted != 0 {
		read, text, counted = binary.BigEndian.Uint64(text), text[closeCountLen:], true
	}
	return read, counted, rejectedError(code, string(text))
}
