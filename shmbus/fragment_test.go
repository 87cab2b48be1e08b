package shmbus

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"
)

// first returns a first fragment of a message of total bytes carrying
// data.
func first(total int, data []byte) []byte {
	p := make([]byte, fragHdr, fragHdr+len(data))
	binary.LittleEndian.PutUint32(p, uint32(total))
	return append(p, data...)
}

// TestReassembler feeds the reassembler sequences of fragment records:
// whole messages come out once, an abort drops the message begun and
// frees its buffer, and every record out of place is an error wrapping
// ErrCorrupt.
func TestReassembler(t *testing.T) {
	msg := bytes.Repeat([]byte("0123456789"), 30) // 300 bytes
	type rec struct {
		typ uint32
		p   []byte
	}
	cases := []struct {
		name    string
		recs    []rec
		want    [][]byte // messages out, in order
		corrupt bool     // the last record is an error
	}{
		{"first and last", []rec{{recordFirst, first(300, msg[:100])}, {recordLast, msg[100:]}}, [][]byte{msg}, false},
		{"with middles", []rec{{recordFirst, first(300, msg[:100])}, {recordMiddle, msg[100:200]}, {recordLast, msg[200:]}}, [][]byte{msg}, false},
		{"aborted, then whole", []rec{{recordFirst, first(300, msg[:100])}, {recordMiddle, msg[100:200]}, {recordAbort, nil},
			{recordFirst, first(300, msg[:150])}, {recordLast, msg[150:]}}, [][]byte{msg}, false},
		{"abort with none begun", []rec{{recordAbort, nil}}, nil, true},
		{"abort after a last", []rec{{recordFirst, first(300, msg[:100])}, {recordLast, msg[100:]}, {recordAbort, nil}}, [][]byte{msg}, true},
		{"middle after an abort", []rec{{recordFirst, first(300, msg[:100])}, {recordAbort, nil}, {recordMiddle, msg[100:200]}}, nil, true},
		{"first over first", []rec{{recordFirst, first(300, msg[:100])}, {recordFirst, first(300, msg[:100])}}, nil, true},
		{"over the limit", []rec{{recordFirst, first(1001, msg[:100])}}, nil, true},
		{"last short", []rec{{recordFirst, first(300, msg[:100])}, {recordLast, msg[100:299]}}, nil, true},
		{"middle that ends it", []rec{{recordFirst, first(300, msg[:100])}, {recordMiddle, msg[100:]}}, nil, true},
		{"data", []rec{{recordData, msg}}, nil, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := reassembler{max: 1000}
			var got [][]byte
			var err error
			for i, rc := range tc.recs {
				var m []byte
				m, err = r.take(rc.typ, rc.p)
				if err != nil {
					if i != len(tc.recs)-1 {
						t.Fatalf("record %d: %v", i, err)
					}
					break
				}
				if m != nil {
					got = append(got, m)
				}
			}
			if tc.corrupt != (err != nil) || err != nil && !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %v, want corrupt: %v", err, tc.corrupt)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("%d messages out, want %d", len(got), len(tc.want))
			}
			for i := range got {
				if !bytes.Equal(got[i], tc.want[i]) {
					t.Fatalf("message %d differs", i)
				}
			}
			if !tc.corrupt && (len(r.buf) != 0 || r.want != 0) {
				t.Fatalf("after the sequence %d bytes held for a message of %d, want none", len(r.buf), r.want)
			}
		})
	}
}

// TestReassemblerGrowsAsBytesArrive: a first fragment that announces the
// largest message makes room for at most reassemblyPrealloc bytes, a
// message past it grows as its fragments come and arrives whole, and a
// peer that begins and aborts messages over and over makes the reader
// allocate nothing after the first.
func TestReassemblerGrowsAsBytesArrive(t *testing.T) {
	r := reassembler{max: 16 << 20}
	if _, err := r.take(recordFirst, first(16<<20, make([]byte, 100))); err != nil {
		t.Fatal(err)
	}
	if cap(r.buf) > reassemblyPrealloc {
		t.Fatalf("a first fragment of 100 bytes announcing 16 MiB holds %d bytes, want at most %d", cap(r.buf), reassemblyPrealloc)
	}
	if _, err := r.take(recordAbort, nil); err != nil {
		t.Fatal(err)
	}
	p := first(16<<20, make([]byte, 100))
	if n := testing.AllocsPerRun(100, func() {
		r.take(recordFirst, p)
		r.take(recordAbort, nil)
	}); n != 0 {
		t.Fatalf("a message begun and aborted costs %v allocations, want 0", n)
	}

	msg := make([]byte, 3*reassemblyPrealloc+5)
	for i := range msg {
		msg[i] = byte(i * 7)
	}
	if _, err := r.take(recordFirst, first(len(msg), msg[:1000])); err != nil {
		t.Fatal(err)
	}
	var got []byte
	for at := 1000; at < len(msg); at += 8000 {
		typ := uint32(recordMiddle)
		if at+8000 >= len(msg) {
			typ = recordLast
		}
		m, err := r.take(typ, msg[at:min(at+8000, len(msg))])
		if err != nil {
			t.Fatal(err)
		}
		got = m
	}
	if !bytes.Equal(got, msg) || cap(got) > len(msg) {
		t.Fatalf("a message of %d bytes came out as %d (room for %d)", len(msg), len(got), cap(got))
	}
	if r.buf != nil {
		t.Fatal("the reassembler kept the buffer of the message it handed out")
	}
}
