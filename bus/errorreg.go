package bus

import (
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"math"
	"reflect"
	"slices"
)

// errorMaps is the snapshot of application errors registered with
// Types.RegisterError, replaced whole under Types.mu.
type errorMaps struct {
	byName map[string]error
	names  []string // in registration order: the order errors.Is tries them in
}

// RegisterError records err, an application's sentinel error, under name,
// so that it keeps its identity across processes: an error that matches err
// (errors.Is) travels with name, and on a node that registered the same name
// the *RemoteError it arrives as matches that node's err with errors.Is. A
// node that does not know the name still gets the error's code and text.
//
// Register the same errors under the same names on every node, as with
// message types:
//
//	var ErrOutOfStock = errors.New("orders: out of stock")
//	err := types.RegisterError("orders.out-of-stock", ErrOutOfStock)
//
// Registering the same error under the same name again is a no-op; a name
// taken by another error, an error already named otherwise, a nil error and
// the bus's own sentinels (they travel as codes) are errors.
func (t *Types) RegisterError(name string, err error) error {
	if name == "" || len(name) > MaxTypeLen {
		return fmt.Errorf("%w: error name %q must be 1..%d bytes", ErrInvalidName, name, MaxTypeLen)
	}
	if err == nil {
		return fmt.Errorf("bus: cannot register a nil error as %q", name)
	}
	if !reflect.TypeOf(err).Comparable() {
		return fmt.Errorf("bus: error %T registered as %q is not comparable: register a sentinel (a pointer or comparable value)", err, name)
	}
	if c, ok := sentinelCode(err); ok {
		return fmt.Errorf("bus: %q is a bus sentinel and travels as code %d: it needs no name", err, c)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	m := t.errs.Load()
	if m == nil {
		m = &errorMaps{}
	}
	if old, ok := m.byName[name]; ok {
		if old == err {
			return nil
		}
		return fmt.Errorf("bus: error name %q already names %q, not %q", name, old, err)
	}
	for n, e := range m.byName {
		if e == err {
			return fmt.Errorf("bus: error %q already registered as %q", err, n)
		}
	}
	next := &errorMaps{byName: maps.Clone(m.byName), names: append(slices.Clip(m.names), name)}
	if next.byName == nil {
		next.byName = map[string]error{}
	}
	next.byName[name] = err
	t.errs.Store(next)
	return nil
}

// errorName returns the name err travels with: that of a *RemoteError
// relayed from elsewhere or of the outermost registered error in its tree,
// else of the first registered error it matches with errors.Is, else "".
func (t *Types) errorName(err error) string {
	m := t.errs.Load()
	if m == nil {
		var re *RemoteError
		if errors.As(err, &re) {
			return re.Name
		}
		return ""
	}
	name := ""
	walkErrors(err, func(e error) bool {
		if re, ok := e.(*RemoteError); ok && re.Name != "" {
			name = re.Name
			return true
		}
		if reflect.TypeOf(e).Comparable() {
			for _, n := range m.names {
				if m.byName[n] == e {
					name = n
					return true
				}
			}
		}
		return false
	})
	if name != "" {
		return name
	}
	for _, n := range m.names {
		if errors.Is(err, m.byName[n]) {
			return n
		}
	}
	return ""
}

// errorNamed returns the error registered as name, or nil.
func (t *Types) errorNamed(name string) error {
	if m := t.errs.Load(); m != nil {
		return m.byName[name]
	}
	return nil
}

// appendErrorBody appends the error body of msg (see docs/envelope.md) and
// sets env.Type to the name of its registered application error, if any.
func (t *Types) appendErrorBody(env *Envelope, msg any, dst []byte) []byte {
	err, _ := msg.(error)
	if err == nil {
		err = fmt.Errorf("%v", msg)
	}
	code, name, text := t.errorParts(err)
	env.Type = name
	dst = binary.AppendUvarint(dst, uint64(code))
	return append(dst, text...)
}

// errorParts returns what err travels as: its code, the name of its
// registered application error (or ""), and its text, a *RemoteError's
// relayed as it came.
func (t *Types) errorParts(err error) (code Code, name, text string) {
	if re, ok := err.(*RemoteError); ok {
		text = re.Text
	} else {
		text = err.Error()
	}
	return CodeOf(err), t.errorName(err), text
}

// decodeErrorBody is the reverse of appendErrorBody. Any code decodes,
// those of bus sentinels this node does not know yet and the application's
// alike, so that the error reaches its asker.
func (t *Types) decodeErrorBody(env *Envelope) error {
	code, n := binary.Uvarint(env.Body)
	if n <= 0 || code > math.MaxUint16 {
		return fmt.Errorf("%w: bad error body", ErrBadEnvelope)
	}
	re := &RemoteError{Code: Code(code), Name: env.Type, Text: string(env.Body[n:])}
	if env.Type != "" {
		re.err = t.errorNamed(env.Type)
	}
	env.Msg = re
	return nil
}
