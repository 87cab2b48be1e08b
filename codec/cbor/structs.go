package cbor

import (
	"encoding"
	"encoding/binary"
	"math"
	"reflect"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/fxamacker/cbor/v2"
)

// Flat structs (exported fields of basic types, no tags, no methods of
// their own that change how they encode) are the commonest message bodies
// and the costliest through the general encoder and decoder, which reflect
// on every field of every value. A plan, made once per type, encodes and
// decodes them directly: the same bytes out as the general encoder, and
// for any input it takes the value the general decoder gives. Input it
// does not expect (a key out of place, a null, a value of another width,
// an unknown field, a duplicate, trailing bytes...) makes it give up, and
// the general decoder decides, error included.

// fieldKind is what a plan knows how to move.
type fieldKind uint8

const (
	kBool fieldKind = iota
	kInt            // int, int8..int64: size says which
	kUint           // uint, uint8..uint64
	kFloat32
	kFloat64
	kString
	kBytes
)

// planField is one field of a plan.
type planField struct {
	off  uintptr
	kind fieldKind
	size uintptr        // of an int or uint
	name string         // the map key
	key  []byte         // the key's encoding: its text head and name
	strs *recentStrings // of a string field: its recent values
}

// plan is how values of one struct type T, or of *T, are encoded and
// decoded; a type without a plan has one with no fields. An interface
// holding a T points at a T, as one holding a *T does, so the two differ
// only in the type word and in a *T that may be nil.
type plan struct {
	typ    unsafe.Pointer // the type's descriptor: an interface's type word
	rt     reflect.Type   // T
	ptr    bool           // the type is *T
	fields []planField
	head   []byte // the encoding of the map's head
	vals   values // where decode takes its new values
}

// plans are a Codec's plans by type: all of them in a map, the recent
// ones also by the address of their type's descriptor, sparing most
// lookups the map's hashing.
type plans struct {
	all    sync.Map // reflect.Type → *plan
	recent [64]atomic.Pointer[plan]
}

var (
	basicKinds = map[reflect.Type]fieldKind{
		reflect.TypeFor[bool]():    kBool,
		reflect.TypeFor[int]():     kInt,
		reflect.TypeFor[int8]():    kInt,
		reflect.TypeFor[int16]():   kInt,
		reflect.TypeFor[int32]():   kInt,
		reflect.TypeFor[int64]():   kInt,
		reflect.TypeFor[uint]():    kUint,
		reflect.TypeFor[uint8]():   kUint,
		reflect.TypeFor[uint16]():  kUint,
		reflect.TypeFor[uint32]():  kUint,
		reflect.TypeFor[uint64]():  kUint,
		reflect.TypeFor[float32](): kFloat32,
		reflect.TypeFor[float64](): kFloat64,
		reflect.TypeFor[string]():  kString,
		reflect.TypeFor[[]byte]():  kBytes,
	}
	codecMethods = []reflect.Type{
		reflect.TypeFor[cbor.Marshaler](), reflect.TypeFor[cbor.Unmarshaler](),
		reflect.TypeFor[encoding.BinaryMarshaler](), reflect.TypeFor[encoding.BinaryUnmarshaler](),
		reflect.TypeFor[encoding.TextMarshaler](), reflect.TypeFor[encoding.TextUnmarshaler](),
	}
)

// of returns the plan of rt, whose fields are nil when it has none.
func (ps *plans) of(rt reflect.Type) *plan {
	w := (*eface)(unsafe.Pointer(&rt)).data // the type's descriptor
	s := &ps.recent[uint64(uintptr(w))*0x9e3779b97f4a7c15>>58]
	if p := s.Load(); p != nil && p.typ == w {
		return p
	}
	p, ok := ps.all.Load(rt)
	if !ok {
		p, _ = ps.all.LoadOrStore(rt, makePlan(rt))
	}
	s.Store(p.(*plan))
	return p.(*plan)
}

