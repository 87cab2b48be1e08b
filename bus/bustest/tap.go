package bustest

import (
	"sync"

	"github.com/xbus-dev/xbus/bus"
)

// Tap wraps a real transport so that a test can break its links, as a
// Maker's Break must: bus.WithTransport(tap) in place of the transport.
// Everything else passes through to the wrapped transport.
type Tap struct {
	bus.Transport

	mu    sync.Mutex
	links map[bus.Link]chan struct{} // closed when the link is reported down
}

// NewTap wraps tr.
func NewTap(tr bus.Transport) *Tap {
	return &Tap{Transport: tr, links: map[bus.Link]chan struct{}{}}
}

// Start starts the wrapped transport with a host that records its links.
func (t *Tap) Start(h bus.Host) error {
	return t.Transport.Start(&tapHost{Host: h, tap: t})
}

// Break closes every link of the transport that is up, with err, and waits
// until the transport has reported each one down to the bus.
func (t *Tap) Break(err error) {
	t.mu.Lock()
	downs := make(map[bus.Link]chan struct{}, len(t.links))
	for l, down := range t.links {
		downs[l] = down
	}
	t.mu.Unlock()
	for l, down := range downs {
		l.Close(err)
		<-down
	}
}

type tapHost struct {
	bus.Host
	tap *Tap
}

func (h *tapHost) LinkUp(l bus.Link) {
	h.tap.mu.Lock()
	h.tap.links[l] = make(chan struct{})
	h.tap.mu.Unlock()
	h.Host.LinkUp(l)
}

func (h *tapHost) LinkDown(l bus.Link, err error) {
	h.Host.LinkDown(l, err)
	h.tap.mu.Lock()
	if down := h.tap.links[l]; down != nil {
		close(down)
		delete(h.tap.links, l)
	}
	h.tap.mu.Unlock()
}
