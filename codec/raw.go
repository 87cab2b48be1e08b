package codec

import (
	"fmt"

	"github.com/xbus-dev/xbus/bus"
)

// Raw is a codec for bodies that are already bytes: it encodes a []byte,
// *[]byte, string or *string by appending it as it is, and decodes into a
// *[]byte or *string. Any other type is an error wrapping bus.ErrUnsupported.
//
// Encoding is a single copy into dst, with no framing. Decoding into a
// *[]byte reuses the capacity the slice already has, so a caller that
// decodes into the same slice again allocates nothing; the result never
// aliases data, which the transport may reuse.
var Raw bus.Codec = rawCodec{}

type rawCodec struct{}

func (rawCodec) Name() string { return "raw" }

func (rawCodec) Append(dst []byte, v any) ([]byte, error) {
	switch v := v.(type) {
	case []byte:
		return append(dst, v...), nil
	case string:
		return append(dst, v...), nil
	case *[]byte:
		if v != nil {
			return append(dst, *v...), nil
		}
	case *string:
		if v != nil {
			return append(dst, *v...), nil
		}
	}
	return dst, fmt.Errorf("%w: raw codec cannot encode %T", bus.ErrUnsupported, v)
}

func (rawCodec) Decode(data []byte, v any) error {
	switch v := v.(type) {
	case *[]byte:
		if v != nil {
			if len(data) == 0 && *v == nil {
				return nil // nothing encoded a nil slice; keep it nil
			}
			*v = append((*v)[:0], data...)
			return nil
		}
	case *string:
		if v != nil {
			*v = string(data)
			return nil
		}
	}
	return fmt.Errorf("%w: raw codec cannot decode into %T", bus.ErrUnsupported, v)
}
