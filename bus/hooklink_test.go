package bus_test

import (
	"context"
	"sync"

	"github.com/xbus-dev/xbus/bus"
	"github.com/xbus-dev/xbus/netbus"
)

// hookTransport wraps a netbus transport so that each link the bus sees,
// from Dial and from every Host call, is a *hookLink whose sends go
// through send. A test sets its hooks before the bus starts it.
type hookTransport struct {
	*netbus.Transport
	// send sends env on l: it may hold it, count it, drop it or refuse
	// it, and calls l.Link.Send to send it. Nil: l.Link.Send.
	send func(l *hookLink, ctx context.Context, env *bus.Envelope) error
	// up runs after the bus h took l up. Nil: nothing.
	up func(h bus.Host, l *hookLink)

	mu    sync.Mutex
	ours  map[bus.Link]*hookLink // by the transport's link
	order []*hookLink            // in the order first seen
}

func newHookTransport(cfg netbus.Config) *hookTransport {
	return &hookTransport{Transport: netbus.New(cfg), ours: map[bus.Link]*hookLink{}}
}

// hookLink is the bus's view of one of the transport's links.
type hookLink struct {
	bus.Link
	t *hookTransport
}

func (l *hookLink) Send(ctx context.Context, env *bus.Envelope) error {
	if l.t.send == nil {
		return l.Link.Send(ctx, env)
	}
	return l.t.send(l, ctx, env)
}

// wrap is the bus's view of the transport's link l, the same each time.
func (t *hookTransport) wrap(l bus.Link) *hookLink {
	t.mu.Lock()
	defer t.mu.Unlock()
	w := t.ours[l]
	if w == nil {
		w = &hookLink{Link: l, t: t}
		t.ours[l] = w
		t.order = append(t.order, w)
	}
	return w
}

// seen returns every link the bus was shown, in the order first seen.
func (t *hookTransport) seen() []*hookLink {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]*hookLink(nil), t.order...)
}

// Dial returns the bus's view of the link dialed, as LinkUp reports it.
func (t *hookTransport) Dial(ctx context.Context, addr string) (bus.Link, error) {
	l, err := t.Transport.Dial(ctx, addr)
	if err != nil {
		return nil, err
	}
	return t.wrap(l), nil
}

func (t *hookTransport) Start(h bus.Host) error { return t.Transport.Start(&hookHost{h, t}) }

type hookHost struct {
	bus.Host
	t *hookTransport
}

func (h *hookHost) LinkUp(l bus.Link) {
	w := h.t.wrap(l)
	h.Host.LinkUp(w)
	if h.t.up != nil {
		h.t.up(h.Host, w)
	}
}

func (h *hookHost) Deliver(l bus.Link, env *bus.Envelope) { h.Host.Deliver(h.t.wrap(l), env) }

func (h *hookHost) Undelivered(l bus.Link, env *bus.Envelope, err error) {
	h.Host.Undelivered(h.t.wrap(l), env, err)
}

func (h *hookHost) LinkDown(l bus.Link, err error) { h.Host.LinkDown(h.t.wrap(l), err) }
