package shmbus

import (
	"encoding/binary"
	"fmt"
	"sync/atomic"
)

// A segment is the shared memory one process writes; its peer maps it
// read-only, and cannot map it writable (shmsys.CreateSegment seals it).
// Layout (little endian; every word on its own 128-byte line so that
// producers and consumer never share a cache line, or its neighbour):
//
//	offset    0  magic    [8]byte "xbusshm1"
//	offset    8  version  uint32
//	offset   12  ringSize uint32  bytes of the ring at offset 4096
//	offset   16  key      uint64  random; stamps of this segment's ring are XORed with it
//	offset  128  tail     uint64  of this segment's ring (our producers, CAS)
//	offset  256  doorbell uint32  futex word of this segment's ring (our producers)
//	offset  384  head     uint64  of the peer's ring (our consumer)
//	offset  512  parked   uint32  our consumer is parked or about to park: the doorbell value it waits on + 1; 0 when not
//	offset  640  beat     uint64  our reader's heartbeat (see liveness.go)
//	offset  768  drained  uint32  1 once our reader, at the link's end, took its last record: head is final
//	offset  896  waiting  uint32  how many of our senders wait for room in this segment's ring
//	offset 4096  ring     ringSize bytes of records (see ring.go)
//
// So each process writes only its own segment: its outgoing ring and the
// consumer words of its incoming ring. A peer can never scribble on our
// memory; at worst it breaks the protocol in its own, which our reader
// detects.
const (
	segMagic       = "xbusshm1"
	segVersion     = 6
	offTail        = 128
	offDoorbell    = 256
	offHead        = 384
	offParked      = 512
	offBeat        = 640
	offDrained     = 768
	offWaiting     = 896
	ringOffset     = 4096
	cacheLineWords = 128 // spacing of the shared words, two cache lines
)

// Compile-time check that the words are cache lines apart and below the ring.
var _ = [1]struct{}{}[offHead-offDoorbell-cacheLineWords]
var _ = [1]struct{}{}[offBeat-offParked-cacheLineWords]
var _ = [1]struct{}{}[offDrained-offBeat-cacheLineWords]
var _ = [1]struct{}{}[offWaiting-offDrained-cacheLineWords]
var _ = [1]struct{}{}[(ringOffset-offWaiting)/cacheLineWords-25]

func segmentSize(ringSize int) int { return ringOffset + ringSize }

func initSegment(mem []byte, ringSize int, key uint64) {
	copy(mem[0:8], segMagic)
	binary.LittleEndian.PutUint32(mem[8:], segVersion)
	binary.LittleEndian.PutUint32(mem[12:], uint32(ringSize))
	binary.LittleEndian.PutUint64(mem[16:], key)
}

// readSegmentHeader validates the peer's segment header and returns its key.
func readSegmentHeader(mem []byte, ringSize int) (uint64, error) {
	if string(mem[0:8]) != segMagic {
		return 0, fmt.Errorf("%w: peer segment has a bad magic", ErrHandshake)
	}
	if v := binary.LittleEndian.Uint32(mem[8:]); v != segVersion {
		return 0, fmt.Errorf("%w: peer segment version %d, want %d", ErrHandshake, v, segVersion)
	}
	if n := binary.LittleEndian.Uint32(mem[12:]); int(n) != ringSize {
		return 0, fmt.Errorf("%w: peer ring of %d bytes, want %d", ErrHandshake, n, ringSize)
	}
	return binary.LittleEndian.Uint64(mem[16:]), nil
}

// rings builds the outgoing producer (in own) and incoming consumer (in peer).
func rings(own, peer []byte, ringSize int, ownKey, peerKey uint64) (*producer, *consumer, *atomic.Uint32, *atomic.Uint32) {
	out := ringWords{
		tail:     atomic64(own, offTail),
		doorbell: atomic32(own, offDoorbell),
		head:     atomic64(peer, offHead),
		parked:   atomic32(peer, offParked),
		waiting:  atomic32(own, offWaiting),
		room:     atomic32(peer, offHead),
	}
	in := ringWords{
		tail:     atomic64(peer, offTail),
		doorbell: atomic32(peer, offDoorbell),
		head:     atomic64(own, offHead),
		parked:   atomic32(own, offParked),
		waiting:  atomic32(peer, offWaiting),
		room:     atomic32(own, offHead),
	}
	p := newProducer(own[ringOffset:ringOffset+ringSize], out, ownKey)
	c := newConsumer(peer[ringOffset:ringOffset+ringSize], in, peerKey)
	return p, c, out.doorbell, in.doorbell
}
