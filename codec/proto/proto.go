package proto

import (
	"fmt"
	"reflect"

	"google.golang.org/protobuf/proto"

	"github.com/xbus-dev/xbus/bus"
)

// Codec encodes proto.Message bodies in the protobuf binary format. Its
// name on the wire is "proto".
var Codec bus.Codec = codec{}

// Interface checks: Codec decodes a message type without reflection per
// body (ValueDecoder), and decides which types it encodes (TypeChecker).
var (
	_ bus.ValueDecoder = codec{}
	_ bus.TypeChecker  = codec{}
)

type codec struct{}

var messageType = reflect.TypeFor[proto.Message]()

func (codec) Name() string { return "proto" }

// Append appends the binary encoding of v, which must be a proto.Message.
func (codec) Append(dst []byte, v any) ([]byte, error) {
	m, ok := v.(proto.Message)
	if !ok {
		return dst, fmt.Errorf("%w: the proto codec encodes a proto.Message, not a %T", bus.ErrUnsupported, v)
	}
	return proto.MarshalOptions{}.MarshalAppend(dst, m)
}

// Decode decodes data into v: a proto.Message, or a pointer to a nil or
// non-nil one (as the bus hands a codec a *T for a message of type T, and
// a protobuf message is a pointer type), which gets a new message.
func (codec) Decode(data []byte, v any) error {
	if m, ok := v.(proto.Message); ok {
		return proto.Unmarshal(data, m)
	}
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.IsNil() || !rv.Type().Elem().Implements(messageType) || rv.Type().Elem().Kind() != reflect.Pointer {
		return fmt.Errorf("%w: the proto codec decodes into a proto.Message, not a %T", bus.ErrUnsupported, v)
	}
	m := reflect.New(rv.Type().Elem().Elem())
	if err := proto.Unmarshal(data, m.Interface().(proto.Message)); err != nil {
		return err
	}
	rv.Elem().Set(m)
	return nil
}

// DecodeValue decodes data as a message of type t, a pointer type that is
// a proto.Message, without the reflected pointer to it that Decode needs.
func (codec) DecodeValue(data []byte, t reflect.Type) (any, bool, error) {
	if t.Kind() != reflect.Pointer || !t.Implements(messageType) {
		return nil, false, nil
	}
	m := reflect.New(t.Elem()).Interface().(proto.Message)
	if err := proto.Unmarshal(data, m); err != nil {
		return nil, true, err
	}
	return m, true, nil
}

// CheckType accepts a protobuf message type and the struct type it points
// to (the bus registers a *T under T); it refuses any other.
func (codec) CheckType(t reflect.Type) error {
	if t.Implements(messageType) || (t.Kind() != reflect.Pointer && reflect.PointerTo(t).Implements(messageType)) {
		return nil
	}
	return fmt.Errorf("%w: the proto codec encodes only protobuf messages (proto.Message), not %v", bus.ErrUnsupported, t)
}
