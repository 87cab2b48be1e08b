//go:build linux

package shmbus

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/xbus-dev/xbus/bus"
)

// kindsHost records the kind and body of each envelope delivered to it.
type kindsHost struct {
	*testHost
	kinds  []bus.Kind
	bodies [][]byte
}

func (h *kindsHost) Deliver(_ bus.Link, env *bus.Envelope) {
	h.kinds = append(h.kinds, env.Kind)
	h.bodies = append(h.bodies, bytes.Clone(env.Body))
}

// TestAskerTakesRepliesInFragments: an asker polling its link takes a
// reply or an error bigger than a record, fragment by fragment, as it
// takes a whole one, instead of leaving it to the reader, which may be
// parked; it still leaves a tell in fragments to the reader, from its
// first fragment on, and takes none of its middles.
func TestAskerTakesRepliesInFragments(t *testing.T) {
	const max = 256
	h := &kindsHost{testHost: newTestHost()}
	l := &link{h: h, in: newInBatch(max), frag: reassembler{max: 1 << 20}}
	records := func(env *bus.Envelope) (typs []uint32, ps [][]byte) {
		out, err := env.AppendBinary(nil)
		if err != nil {
			t.Fatal(err)
		}
		first := append(binary.LittleEndian.AppendUint32(nil, uint32(len(out))), 0, 0, 0, 0)
		first = append(first, out[:max-fragHdr]...)
		typs, ps = []uint32{recordFirst}, [][]byte{first}
		for rest := out[max-fragHdr:]; len(rest) > 0; {
			n, typ := min(len(rest), max), uint32(recordMiddle)
			if n == len(rest) {
				typ = recordLast
			}
			typs, ps = append(typs, typ), append(ps, rest[:n])
			rest = rest[n:]
		}
		return typs, ps
	}
	body := bytes.Repeat([]byte{'r'}, 3*max)
	for _, kind := range []bus.Kind{bus.KindReply, bus.KindError} {
		typs, ps := records(&bus.Envelope{Kind: kind, Corr: 7, Body: body})
		l.asker = true
		for i := range typs {
			if err := l.handle(typs[i], ps[i]); err != nil {
				t.Fatalf("%v: the asker left fragment %d (type %d): %v", kind, i, typs[i], err)
			}
		}
		l.asker = false
		l.flush()
	}
	if len(h.kinds) != 2 || h.kinds[0] != bus.KindReply || h.kinds[1] != bus.KindError ||
		!bytes.Equal(h.bodies[0], body) || !bytes.Equal(h.bodies[1], body) {
		t.Fatalf("delivered %v, want a reply and an error with their bodies whole", h.kinds)
	}

	typs, ps := records(&bus.Envelope{Kind: bus.KindTell, To: bus.Ref{Name: "x"}, Type: "[]uint8", Body: body})
	l.asker = true
	if err := l.handle(typs[0], ps[0]); !errors.Is(err, errLeave) || l.frag.begun() {
		t.Fatalf("the asker took the first fragment of a tell: %v", err)
	}
	l.asker = false
	if err := l.handle(typs[0], ps[0]); err != nil {
		t.Fatal(err)
	}
	l.asker = true
	if err := l.handle(typs[1], ps[1]); !errors.Is(err, errLeave) {
		t.Fatalf("the asker took a middle fragment of a tell the reader began: %v", err)
	}
	l.asker = false
	for i := 1; i < len(typs); i++ {
		if err := l.handle(typs[i], ps[i]); err != nil {
			t.Fatal(err)
		}
	}
	l.flush()
	if len(h.kinds) != 3 || h.kinds[2] != bus.KindTell || !bytes.Equal(h.bodies[2], body) {
		t.Fatalf("delivered %v, want the tell last with its body whole", h.kinds)
	}
}
