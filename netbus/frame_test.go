package netbus

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"reflect"
	"slices"
	"testing"
	"testing/iotest"

	"github.com/xbus-dev/xbus/bus"
)

func TestFrameHeader(t *testing.T) {
	cases := []struct {
		name string
		hdr  []byte
		want error
	}{
		{"data", appendFrameHeader(nil, frameData, 0, 10), nil},
		{"data s2", appendFrameHeader(nil, frameData, compS2, 10), nil},
		{"ping", appendFrameHeader(nil, framePing, 0, 0), nil},
		{"too large", appendFrameHeader(nil, frameData, 0, 1<<20+1), ErrFrameTooLarge},
		{"too large is bus.ErrTooLarge", appendFrameHeader(nil, frameData, 0, math.MaxInt32), bus.ErrTooLarge},
		{"type 0", appendFrameHeader(nil, 0, 0, 1), ErrBadFrame},
		{"type 99", appendFrameHeader(nil, 99, 0, 1), ErrBadFrame},
		{"both compressions", appendFrameHeader(nil, frameData, 3, 1), ErrBadFrame},
		{"unknown flag", appendFrameHeader(nil, frameData, 8, 1), ErrBadFrame},
		{"empty data", appendFrameHeader(nil, frameData, 0, 0), ErrBadFrame},
		{"ping with an ack", appendFrameHeader(nil, framePing, 0, pingAckLen), nil},
		{"ping with 1 byte", appendFrameHeader(nil, framePing, 0, 1), ErrBadFrame},
		{"ping with 9 bytes", appendFrameHeader(nil, framePing, 0, 9), ErrBadFrame},
		{"empty close", appendFrameHeader(nil, frameClose, 0, 0), ErrBadFrame},
		{"counted close", appendFrameHeader(nil, frameClose, closeCounted, 1+closeCountLen), nil},
		{"counted close without its count", appendFrameHeader(nil, frameClose, closeCounted, 1+closeCountLen-1), ErrBadFrame},
		{"counted close, reason too long", appendFrameHeader(nil, frameClose, closeCounted, 1+closeCountLen+maxCloseReason+1), ErrBadFrame},
		{"close with an unknown flag", appendFrameHeader(nil, frameClose, 2, 1+closeCountLen), ErrBadFrame},
		{"settle", appendFrameHeader(nil, frameSettle, 0, 2*settleEntryLen), nil},
		{"empty settle", appendFrameHeader(nil, frameSettle, 0, 0), ErrBadFrame},
		{"settle with a part entry", appendFrameHeader(nil, frameSettle, 0, settleEntryLen+1), ErrBadFrame},
		{"settle with too many entries", appendFrameHeader(nil, frameSettle, 0, (maxSettleEntries+1)*settleEntryLen), ErrBadFrame},
		{"settle with a flag", appendFrameHeader(nil, frameSettle, 1, settleEntryLen), ErrBadFrame},
		{"huge auth", appendFrameHeader(nil, frameAuth, 0, 65), ErrBadFrame},
		{"fence", appendFrameHeader(nil, frameFence, 0, 0), nil},
		{"fence with a byte", appendFrameHeader(nil, frameFence, 0, 1), ErrBadFrame},
		{"fence with a flag", appendFrameHeader(nil, frameFence, 1, 0), ErrBadFrame},
	}
	for _, c := range cases {
		_, _, _, err := parseFrameHeader(c.hdr, 1<<20)
		if c.want == nil && err != nil || c.want != nil && !errors.Is(err, c.want) {
			t.Errorf("%s: got %v, want %v", c.name, err, c.want)
		}
	}
}

func TestFrameReaderTruncated(t *testing.T) {
	b := appendFrameHeader(nil, frameData, 0, 100)
	b = append(b, make([]byte, 50)...)
	for name, fr := range map[string]frameReader{
		"copying":  {r: bytes.NewReader(b), max: 1 << 10},
		"in place": newFrameReader(bufio.NewReaderSize(bytes.NewReader(b), 1024), 1<<10),
	} {
		if _, _, _, err := fr.next(); !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("%s: got %v, want unexpected EOF", name, err)
		}
	}
}

