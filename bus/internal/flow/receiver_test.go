package flow

import (
	"errors"
	"math"
	"testing"
)

func TestNewReceiverWindow(t *testing.T) {
	for _, c := range []struct {
		window int
		err    error
	}{
		{1, nil}, {256, nil}, {MaxWindow, nil},
		{0, ErrWindow}, {-1, ErrWindow}, {MaxWindow + 1, ErrWindow}, {math.MaxInt, ErrWindow},
	} {
		r, err := NewReceiver(c.window)
		if !errors.Is(err, c.err) {
			t.Errorf("NewReceiver(%d): %v, want %v", c.window, err, c.err)
			continue
		}
		if err == nil && (r.Window() != uint32(c.window) || r.Credit() != uint32(c.window) || r.Closed()) {
			t.Errorf("NewReceiver(%d): window %d credit %d closed %v", c.window, r.Window(), r.Credit(), r.Closed())
		}
		if err != nil && !r.Closed() {
			t.Errorf("NewReceiver(%d) failed but its receiver is open", c.window)
		}
	}
}

// A receiver step: receive an item ('r'), consume one ('c'), or close ('x').
type rstep struct {
	op       byte
	err      error  // Receive's error
	grant    uint32 // Consume's grant
	credit   uint32 // after the step
	buffered uint32
}

func TestReceiver(t *testing.T) {
	errBye := errors.New("bye")
	for _, c := range []struct {
		name   string
		window int
		steps  []rstep
	}{
		{"window 1 grants after each item", 1, []rstep{
			{op: 'r', credit: 0, buffered: 1},
			{op: 'r', err: ErrOverflow, credit: 0, buffered: 1},
			{op: 'c', grant: 1, credit: 1, buffered: 0},
			{op: 'r', credit: 0, buffered: 1},
		}},
		{"window 4 grants when half is consumed", 4, []rstep{
			{op: 'r', credit: 3, buffered: 1},
			{op: 'r', credit: 2, buffered: 2},
			{op: 'r', credit: 1, buffered: 3},
			{op: 'c', grant: 0, credit: 1, buffered: 2},
			{op: 'c', grant: 2, credit: 3, buffered: 1},
			{op: 'c', grant: 0, credit: 3, buffered: 0},
			{op: 'c', grant: 0, credit: 3, buffered: 0}, // nothing buffered: nothing changes
		}},
		{"odd window rounds the batch up", 5, []rstep{
			{op: 'r', credit: 4, buffered: 1},
			{op: 'r', credit: 3, buffered: 2},
			{op: 'r', credit: 2, buffered: 3},
			{op: 'c', credit: 2, buffered: 2},
			{op: 'c', credit: 2, buffered: 1},
			{op: 'c', grant: 3, credit: 5, buffered: 0},
		}},
		{"a lying sender overflows the window", 4, []rstep{
			{op: 'r', credit: 3, buffered: 1},
			{op: 'r', credit: 2, buffered: 2},
			{op: 'r', credit: 1, buffered: 3},
			{op: 'r', credit: 0, buffered: 4},
			{op: 'r', err: ErrOverflow, credit: 0, buffered: 4},
			{op: 'r', err: ErrOverflow, credit: 0, buffered: 4},
			{op: 'c', credit: 0, buffered: 3},
			{op: 'r', err: ErrOverflow, credit: 0, buffered: 3}, // consumed but not granted back yet
			{op: 'c', grant: 2, credit: 2, buffered: 2},
			{op: 'r', credit: 1, buffered: 3},
		}},
		{"close refuses arrivals and grants nothing, buffered items drain", 4, []rstep{
			{op: 'r', credit: 3, buffered: 1},
			{op: 'r', credit: 2, buffered: 2},
			{op: 'c', credit: 2, buffered: 1},
			{op: 'x', credit: 0, buffered: 1},
			{op: 'r', err: ErrClosed, credit: 0, buffered: 1},
			{op: 'c', grant: 0, credit: 0, buffered: 0},
			{op: 'c', grant: 0, credit: 0, buffered: 0},
			{op: 'x', credit: 0, buffered: 0},
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			r, err := NewReceiver(c.window)
			if err != nil {
				t.Fatal(err)
			}
			for i, st := range c.steps {
				switch st.op {
				case 'r':
					if err := r.Receive(); !errors.Is(err, st.err) || (st.err == nil) != (err == nil) {
						t.Fatalf("step %d: Receive: %v, want %v", i, err, st.err)
					}
				case 'c':
					if g := r.Consume(); g != st.grant {
						t.Fatalf("step %d: Consume granted %d, want %d", i, g, st.grant)
					}
				case 'x':
					r.Close(errBye)
				}
				if r.Credit() != st.credit || r.Buffered() != st.buffered {
					t.Fatalf("step %d (%c): credit %d buffered %d, want %d %d", i, st.op, r.Credit(), r.Buffered(), st.credit, st.buffered)
				}
				if !r.Closed() && r.credit+r.buffered+r.owed != r.window {
					t.Fatalf("step %d: credit %d + buffered %d + owed %d != window %d", i, r.credit, r.buffered, r.owed, r.window)
				}
			}
		})
	}
}

func TestReceiverClose(t *testing.T) {
	r, _ := NewReceiver(8)
	if r.Err() != nil {
		t.Fatalf("open receiver: Err %v", r.Err())
	}
	errBye := errors.New("bye")
	r.Close(errBye)
	r.Close(errors.New("second"))
	if r.Err() != errBye {
		t.Fatalf("Err %v, want the first reason", r.Err())
	}
	if err := r.Receive(); !errors.Is(err, ErrClosed) || !errors.Is(err, errBye) {
		t.Fatalf("Receive after Close: %v, want ErrClosed wrapping the reason", err)
	}

	var zero Receiver // never opened: closed, refuses everything
	if !zero.Closed() || !errors.Is(zero.Err(), ErrClosed) {
		t.Fatalf("zero receiver: closed %v err %v", zero.Closed(), zero.Err())
	}
	if err := zero.Receive(); err != ErrClosed {
		t.Fatalf("zero receiver: Receive %v, want ErrClosed", err)
	}
	if g := zero.Consume(); g != 0 {
		t.Fatalf("zero receiver: Consume granted %d", g)
	}

	r, _ = NewReceiver(8)
	r.Close(nil)
	if r.Err() != ErrClosed {
		t.Fatalf("Close(nil): Err %v, want ErrClosed", r.Err())
	}
	if err := r.Receive(); err != ErrClosed {
		t.Fatalf("Close(nil): Receive %v, want ErrClosed unwrapped once", err)
	}
}
