package flow

import (
	"encoding/binary"
	"errors"
	"testing"
)

// FuzzCredit drives a sender and a receiver joined by two queues (items
// and grants in flight), with a lying sender and hostile grants mixed in,
// and checks after every step that no counter leaves its bounds, that the
// receiver never accepts more than it granted, and that while both ends
// are honest and open the credit is conserved and in-flight memory stays
// within the window.
func FuzzCredit(f *testing.F) {
	f.Add([]byte{4, 0, 0, 0, 1, 1, 2, 2, 3, 0, 1, 2, 3})
	f.Add([]byte{0, 0, 0, 1, 1, 4, 2, 2, 3})
	f.Add([]byte{63, 5, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0})
	f.Add([]byte{0x80, 0, 1, 1, 6, 2, 3, 1, 7, 0, 3})
	f.Add([]byte{0x81, 5, 0, 0, 0, 0, 0, 0, 0, 100, 0})
	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) == 0 {
			return
		}
		window := 1 + int(in[0]&0x3f)
		if in[0]&0x80 != 0 {
			window = MaxWindow - int(in[0]&0x3f)
		}
		in = in[1:]
		r, err := NewReceiver(window)
		if err != nil {
			t.Fatal(err)
		}
		var s Sender
		if err := s.Grant(uint64(r.Window())); err != nil {
			t.Fatal(err)
		}
		var (
			items    uint64   // in flight to the receiver
			grants   []uint32 // in flight to the sender
			honest   = true   // no lie told yet
			granted  = uint64(window)
			accepted uint64
		)
		for len(in) > 0 {
			op := in[0] % 8
			in = in[1:]
			switch op {
			case 0: // the sender sends if it has credit
				had := s.Credit()
				switch err := s.Send(); {
				case err == nil:
					items++
				case s.Closed():
					if !errors.Is(err, ErrClosed) {
						t.Fatalf("closed sender: Send %v", err)
					}
				case had != 0 || !errors.Is(err, ErrNoCredit):
					t.Fatalf("Send with credit %d: %v", had, err)
				}
			case 1, 4: // an item arrives (4: one the sender never had credit for)
				if op == 1 {
					if items == 0 {
						continue
					}
					items--
				} else {
					honest = false
				}
				had := r.Credit()
				switch err := r.Receive(); {
				case r.Closed():
					if !errors.Is(err, ErrClosed) {
						t.Fatalf("closed receiver: Receive %v", err)
					}
				case err == nil:
					accepted++
				case had != 0 || !errors.Is(err, ErrOverflow):
					t.Fatalf("Receive with credit %d: %v", had, err)
				case honest:
					t.Fatalf("an honest sender overflowed: %v", err)
				}
			case 2: // the reader consumes
				if g := r.Consume(); g > 0 {
					grants = append(grants, g)
					granted += uint64(g)
				}
			case 3: // a grant arrives
				if len(grants) == 0 {
					continue
				}
				g := grants[0]
				grants = grants[1:]
				if err := s.Grant(uint64(g)); err != nil && honest {
					t.Fatalf("an honest grant of %d on credit %d: %v", g, s.Credit(), err)
				}
			case 5: // a hostile grant
				if len(in) < 8 {
					return
				}
				n := binary.BigEndian.Uint64(in)
				in = in[8:]
				before := s.Credit()
				err := s.Grant(n)
				switch {
				case s.Closed():
					if err != nil || s.Credit() != 0 {
						t.Fatalf("closed sender: Grant %v, credit %d", err, s.Credit())
					}
				case uint64(before)+n > MaxWindow || n > MaxWindow:
					if !errors.Is(err, ErrGrantOverflow) || s.Credit() != before {
						t.Fatalf("Grant(%d) on %d: %v, credit %d", n, before, err, s.Credit())
					}
				default:
					if err != nil || s.Credit() != before+uint32(n) {
						t.Fatalf("Grant(%d) on %d: %v, credit %d", n, before, err, s.Credit())
					}
					honest = honest && n == 0
				}
			case 6:
				r.Close(errors.New("receiver gone"))
			case 7:
				s.Close(errors.New("sender gone"))
			}

			if s.Credit() > MaxWindow || r.Window() > MaxWindow {
				t.Fatalf("credit %d, window %d above MaxWindow", s.Credit(), r.Window())
			}
			if !r.Closed() && uint64(r.credit)+uint64(r.buffered)+uint64(r.owed) != uint64(r.window) {
				t.Fatalf("receiver: credit %d + buffered %d + owed %d != window %d", r.credit, r.buffered, r.owed, r.window)
			}
			if accepted > granted {
				t.Fatalf("accepted %d items on %d granted", accepted, granted)
			}
			if honest && !r.Closed() && !s.Closed() {
				var inGrants uint64
				for _, g := range grants {
					inGrants += uint64(g)
				}
				if sum := uint64(s.Credit()) + items + uint64(r.buffered) + uint64(r.owed) + inGrants; sum != uint64(window) {
					t.Fatalf("credit not conserved: %d, window %d", sum, window)
				}
				if items+uint64(r.Buffered()) > uint64(window) {
					t.Fatalf("%d in flight and %d held, window %d", items, r.Buffered(), window)
				}
			}
		}
	})
}
