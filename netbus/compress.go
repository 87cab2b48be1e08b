package netbus

import (
	"encoding/binary"
	"fmt"
	"runtime"

	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
	"github.com/xbus-dev/xbus/bus"
)

// Compression names a per-frame compression algorithm.
type Compression uint8

const (
	// NoCompression sends every frame as it is.
	NoCompression Compression = iota
	// S2 is fast with a moderate ratio (docs/performance.md compares the two).
	S2
	// Zstd compresses better than S2 and costs several times more CPU.
	Zstd
)

func (c Compression) String() string {
	switch c {
	case NoCompression:
		return "none"
	case S2:
		return "s2"
	case Zstd:
		return "zstd"
	}
	return fmt.Sprintf("compression(%d)", uint8(c))
}

// flag returns the data frame flag for c.
func (c Compression) flag() byte {
	switch c {
	case S2:
		return compS2
	case Zstd:
		return compZstd
	}
	return compNone
}

// compressor compresses and decompresses frame payloads for every connection
// of a transport. Its zstd encoder is shared (EncodeAll is safe for
// concurrent use). A zstd decoder keeps buffers as large as the largest frame
// it decoded, so decoders are lent out per frame: one returns to the idle
// list only after a frame of at most keepFrameBuf bytes, and at most one
// per processor (no fewer than minIdleDecoders) waits there, as many as can
// decode at once; any other is closed and its memory goes back.
type compressor struct {
	maxRaw int // largest decompressed payload accepted
	zenc   *zstd.Encoder
	zdecs  chan *zstd.Decoder // idle decoders
}

const (
	minIdleDecoders = 4
	zstdWindow      = 1 << 20 // the encoder's window
)

func newCompressor(maxRaw int) (*compressor, error) {
	c := &compressor{maxRaw: maxRaw, zdecs: make(chan *zstd.Decoder, max(minIdleDecoders, runtime.GOMAXPROCS(0)))}
	var err error
	// The encoder keeps a history of twice its window for good: 1 MiB
	// (instead of 8) bounds that, at a small cost in ratio on payloads that
	// repeat themselves from further back.
	c.zenc, err = zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1), zstd.WithEncoderLevel(zstd.SpeedDefault),
		zstd.WithWindowSize(zstdWindow), zstd.WithLowerEncoderMem(true))
	if err != nil {
		return nil, err
	}
	return c, nil
}

func (c *compressor) close() {
	c.zenc.Close()
	for {
		select {
		case d := <-c.zdecs:
			d.Close()
		default:
			return
		}
	}
}

// decoder returns an idle zstd decoder or a new one. Its window and output
// are bounded by maxRaw, and it decodes only with DecodeAll (no goroutines).
func (c *compressor) decoder() (*zstd.Decoder, error) {
	select {
	case d := <-c.zdecs:
		return d, nil
	default:
	}
	return zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true),
		zstd.WithDecoderMaxMemory(uint64(c.maxRaw)), zstd.WithDecoderMaxWindow(uint64(max(c.maxRaw, zstd.MinWindowSize))))
}

// release takes back a decoder that decoded n bytes (-1: it failed).
func (c *compressor) release(d *zstd.Decoder, n int) {
	if n >= 0 && n <= keepFrameBuf {
		select {
		case c.zdecs <- d:
			return
		default:
		}
	}
	d.Close()
}

// compress appends the compressed form of src (uvarint raw length, then the
// compressed bytes) to dst.
func (c *compressor) compress(dst, src []byte, alg byte) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(src)))
	switch alg {
	case compS2:
		n := len(dst)
		need := s2.MaxEncodedLen(len(src))
		if cap(dst)-n < need {
			nd := make([]byte, n, n+need)
			copy(nd, dst)
			dst = nd
		}
		out := s2.Encode(dst[n:n+need], src)
		return dst[:n+len(out)]
	case compZstd:
		return c.zenc.EncodeAll(src, dst)
	}
	return append(dst, src...)
}

// decompress appends the decompressed payload p to dst[:0]. It checks the
// announced length against maxRaw before allocating, and the result against
// the announced length.
func (c *compressor) decompress(dst, p []byte, alg byte) ([]byte, error) {
	raw, n := binary.Uvarint(p)
	if n <= 0 {
		return nil, fmt.Errorf("%w: bad decompressed length", ErrBadFrame)
	}
	if raw > uint64(c.maxRaw) {
		return nil, fmt.Errorf("%w: decompresses to %d bytes, limit %d", ErrFrameTooLarge, raw, c.maxRaw)
	}
	if raw == 0 {
		return nil, fmt.Errorf("%w: empty compressed payload", ErrBadFrame)
	}
	p = p[n:]
	if cap(dst) < int(raw) {
		dst = make([]byte, 0, raw)
	}
	switch alg {
	case compS2:
		dl, err := s2.DecodedLen(p)
		if err != nil || uint64(dl) != raw {
			return nil, fmt.Errorf("%w: s2 payload decodes to %d bytes, announced %d (%v)", ErrBadFrame, dl, raw, err)
		}
		out, err := s2.Decode(dst[:raw], p)
		if err != nil {
			return nil, fmt.Errorf("%w: s2: %v", ErrBadFrame, err)
		}
		return out, nil
	case compZstd:
		d, err := c.decoder()
		if err != nil {
			return nil, err
		}
		out, err := d.DecodeAll(p, dst[:0])
		if err != nil {
			c.release(d, -1)
			return nil, fmt.Errorf("%w: zstd: %v", ErrBadFrame, err)
		}
		c.release(d, len(out))
		if uint64(len(out)) != raw {
			return nil, fmt.Errorf("%w: zstd payload decodes to %d bytes, announced %d", ErrBadFrame, len(out), raw)
		}
		return out, nil
	}
	return nil, fmt.Errorf("%w: unknown compression %d", ErrBadFrame, alg)
}

// decodeData decodes the payload of a data frame into env: decompressing it
// into *scratch if flags say so, then parsing the binary envelope. env.Body
// aliases the payload or *scratch. Strings come from names (nil: copied).
func (c *compressor) decodeData(env *bus.Envelope, flags byte, payload []byte, scratch *[]byte, names *bus.EnvelopeDecoder) error {
	if alg := flags & compMask; alg != compNone {
		out, err := c.decompress(*scratch, payload, alg)
		if err != nil {
			return err
		}
		*scratch = out
		payload = out
	} else if len(payload) > c.maxRaw {
		return fmt.Errorf("%w: %d bytes, limit %d", ErrFrameTooLarge, len(payload), c.maxRaw)
	}
	if err := names.Decode(payload, env); err != nil {
		return fmt.Errorf("%w: %w", ErrBadFrame, err)
	}
	return nil
}