// makePlan returns the plan of rt: with fields when rt is a struct of 1 to
// 64 exported, untagged, non-embedded fields of the types in basicKinds,
// with no marshaling methods, held in an interface by reference, or a
// pointer to one.
func makePlan(rt reflect.Type) *plan {
	none := &plan{typ: (*eface)(unsafe.Pointer(&rt)).data, rt: rt}
	if rt.Kind() == reflect.Pointer && rt.Elem().Kind() == reflect.Struct {
		p := makePlan(rt.Elem())
		if p.fields == nil {
			return none
		}
		q := &plan{typ: none.typ, rt: p.rt, ptr: true, fields: p.fields, head: p.head}
		q.vals.init(p.rt)
		return q
	}
	if rt.Kind() != reflect.Struct || rt.NumField() == 0 || rt.NumField() > 64 {
		return none
	}
	for _, m := range codecMethods {
		if rt.Implements(m) || reflect.PointerTo(rt).Implements(m) {
			return none
		}
	}
	z := reflect.Zero(rt).Interface()
	if (*eface)(unsafe.Pointer(&z)).data == nil { // held in the interface's word
		return none
	}
	p := &plan{typ: none.typ, rt: rt, head: appendHead(nil, majorMap, uint64(rt.NumField()))}
	p.vals.init(rt)
	for i := range rt.NumField() {
		f := rt.Field(i)
		k, ok := basicKinds[f.Type]
		if !ok || !f.IsExported() || f.Anonymous || f.Tag != "" {
			return none
		}
		pf := planField{
			off: f.Offset, kind: k, size: f.Type.Size(), name: f.Name,
			key: append(appendHead(nil, majorText, uint64(len(f.Name))), f.Name...),
		}
		if k == kString {
			pf.strs = new(recentStrings)
		}
		p.fields = append(p.fields, pf)
	}
	return p
}

// CBOR major types and simple values of the plans (RFC 8949, section 3).
const (
	majorUint  = 0
	majorNeg   = 1
	majorMap   = 5
	majorOther = 7
	cborFalse  = 0xf4
	cborTrue   = 0xf5
	cborNull   = 0xf6
	cborF32    = 0xfa
	cborF64    = 0xfb
)

// append appends the encoding of the struct at v, or reports ok false for
// a value the general encoder writes otherwise (a nil *T, which it writes
// as null; a NaN or infinite float, which it shortens).
func (p *plan) append(dst []byte, v unsafe.Pointer) ([]byte, bool) {
	if v == nil {
		return dst, false
	}
	dst = append(dst, p.head...)
	for i := range p.fields {
		f := &p.fields[i]
		dst = append(dst, f.key...)
		a := unsafe.Add(v, f.off)
		switch f.kind {
		case kBool:
			if *(*bool)(a) {
				dst = append(dst, cborTrue)
			} else {
				dst = append(dst, cborFalse)
			}
		case kInt:
			if n := loadInt(a, f.size); n < 0 {
				dst = appendHead(dst, majorNeg, uint64(-1-n))
			} else {
				dst = appendHead(dst, majorUint, uint64(n))
			}
		case kUint:
			dst = appendHead(dst, majorUint, loadUint(a, f.size))
		case kFloat32:
			x := *(*float32)(a)
			if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
				return dst, false
			}
			dst = binary.BigEndian.AppendUint32(append(dst, cborF32), math.Float32bits(x))
		case kFloat64:
			x := *(*float64)(a)
			if math.IsNaN(x) || math.IsInf(x, 0) {
				return dst, false
			}
			dst = binary.BigEndian.AppendUint64(append(dst, cborF64), math.Float64bits(x))
		case kString:
			s := *(*string)(a)
			dst = append(appendHead(dst, majorText, uint64(len(s))), s...)
		case kBytes:
			b := *(*[]byte)(a)
			if b == nil {
				dst = append(dst, cborNull)
			} else {
				dst = append(appendHead(dst, majorBytes, uint64(len(b))), b...)
			}
		}
	}
	return dst, true
}

// decode decodes data into a new value and returns it in an interface, or
// reports ok false when data is not what append writes, give or take the
// order of the keys, missing fields and longer heads.
func (p *plan) decode(data []byte) (any, bool) {
	m, rest, ok := head(data, majorMap)
	if !ok || m > uint64(len(p.fields)) {
		return nil, false
	}
	v := p.vals.take()
	big, ok := p.fill(v, int(m), rest)
	if !ok || big {
		// Nothing a chunk holds may keep much alive (values.release).
		if v = p.vals.release(v, ok); v == nil {
			return nil, false
		}
	}
	return *(*any)(unsafe.Pointer(&eface{typ: p.typ, data: v})), true
}

// fill decodes the m pairs at the start of data into the value at v, and
// reports whether a string or []byte field took more than internMax bytes
// (big).
func (p *plan) fill(v unsafe.Pointer, m int, rest []byte) (big, ok bool) {
	var seen uint64
	for i := range m {
		var key []byte
		if key, rest, ok = text(rest, majorText); !ok {
			return big, false
		}
		fi := i
		if fi >= len(p.fields) || string(key) != p.fields[fi].name {
			if fi = p.find(key); fi < 0 {
				return big, false
			}
		}
		if seen&(1<<fi) != 0 {
			return big, false
		}
		seen |= 1 << fi
		f := &p.fields[fi]
		a := unsafe.Add(v, f.off)
		if rest, ok = f.decode(rest, a); !ok {
			return big, false
		}
		switch f.kind {
		case kString:
			big = big || len(*(*string)(a)) > internMax
		case kBytes:
			big = big || len(*(*[]byte)(a)) > internMax
		}
	}
	return big, len(rest) == 0
}

