package bustest

import (
	"context"
	"fmt"
	"sync"

	"github.com/xbus-dev/xbus/bus"
)

// Tap wraps a real transport so that a test can partition it from its
// peers (Break, then Heal), as a Maker must: bus.WithTransport(tap) in place
// of the transport. Everything else passes through to the wrapped transport.
type Tap struct {
	bus.Transport

	mu     sync.Mutex
	links  map[bus.Link]chan struct{} // the bus's links; each chan closed when reported down
	cut    error                      // between Break and Heal: why new links are closed
	hidden map[bus.Link]bool          // links closed while cut, never shown to the bus
}

// NewTap wraps tr.
func NewTap(tr bus.Transport) *Tap {
	return &Tap{Transport: tr, links: map[bus.Link]chan struct{}{}, hidden: map[bus.Link]bool{}}
}

// Dial dials through the wrapped transport, which must be a bus.Dialer.
// Between Break and Heal it fails without dialing, as across a partition.
func (t *Tap) Dial(ctx context.Context, addr string) (bus.Link, error) {
	d, ok := t.Transport.(bus.Dialer)
	if !ok {
		return nil, fmt.Errorf("%w: bustest: %T does not dial", bus.ErrUnsupported, t.Transport)
	}
	t.mu.Lock()
	cut := t.cut
	t.mu.Unlock()
	if cut != nil {
		return nil, fmt.Errorf("%w: %w", ErrPartitioned, cut)
	}
	l, err := d.Dial(ctx, addr)
	if err != nil {
		return nil, err
	}
	t.mu.Lock()
	_, shown := t.links[l]
	cut = t.cut
	t.mu.Unlock()
	if !shown && cut != nil { // it came up after Break, hidden from the bus
		return nil, fmt.Errorf("%w: %w", ErrPartitioned, cut)
	}
	return l, nil
}

// Start starts the wrapped transport with a host that watches its links.
func (t *Tap) Start(h bus.Host) error {
	return t.Transport.Start(&tapHost{Host: h, tap: t})
}

// Break cuts the transports of taps off, as a partition does: it closes,
// with err, every link they have up, waits until each has been reported
// down to its bus, and until Heal closes every new link before its bus sees
// it. Give Break the taps of both ends, so that neither bus sees a link
// come back before Heal.
func Break(err error, taps ...*Tap) {
	downs := map[bus.Link]chan struct{}{}
	for _, t := range taps {
		t.mu.Lock()
		t.cut = err
		for l, down := range t.links {
			downs[l] = down
		}
		t.mu.Unlock()
	}
	for l := range downs {
		l.Close(err)
	}
	for _, down := range downs {
		<-down
	}
}

// Heal ends what Break began: new links of taps reach their buses again.
func Heal(taps ...*Tap) {
	for _, t := range taps {
		t.mu.Lock()
		t.cut = nil
		t.mu.Unlock()
	}
}

type tapHost struct {
	bus.Host
	tap *Tap
}

func (h *tapHost) LinkUp(l bus.Link) {
	t := h.tap
	t.mu.Lock()
	if cut := t.cut; cut != nil {
		t.hidden[l] = true
		t.mu.Unlock()
		l.Close(cut)
		return
	}
	t.links[l] = make(chan struct{})
	t.mu.Unlock()
	h.Host.LinkUp(l)
}

func (h *tapHost) LinkDown(l bus.Link, err error) {
	t := h.tap
	t.mu.Lock()
	if t.hidden[l] {
		delete(t.hidden, l)
		t.mu.Unlock()
		return
	}
	t.mu.Unlock()
	h.Host.LinkDown(l, err)
	t.mu.Lock()
	if down := t.links[l]; down != nil {
		close(down)
		delete(t.links, l)
	}
	t.mu.Unlock()
}