// Frames read where they lie in a bufio.Reader's buffer come out as the
// copying reader gives them, whether they fit the buffer or not, arrive a
// byte at a time or all at once, or straddle a refill.
func TestFrameReaderInPlace(t *testing.T) {
	var stream []byte
	var want [][]byte
	for i, n := range []int{1, 10, 57, 58, 59, 200, 3, 64 - frameHeaderLen, 64 - frameHeaderLen + 1, 1000, 5} {
		p := bytes.Repeat([]byte{byte(i + 1)}, n)
		want = append(want, p)
		stream = append(appendFrameHeader(stream, frameData, 0, n), p...)
	}
	for name, r := range map[string]func() io.Reader{
		"whole":    func() io.Reader { return bytes.NewReader(stream) },
		"bytewise": func() io.Reader { return iotest.OneByteReader(bytes.NewReader(stream)) },
		"halves":   func() io.Reader { return iotest.HalfReader(bytes.NewReader(stream)) },
	} {
		fr := newFrameReader(bufio.NewReaderSize(r(), 64), 1<<20)
		var got [][]byte
		for {
			_, _, p, err := fr.next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("%s: frame %d: %v", name, len(got), err)
			}
			got = append(got, bytes.Clone(p))
		}
		if len(got) != len(want) {
			t.Fatalf("%s: %d frames, want %d", name, len(got), len(want))
		}
		for i := range want {
			if !bytes.Equal(got[i], want[i]) {
				t.Errorf("%s: frame %d is %d bytes %x..., want %d bytes of %x", name, i, len(got[i]), got[i][:min(4, len(got[i]))], len(want[i]), want[i][0])
			}
		}
	}
}

// A payload the in-place reader returned stays as it was while buffered
// reports the next frame whole in the buffer: the reader hands a run of
// such frames to its node at once, without copying them.
func TestFrameReaderRunStaysValid(t *testing.T) {
	var stream []byte
	var want [][]byte
	for i := range 300 {
		p := bytes.Repeat([]byte{byte(i)}, 1+i*7%90)
		want = append(want, p)
		stream = append(appendFrameHeader(stream, frameData, 0, len(p)), p...)
	}
	for name, r := range map[string]func() io.Reader{
		"whole":  func() io.Reader { return bytes.NewReader(stream) },
		"halves": func() io.Reader { return iotest.HalfReader(bytes.NewReader(stream)) },
	} {
		fr := newFrameReader(bufio.NewReaderSize(r(), 512), 1<<20)
		var held [][]byte // the payloads of the run so far, not copied
		got, runs := 0, 0
		for got < len(want) {
			_, _, p, err := fr.next()
			if err != nil {
				t.Fatalf("%s: frame %d: %v", name, got, err)
			}
			held = append(held, p)
			got++
			if fr.buffered() {
				continue
			}
			for i, h := range held {
				if w := want[got-len(held)+i]; !bytes.Equal(h, w) {
					t.Fatalf("%s: frame %d changed before its run ended: %x..., want %x", name, got-len(held)+i, h[:min(4, len(h))], w[0])
				}
			}
			if len(held) > 1 {
				runs++
			}
			held = held[:0]
		}
		if runs == 0 {
			t.Fatalf("%s: no run of frames longer than one", name)
		}
		if _, _, _, err := fr.next(); err != io.EOF {
			t.Fatalf("%s: after the last frame: %v, want EOF", name, err)
		}
	}
}

// frameOrError is what a frameReader's next gave, for comparing readers.
type frameOrError struct {
	typ, flags byte
	payload    string
	err        string
}

func readAll(fr frameReader) []frameOrError {
	var out []frameOrError
	for {
		typ, flags, p, err := fr.next()
		if err != nil {
			return append(out, frameOrError{err: err.Error()})
		}
		out = append(out, frameOrError{typ, flags, string(p), ""})
	}
}

func newTestCompressor(t testing.TB, maxRaw int) *compressor {
	c, err := newCompressor(maxRaw)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.close)
	return c
}

func TestCompressionRoundTrip(t *testing.T) {
	c := newTestCompressor(t, 8<<20)
	text := bytes.Repeat([]byte("the quick brown fox jumps over the lazy dog. "), 100000) // 4.5 MB
	random := make([]byte, 1<<20)
	rand.Read(random)
	for _, alg := range []byte{compS2, compZstd} {
		for name, src := range map[string][]byte{"text": text, "random": random, "small": []byte("hello")} {
			comp := c.compress(nil, src, alg)
			if name == "text" && len(comp) > len(src)/10 {
				t.Errorf("alg %d: %d bytes compressed to %d", alg, len(src), len(comp))
			}
			out, err := c.decompress(nil, comp, alg)
			if err != nil || !bytes.Equal(out, src) {
				t.Fatalf("alg %d %s: round trip failed: %v", alg, name, err)
			}
		}
	}
}

