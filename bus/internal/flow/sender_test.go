package flow

import (
	"errors"
	"math"
	"testing"
)

// A sender step: send ('s'), grant n ('g') or close ('x').
type sstep struct {
	op     byte
	n      uint64
	err    error
	credit uint32 // after the step
}

func TestSender(t *testing.T) {
	errBye := errors.New("bye")
	for _, c := range []struct {
		name  string
		steps []sstep
	}{
		{"the zero sender has no credit", []sstep{
			{op: 's', err: ErrNoCredit, credit: 0},
			{op: 'g', n: 2, credit: 2},
			{op: 's', credit: 1},
			{op: 's', credit: 0},
			{op: 's', err: ErrNoCredit, credit: 0},
		}},
		{"grants add up", []sstep{
			{op: 'g', n: 3, credit: 3},
			{op: 'g', n: 0, credit: 3},
			{op: 'g', n: 4, credit: 7},
			{op: 's', credit: 6},
		}},
		{"a grant up to MaxWindow is taken", []sstep{
			{op: 'g', n: MaxWindow - 1, credit: MaxWindow - 1},
			{op: 'g', n: 1, credit: MaxWindow},
			{op: 'g', n: 0, credit: MaxWindow},
		}},
		{"hostile grants are refused and change nothing", []sstep{
			{op: 'g', n: 10, credit: 10},
			{op: 'g', n: MaxWindow - 9, err: ErrGrantOverflow, credit: 10},
			{op: 'g', n: math.MaxUint32, err: ErrGrantOverflow, credit: 10},
			{op: 'g', n: math.MaxUint32 + 1, err: ErrGrantOverflow, credit: 10},
			{op: 'g', n: math.MaxUint64, err: ErrGrantOverflow, credit: 10},
			{op: 'g', n: MaxWindow - 10, credit: MaxWindow},
			{op: 'g', n: 1, err: ErrGrantOverflow, credit: MaxWindow},
			{op: 's', credit: MaxWindow - 1},
		}},
		{"close drops the credit and ignores late grants", []sstep{
			{op: 'g', n: 5, credit: 5},
			{op: 's', credit: 4},
			{op: 'x', credit: 0},
			{op: 's', err: ErrClosed, credit: 0},
			{op: 'g', n: 5, credit: 0},
			{op: 'g', n: math.MaxUint64, credit: 0},
			{op: 's', err: errBye, credit: 0},
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			var s Sender
			for i, st := range c.steps {
				var err error
				switch st.op {
				case 's':
					err = s.Send()
				case 'g':
					err = s.Grant(st.n)
				case 'x':
					s.Close(errBye)
				}
				if !errors.Is(err, st.err) || (st.err == nil) != (err == nil) {
					t.Fatalf("step %d (%c %d): %v, want %v", i, st.op, st.n, err, st.err)
				}
				if s.Credit() != st.credit {
					t.Fatalf("step %d (%c %d): credit %d, want %d", i, st.op, st.n, s.Credit(), st.credit)
				}
			}
		})
	}
}

func TestSenderClose(t *testing.T) {
	var s Sender
	if s.Closed() || s.Err() != nil {
		t.Fatalf("zero sender: closed %v err %v", s.Closed(), s.Err())
	}
	s.Close(nil)
	s.Close(errors.New("second"))
	if !s.Closed() || s.Err() != ErrClosed {
		t.Fatalf("Close(nil): closed %v err %v, want ErrClosed", s.Closed(), s.Err())
	}
	if err := s.Send(); err != ErrClosed {
		t.Fatalf("Send after Close(nil): %v, want ErrClosed unwrapped once", err)
	}
}
