package bus

import (
	"fmt"
	"reflect"
	"testing"
)

// fill sets every field of v, to its depth, to a value that is not zero
// and differs with seed.
func fill(v reflect.Value, seed int) {
	switch v.Kind() {
	case reflect.Struct:
		for i := range v.NumField() {
			fill(v.Field(i), seed+i)
		}
	case reflect.Array:
		for i := range v.Len() {
			fill(v.Index(i), seed+i)
		}
	case reflect.Slice:
		v.Set(reflect.MakeSlice(v.Type(), 1, 1))
		fill(v.Index(0), seed)
	case reflect.String:
		v.SetString(fmt.Sprint("s", seed))
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(int64(seed%100 + 1))
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(uint64(seed%100 + 1))
	case reflect.Interface:
		v.Set(reflect.ValueOf(seed + 1))
	default:
		panic(fmt.Sprintf("fill: a field of kind %v; teach fill and the field-by-field copies of Envelope about it", v.Kind()))
	}
}

func filledEnvelope(seed int) Envelope {
	var e Envelope
	fill(reflect.ValueOf(&e).Elem(), seed)
	return e
}

// The envelope's field-by-field copies name its fields one by one, so
// that a field added to Envelope or Ref and not to them is copied or
// cleared by none: clearEnvelope must leave nothing, copyHead every field
// but Body and Msg, setRef every field of a Ref.
func TestEnvelopeCopiesNameEveryField(t *testing.T) {
	e := filledEnvelope(1)
	clearEnvelope(&e)
	if v := reflect.ValueOf(e); !v.IsZero() {
		t.Errorf("clearEnvelope left %+v", e)
	}

	src := filledEnvelope(1)
	var dst Envelope
	copyHead(&dst, &src)
	st := reflect.TypeFor[Envelope]()
	for i := range st.NumField() {
		f := st.Field(i)
		got, want := reflect.ValueOf(dst).Field(i), reflect.ValueOf(src).Field(i)
		switch f.Name {
		case "Body", "Msg":
			if !got.IsZero() {
				t.Errorf("copyHead copied %s", f.Name)
			}
		default:
			if !reflect.DeepEqual(got.Interface(), want.Interface()) {
				t.Errorf("copyHead: %s is %v, want %v", f.Name, got, want)
			}
		}
	}

	var r, from Ref
	fill(reflect.ValueOf(&from).Elem(), 1)
	setRef(&r, &from)
	if r != from {
		t.Errorf("setRef: %+v, want %+v", r, from)
	}
}

// A decoder decodes into an envelope that held anything, as a reader that
// reuses its batch's envelopes does, what it decodes into a zero one: the
// first time and again from the header it keeps, whichever field of the
// envelope differs from what it decodes.
func TestDecodeIntoUsedEnvelope(t *testing.T) {
	sent := Envelope{Kind: KindTell, From: Ref{Node: NodeID{1}, Name: "a", ID: 2}, To: Ref{Node: NodeID{3}, Name: "b", ID: 4},
		Timeout: 5, Codec: "c", Type: "t", Body: []byte("body")}
	data, err := sent.AppendBinary(nil)
	if err != nil {
		t.Fatal(err)
	}
	var want Envelope
	if err := DecodeEnvelope(data, &want); err != nil {
		t.Fatal(err)
	}
	nd := &EnvelopeDecoder{}
	for round := range 2 { // the second decodes from the kept header
		used := filledEnvelope(round)
		if err := nd.Decode(data, &used); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(used, want) {
			t.Fatalf("round %d: decoded into a used envelope %+v, want %+v", round, used, want)
		}
	}
	// An envelope that holds the kept header already, but for one field.
	other := filledEnvelope(7)
	for i := range reflect.TypeFor[Envelope]().NumField() {
		e := want
		reflect.ValueOf(&e).Elem().Field(i).Set(reflect.ValueOf(other).Field(i))
		if err := nd.Decode(data, &e); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(e, want) {
			t.Errorf("decoded into one that differs in %s: %+v, want %+v", reflect.TypeFor[Envelope]().Field(i).Name, e, want)
		}
	}
}
