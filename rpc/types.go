package rpc

import (
	"fmt"
	"reflect"

	"github.com/xbus-dev/xbus/bus"
)

// ensure registers rt with the bus's type registry under its Go name
// (bus.Types.Register with an empty name), unless it is registered already
// under any name: so the request and response types of a typed call need
// no registration by hand on either side. Both ends name a type alike as
// long as they share its Go definition; register it by hand under a name of
// your own to decouple them. A pointer type registers its element type, as
// the bus sends *T under T's name.
//
// With a codec that checks types by rules of its own (bus.TypeChecker, as
// codec/proto does), the type is checked by those rules.
func ensure(t *bus.Types, c bus.Codec, rt reflect.Type) error {
	if t.Known(rt) {
		return nil
	}
	if rt.Kind() == reflect.Pointer && t.Known(rt.Elem()) {
		return nil
	}
	reg := rt
	if reg.Kind() == reflect.Pointer {
		reg = reg.Elem()
	}
	if reg.Kind() == reflect.Interface {
		return fmt.Errorf("rpc: %v is an interface type: a request or response must be concrete to be decoded", rt)
	}
	if err := t.RegisterFor(c, "", reflect.Zero(reg).Interface()); err != nil {
		if t.Known(reg) {
			return nil // registered meanwhile
		}
		return fmt.Errorf("rpc: registering %v: %w", reg, err)
	}
	return nil
}

// ensurePair registers a call's request and response types.
func ensurePair(t *bus.Types, c bus.Codec, req, resp reflect.Type) error {
	if err := ensure(t, c, req); err != nil {
		return err
	}
	return ensure(t, c, resp)
}
