// Package static is a discovery source for a fixed list of addresses.
//
// Each address ("tcp://db1:7400", "unix:///run/x.sock", "shm:///run/x.sock",
// a bare "host:port") is reported to the bus as a node whose id the link's
// handshake will tell; the bus keeps each linked. The list can change while
// the bus runs: Set replaces it, and Config.Resolve re-reads it on an
// interval (a file, a service registry, a host name that resolves to a new
// set of addresses). Addresses that leave the list are no longer kept
// linked.
//
//	src := static.New(static.Config{Addrs: []string{"tcp://10.0.0.2:7400", "tcp://10.0.0.3:7400"}})
//	b, err := bus.New(bus.WithTransport(netbus.New(netbus.Config{Listen: []string{":7400"}})),
//		bus.WithDiscovery(src))
package static

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/xbus-dev/xbus/bus"
)

// Config configures a Source. The zero value is valid: an empty list, until
// Set.
type Config struct {
	// Addrs is the list reported from Start on.
	Addrs []string
	// Resolve, when set, is called once started and every Refresh after; the
	// list it returns replaces the current one. An error keeps the current
	// list and is logged.
	Resolve func(ctx context.Context) ([]string, error)
	// Refresh is how often Resolve is called. Zero: DefaultRefresh.
	Refresh time.Duration
}

// DefaultRefresh is how often Config.Resolve is called when Refresh is zero.
const DefaultRefresh = 30 * time.Second

// Source reports a list of addresses. It implements bus.Discovery.
type Source struct {
	cfg Config

	mu     sync.Mutex // guards d, addrs and closed
	d      bus.Discovered
	addrs  []string // reported
	closed bool

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// New returns a source for cfg.
func New(cfg Config) *Source {
	if cfg.Refresh <= 0 {
		cfg.Refresh = DefaultRefresh
	}
	return &Source{cfg: cfg}
}

// Start implements bus.Discovery: it reports the list, and starts calling
// Resolve when one is set.
func (s *Source) Start(ctx context.Context, d bus.Discovered) error {
	s.mu.Lock()
	s.d = d
	s.mu.Unlock()
	s.Set(s.cfg.Addrs...)
	if s.cfg.Resolve == nil {
		return nil
	}
	ctx, s.cancel = context.WithCancel(ctx)
	s.wg.Go(func() {
		t := time.NewTicker(s.cfg.Refresh)
		defer t.Stop()
		for {
			s.resolve(ctx, d.Logger())
			select {
			case <-t.C:
			case <-ctx.Done():
				return
			}
		}
	})
	return nil
}

func (s *Source) resolve(ctx context.Context, log *slog.Logger) {
	addrs, err := s.cfg.Resolve(ctx)
	if err != nil {
		if ctx.Err() == nil {
			log.Warn("discovery: resolve failed; keeping the current list", "err", err)
		}
		return
	}
	s.Set(addrs...)
}

// Set replaces the list: addresses new to it are reported found, those no
// longer in it lost. Before Start it replaces Config.Addrs.
func (s *Source) Set(addrs ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	addrs = slices.Compact(slices.Sorted(slices.Values(addrs)))
	if s.d == nil {
		s.cfg.Addrs = addrs
		return
	}
	for _, a := range s.addrs {
		if _, found := slices.BinarySearch(addrs, a); !found {
			s.d.Lost(bus.NodeInfo{Addrs: []string{a}})
		}
	}
	for _, a := range addrs {
		if _, found := slices.BinarySearch(s.addrs, a); !found && a != "" {
			s.d.Found(bus.NodeInfo{Addrs: []string{a}})
		}
	}
	s.addrs = addrs
}

// Addrs returns the list as last set.
func (s *Source) Addrs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.d == nil {
		return slices.Clone(s.cfg.Addrs)
	}
	return slices.Clone(s.addrs)
}

// Close implements bus.Discovery: it stops calling Resolve.
func (s *Source) Close() error {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	if s.cancel != nil {
		s.cancel()
	}
	s.wg.Wait()
	return nil
}