func TestCompressionBomb(t *testing.T) {
	big := make([]byte, 4<<20) // zeros compress to almost nothing
	c := newTestCompressor(t, 1<<20)
	for _, alg := range []byte{compS2, compZstd} {
		comp := c.compress(nil, big, alg)
		if len(comp) > 1<<16 {
			t.Fatalf("alg %d: zeros compressed to %d bytes", alg, len(comp))
		}
		if _, err := c.decompress(nil, comp, alg); !errors.Is(err, ErrFrameTooLarge) {
			t.Fatalf("alg %d: got %v, want ErrFrameTooLarge", alg, err)
		}
		// A lying length prefix: announce 1 KiB, carry 4 MiB.
		lie := append([]byte{0x80, 0x08}, comp[3:]...)
		if _, err := c.decompress(nil, lie, alg); !errors.Is(err, ErrBadFrame) && !errors.Is(err, ErrFrameTooLarge) {
			t.Fatalf("alg %d: lying length: got %v", alg, err)
		}
	}
}

// FuzzFrameDecoder feeds arbitrary bytes to the receive path of a connection:
// frame reader, decompression, envelope decoder. It must never panic, and it
// must never hand out a payload above the limits.
func FuzzFrameDecoder(f *testing.F) {
	c := newTestCompressor(f, 1<<16)
	env := &bus.Envelope{Kind: bus.KindAsk, To: bus.Ref{Name: "echo"}, Corr: 7, Type: "string", Body: []byte(`"hi"`)}
	raw, _ := env.AppendBinary(nil)
	for _, alg := range []byte{compNone, compS2, compZstd} {
		p := raw
		if alg != compNone {
			p = c.compress(nil, raw, alg)
		}
		f.Add(append(appendFrameHeader(nil, frameData, alg, len(p)), p...))
	}
	f.Add(appendCloseFrame(nil, ErrAuth))
	f.Add(appendCountedClose(nil, ErrClosed, 1<<33))
	f.Add(appendSettle(nil, []settleEntry{{connID{7, 0}, 1 << 20}, {connID{1<<63 + 5, 254}, 0}}))
	f.Add(appendCountedClose(nil, ErrIdleTimeout, 0)[:frameHeaderLen+5])
	f.Add(appendFrameHeader(nil, framePing, 0, 0))
	f.Add(appendPing(nil, 1<<40))
	f.Add(appendFrameHeader(nil, frameFence, 0, 0))
	tell, _ := (&bus.Envelope{Kind: bus.KindTell, From: bus.Ref{Name: "a", ID: 1}, To: bus.Ref{Name: "sink"}, Type: "[]uint8", Body: []byte{0x41, 1}}).AppendBinary(nil)
	stream := append(appendFrameHeader(nil, frameData, 0, len(tell)), tell...)
	stream = append(appendFrameHeader(stream, frameRepeat, 0, 2), 0x41, 2)
	stream = appendPing(stream, 1)
	stream = appendFrameHeader(stream, frameRepeat, 0, 0)
	f.Add(stream)
	f.Add(append(appendFrameHeader(nil, frameData, 0, len(raw)), append(appendFrameHeader(raw, frameRepeat, 0, 1), 7)...)) // after an ask
	f.Fuzz(func(t *testing.T, data []byte) {
		// The reader a connection uses, with a buffer small enough that
		// frames both fit it and do not, reads what the copying one reads.
		copying := readAll(frameReader{r: bytes.NewReader(data), max: 1 << 12})
		inPlace := readAll(newFrameReader(bufio.NewReaderSize(iotest.HalfReader(bytes.NewReader(data)), 64), 1<<12))
		if !slices.Equal(copying, inPlace) {
			t.Fatalf("copying reader: %q\nin place: %q", copying, inPlace)
		}
		fr := frameReader{r: bytes.NewReader(data), max: 1 << 12}
		var scratch []byte
		var prev *bus.Envelope // the last data frame's envelope, if it decoded
		for {
			typ, flags, p, err := fr.next()
			if err != nil {
				return
			}
			if len(p) > 1<<12 {
				t.Fatalf("payload of %d bytes", len(p))
			}
			switch typ {
			case frameData:
				var e bus.Envelope
				err := c.decodeData(&e, flags, p, &scratch, nil)
				if err == nil && len(e.Body) > 1<<16 {
					t.Fatalf("body of %d bytes", len(e.Body))
				}
				prev = nil
				if err == nil {
					e.Body = nil
					prev = &e
				}
			case frameRepeat:
				// The header of the data frame before it, with this body,
				// whatever the envelope decoded into held before.
				var e bus.Envelope
				err := decodeRepeat(&e, prev, p)
				if ok := prev != nil && repeatable(prev); (err == nil) != ok {
					t.Fatalf("repeat frame after %+v: %v", prev, err)
				}
				if err != nil {
					break
				}
				want := headerOf(prev)
				if len(p) > 0 {
					want.Body = p
				}
				if !reflect.DeepEqual(e, want) {
					t.Fatalf("repeat frame %x after %+v read as %+v", p, prev, e)
				}
				for _, used := range []bus.Envelope{*prev, {Kind: bus.KindAsk, Corr: 3, Msg: 1, Headers: []bus.Header{{}}}, {Kind: prev.Kind, From: prev.From, To: prev.To, Type: prev.Type, Codec: prev.Codec, Msg: "stale"}} {
					if decodeRepeat(&used, prev, p) != nil || !reflect.DeepEqual(used, want) {
						t.Fatalf("repeat frame %x after %+v, into a used envelope, read as %+v", p, prev, used)
					}
				}
			case framePing:
				read, ok, err := parsePing(p)
				if err != nil || ok != (len(p) == pingAckLen) || !ok && read != 0 {
					t.Fatalf("ping of %d bytes gave %d, %v, %v", len(p), read, ok, err)
				}
				if ok && !bytes.Equal(appendPing(nil, read)[frameHeaderLen:], p) {
					t.Fatalf("ping %x read as %d", p, read)
				}
			case frameSettle:
				es := parseSettle(p)
				if len(es) == 0 || len(es) > maxSettleEntries || !bytes.Equal(appendSettle(nil, es)[frameHeaderLen:], p) {
					t.Fatalf("settle frame %x read as %v", p, es)
				}
			case frameClose:
				read, counted, reason := parseClose(flags, p)
				if !errors.Is(reason, ErrRejected) || counted != (flags == closeCounted) || !counted && read != 0 {
					t.Fatalf("close frame %x (flags %d) gave %d, %v, %v", p, flags, read, counted, reason)
				}
				if counted && binary.BigEndian.Uint64(p[1:]) != read {
					t.Fatalf("close frame %x counts %d", p, read)
				}
			}
		}
	})
}

