package cbor

import "unsafe"

// The fast paths of DecodeValue hand back a copy of a body as an interface.
// Converting a fresh []byte or string to an interface allocates twice: the
// bytes, then the slice or string header the interface points to. boxBytes
// and boxString allocate once: a block holding the header and, right after
// it, the bytes the header refers to. The block's type has a pointer where
// the header is, so the collector sees the header as it would any other; the
// header points into its own block, which the interface (or any copy of the
// header the receiver makes) keeps alive. Bodies longer than boxMax take the
// two allocations, whose cost the copy then outweighs.

// eface is the layout of an interface value with methodless type (any).
type eface struct {
	typ  unsafe.Pointer
	data unsafe.Pointer
}

// typeWord returns the type word of an interface holding a T.
func typeWord[T any]() unsafe.Pointer {
	var v any = *new(T)
	return (*eface)(unsafe.Pointer(&v)).typ
}

var (
	bytesWord  = typeWord[[]byte]()
	stringWord = typeWord[string]()
)

// boxed is the block of one boxed body: the header H ([]byte or string)
// first, then room for the bytes. Every size below makes the block fill
// one of the allocator's size classes.
type boxed[H any, A any] struct {
	h H
	d A
}

const boxMax = 488

// boxBytes returns a copy of p, as an interface holding a []byte whose
// length and capacity are len(p) (an append by the receiver copies it
// elsewhere rather than writing past it).
func boxBytes(p []byte) any {
	switch n := len(p); {
	case n <= 8:
		return boxBytesIn[[8]byte](p)
	case n <= 24:
		return boxBytesIn[[24]byte](p)
	case n <= 40:
		return boxBytesIn[[40]byte](p)
	case n <= 56:
		return boxBytesIn[[56]byte](p)
	case n <= 72:
		return boxBytesIn[[72]byte](p)
	case n <= 104:
		return boxBytesIn[[104]byte](p)
	case n <= 168:
		return boxBytesIn[[168]byte](p)
	case n <= 232:
		return boxBytesIn[[232]byte](p)
	case n <= 360:
		return boxBytesIn[[360]byte](p)
	case n <= boxMax:
		return boxBytesIn[[boxMax]byte](p)
	}
	return append([]byte{}, p...)
}

func boxBytesIn[A any](p []byte) any {
	b := new(boxed[[]byte, A])
	d := unsafe.Slice((*byte)(unsafe.Pointer(&b.d)), unsafe.Sizeof(b.d))[:len(p):len(p)]
	copy(d, p)
	b.h = d
	return *(*any)(unsafe.Pointer(&eface{typ: bytesWord, data: unsafe.Pointer(&b.h)}))
}

// boxString returns p's bytes as an interface holding a string.
func boxString(p []byte) any {
	switch n := len(p); {
	case n <= 16:
		return boxStringIn[[16]byte](p)
	case n <= 32:
		return boxStringIn[[32]byte](p)
	case n <= 48:
		return boxStringIn[[48]byte](p)
	case n <= 64:
		return boxStringIn[[64]byte](p)
	case n <= 80:
		return boxStringIn[[80]byte](p)
	case n <= 112:
		return boxStringIn[[112]byte](p)
	case n <= 176:
		return boxStringIn[[176]byte](p)
	case n <= 240:
		return boxStringIn[[240]byte](p)
	case n <= 368:
		return boxStringIn[[368]byte](p)
	case n <= boxMax:
		return boxStringIn[[496]byte](p)
	}
	return string(p)
}

func boxStringIn[A any](p []byte) any {
	return *(*any)(unsafe.Pointer(&eface{typ: stringWord, data: unsafe.Pointer(stringBlockIn[A](p))}))
}
