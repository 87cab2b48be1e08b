package bustest

import (
	"context"
	"fmt"
	"sync"

	"github.com/xbus-dev/xbus/bus"
)

// HandBacks wraps a real transport to watch the asks its links hand back to
// the bus (Host.Undelivered), counting them per link before the link's
// LinkDown and after it: a transport hands back every ask it never sent
// before it reports the link down, so that the bus places it again. Use it
// in place of the transport: bus.WithTransport(w). The host it gives the
// transport is not a bus.BatchHost: envelopes are delivered one by one.
type HandBacks struct {
	bus.Transport

	mu            sync.Mutex
	links         []bus.Link        // in the order they came up
	down          map[bus.Link]bool // reported down
	before, after map[bus.Link]int  // asks handed back before LinkDown, and after it
}

// WatchHandBacks wraps tr.
func WatchHandBacks(tr bus.Transport) *HandBacks {
	return &HandBacks{Transport: tr, down: map[bus.Link]bool{},
		before: map[bus.Link]int{}, after: map[bus.Link]int{}}
}

// Dial dials through the wrapped transport, which must be a bus.Dialer.
func (w *HandBacks) Dial(ctx context.Context, addr string) (bus.Link, error) {
	d, ok := w.Transport.(bus.Dialer)
	if !ok {
		return nil, fmt.Errorf("%w: bustest: %T does not dial", bus.ErrUnsupported, w.Transport)
	}
	return d.Dial(ctx, addr)
}

// Start starts the wrapped transport with a host that watches its links.
func (w *HandBacks) Start(h bus.Host) error {
	return w.Transport.Start(&handBackHost{Host: h, w: w})
}

// LinkTo returns the first link up to peer and not reported down, or nil.
func (w *HandBacks) LinkTo(peer bus.NodeID) bus.Link {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, l := range w.links {
		if l.Peer() == peer && !w.down[l] {
			return l
		}
	}
	return nil
}

// Counts returns the asks l handed back before its LinkDown and after it.
func (w *HandBacks) Counts(l bus.Link) (before, after int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.before[l], w.after[l]
}

// Total returns the asks every link handed back before its LinkDown and
// after it.
func (w *HandBacks) Total() (before, after int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, n := range w.before {
		before += n
	}
	for _, n := range w.after {
		after += n
	}
	return before, after
}

type handBackHost struct {
	bus.Host
	w *HandBacks
}

func (h *handBackHost) LinkUp(l bus.Link) {
	h.w.mu.Lock()
	h.w.links = append(h.w.links, l)
	h.w.mu.Unlock()
	h.Host.LinkUp(l)
}

func (h *handBackHost) Undelivered(l bus.Link, env *bus.Envelope, err error) {
	if env.Kind == bus.KindAsk {
		h.w.mu.Lock()
		if h.w.down[l] {
			h.w.after[l]++
		} else {
			h.w.before[l]++
		}
		h.w.mu.Unlock()
	}
	h.Host.Undelivered(l, env, err)
}

func (h *handBackHost) LinkDown(l bus.Link, err error) {
	h.w.mu.Lock()
	h.w.down[l] = true
	h.w.mu.Unlock()
	h.Host.LinkDown(l, err)
}
