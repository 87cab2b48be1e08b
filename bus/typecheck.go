package bus

import (
	"encoding"
	"encoding/json"
	"fmt"
	"reflect"
)

// cborMarshaler is the method by which a type encodes itself with CBOR
// (github.com/fxamacker/cbor's Marshaler), named here so that the bus needs
// no CBOR package.
type cborMarshaler interface{ MarshalCBOR() ([]byte, error) }

var encodesItself = []reflect.Type{
	reflect.TypeFor[json.Marshaler](),
	reflect.TypeFor[encoding.TextMarshaler](),
	reflect.TypeFor[encoding.BinaryMarshaler](),
	reflect.TypeFor[cborMarshaler](),
}

// checkEncodable reports why values of rt would not cross a process
// boundary as they are: a field of a kind no codec encodes (a channel, a
// func, an unsafe pointer, a complex number), or an unexported field, which
// the codecs drop without a word so that it arrives as its zero value. The
// error names the field by its path from rt. A type that encodes itself
// (MarshalJSON, MarshalText, MarshalBinary or MarshalCBOR, as time.Time
// does) is taken at its word; an exported field tagged json:"-" or cbor:"-"
// is skipped on purpose and is not checked.
func checkEncodable(rt reflect.Type) error {
	return checkType(rt, rt.String(), map[reflect.Type]bool{})
}

func checkType(t reflect.Type, path string, seen map[reflect.Type]bool) error {
	if seen[t] {
		return nil
	}
	seen[t] = true
	for _, m := range encodesItself {
		if t.Implements(m) || reflect.PointerTo(t).Implements(m) {
			return nil
		}
	}
	switch t.Kind() {
	case reflect.Chan, reflect.Func, reflect.UnsafePointer, reflect.Complex64, reflect.Complex128:
		return fmt.Errorf("bus: %s is a %s, which no codec encodes: leave it out of messages, or tag it json:\"-\"", path, t)
	case reflect.Pointer:
		return checkType(t.Elem(), path, seen)
	case reflect.Slice, reflect.Array:
		return checkType(t.Elem(), path+"[]", seen)
	case reflect.Map:
		if err := checkType(t.Key(), path+" key", seen); err != nil {
			return err
		}
		return checkType(t.Elem(), path+"[]", seen)
	case reflect.Struct:
		for i := range t.NumField() {
			f := t.Field(i)
			fpath := path + "." + f.Name
			if !f.IsExported() {
				ft := f.Type
				if ft.Kind() == reflect.Pointer {
					ft = ft.Elem()
				}
				if f.Anonymous && ft.Kind() == reflect.Struct {
					// An embedded struct's exported fields are encoded as
					// the outer struct's; its unexported ones are checked.
					if err := checkType(f.Type, fpath, seen); err != nil {
						return err
					}
					continue
				}
				return fmt.Errorf("bus: %s is unexported, and a codec drops it without a word (it arrives as its zero value): export it, or give %s its own encoding (MarshalJSON, MarshalBinary or MarshalCBOR)", fpath, t)
			}
			if skipped(f.Tag) {
				continue
			}
			if err := checkType(f.Type, fpath, seen); err != nil {
				return err
			}
		}
	}
	return nil
}

// skipped reports whether a field's tag keeps it out of the encoding.
func skipped(tag reflect.StructTag) bool {
	for _, key := range []string{"json", "cbor"} {
		if v, ok := tag.Lookup(key); ok && v == "-" { // "-," names a field "-"
			return true
		}
	}
	return false
}