// find returns the index of the field named key, or -1.
func (p *plan) find(key []byte) int {
	for i := range p.fields {
		if p.fields[i].name == string(key) {
			return i
		}
	}
	return -1
}

// decode decodes one value at the start of data into the field at a and
// returns what follows it.
func (f *planField) decode(data []byte, a unsafe.Pointer) ([]byte, bool) {
	if len(data) == 0 {
		return nil, false
	}
	switch f.kind {
	case kBool:
		switch data[0] {
		case cborFalse:
			*(*bool)(a) = false
		case cborTrue:
			*(*bool)(a) = true
		default:
			return nil, false
		}
		return data[1:], true
	case kInt:
		neg := data[0]>>5 == majorNeg
		m := byte(majorUint)
		if neg {
			m = majorNeg
		}
		n, rest, ok := head(data, m)
		lim := uint64(1)<<(f.size*8-1) - 1 // the largest value, and -1-n for the smallest
		if !ok || n > lim {
			return nil, false
		}
		x := int64(n)
		if neg {
			x = -1 - x
		}
		storeInt(a, f.size, x)
		return rest, true
	case kUint:
		n, rest, ok := head(data, majorUint)
		if !ok || (f.size < 8 && n >= 1<<(f.size*8)) {
			return nil, false
		}
		storeUint(a, f.size, n)
		return rest, true
	case kFloat32:
		if data[0] != cborF32 || len(data) < 5 {
			return nil, false
		}
		*(*float32)(a) = math.Float32frombits(binary.BigEndian.Uint32(data[1:]))
		return data[5:], true
	case kFloat64:
		if data[0] != cborF64 || len(data) < 9 {
			return nil, false
		}
		*(*float64)(a) = math.Float64frombits(binary.BigEndian.Uint64(data[1:]))
		return data[9:], true
	case kString:
		s, rest, ok := text(data, majorText)
		if !ok {
			return nil, false
		}
		*(*string)(a) = f.strs.of(s)
		return rest, true
	case kBytes:
		if data[0] == cborNull {
			return data[1:], true // nil, as the value is new
		}
		b, rest, ok := text(data, majorBytes)
		if !ok {
			return nil, false
		}
		*(*[]byte)(a) = append([]byte{}, b...)
		return rest, true
	}
	return nil, false
}

// head reads the head of a data item of major type m with a definite
// argument at the start of data.
func head(data []byte, m byte) (n uint64, rest []byte, ok bool) {
	if len(data) == 0 || data[0]>>5 != m {
		return 0, nil, false
	}
	rest = data[1:]
	switch ai := data[0] & 31; {
	case ai < 24:
		return uint64(ai), rest, true
	case ai == 24 && len(rest) >= 1:
		return uint64(rest[0]), rest[1:], true
	case ai == 25 && len(rest) >= 2:
		return uint64(binary.BigEndian.Uint16(rest)), rest[2:], true
	case ai == 26 && len(rest) >= 4:
		return uint64(binary.BigEndian.Uint32(rest)), rest[4:], true
	case ai == 27 && len(rest) >= 8:
		return binary.BigEndian.Uint64(rest), rest[8:], true
	}
	return 0, nil, false
}

// text reads a definite-length byte or text string (major type m) at the
// start of data.
func text(data []byte, m byte) (s, rest []byte, ok bool) {
	n, rest, ok := head(data, m)
	if !ok || n > uint64(len(rest)) {
		return nil, nil, false
	}
	return rest[:n], rest[n:], true
}

func loadInt(a unsafe.Pointer, size uintptr) int64 {
	switch size {
	case 1:
		return int64(*(*int8)(a))
	case 2:
		return int64(*(*int16)(a))
	case 4:
		return int64(*(*int32)(a))
	}
	return *(*int64)(a)
}

func loadUint(a unsafe.Pointer, size uintptr) uint64 {
	switch size {
	case 1:
		return uint64(*(*uint8)(a))
	case 2:
		return uint64(*(*uint16)(a))
	case 4:
		return uint64(*(*uint32)(a))
	}
	return *(*uint64)(a)
}

func storeInt(a unsafe.Pointer, size uintptr, x int64) {
	switch size {
	case 1:
		*(*int8)(a) = int8(x)
	case 2:
		*(*int16)(a) = int16(x)
	case 4:
		*(*int32)(a) = int32(x)
	default:
		*(*int64)(a) = x
	}
}

func storeUint(a unsafe.Pointer, size uintptr, x uint64) {
	switch size {
	case 1:
		*(*uint8)(a) = uint8(x)
	case 2:
		*(*uint16)(a) = uint16(x)
	case 4:
		*(*uint32)(a) = uint32(x)
	default:
		*(*uint64)(a) = x
	}
}