// BenchmarkCompression reports speed (MB/s) and ratio (raw/compressed) of
// each algorithm on a JSON-like payload of 64 KiB.
func BenchmarkCompression(b *testing.B) {
	var src []byte
	for i := 0; len(src) < 64<<10; i++ {
		src = fmt.Appendf(src, `{"id":%d,"symbol":"EUR/USD","bid":%d.%04d,"ask":%d.%04d,"venue":"venue-%d"},`, i, 1, i%9999, 1, (i*7)%9999, i%5)
	}
	c := newTestCompressor(b, 1<<20)
	for _, alg := range []struct {
		name string
		flag byte
	}{{"s2", compS2}, {"zstd", compZstd}} {
		b.Run(alg.name, func(b *testing.B) {
			var out []byte
			b.SetBytes(int64(len(src)))
			for b.Loop() {
				out = c.compress(out[:0], src, alg.flag)
			}
			b.ReportMetric(float64(len(src))/float64(len(out)), "ratio")
		})
	}
}

// Payloads larger than the reader's buffer, arriving a byte at a time or
// all at once, come out whole; the buffer kept between frames stays small.
func TestFrameReaderGrows(t *testing.T) {
	var stream []byte
	var want [][]byte
	for _, n := range []int{1, frameChunk - 1, frameChunk + 1, 3*frameChunk + 7, keepFrameBuf + 1, 10} {
		p := make([]byte, n)
		rand.Read(p)
		want = append(want, p)
		stream = append(appendFrameHeader(stream, frameData, 0, n), p...)
	}
	for name, r := range map[string]io.Reader{"whole": bytes.NewReader(stream), "bytewise": iotest.OneByteReader(bytes.NewReader(stream))} {
		fr := frameReader{r: r, max: 4 << 20}
		for i, w := range want {
			_, _, p, err := fr.next()
			if err != nil || !bytes.Equal(p, w) {
				t.Fatalf("%s: frame %d (%d bytes): %v", name, i, len(w), err)
			}
		}
		if cap(fr.buf) > keepFrameBuf {
			t.Errorf("%s: %d-byte buffer kept after a small frame", name, cap(fr.buf))
		}
	}
}
