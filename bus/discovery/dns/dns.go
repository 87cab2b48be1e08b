// Package dns is a discovery source that finds nodes in DNS: SRV records
// (each target's A/AAAA records, at the port the record gives) and plain
// host names (their A/AAAA records, at a port the configuration gives),
// looked up again every Refresh.
//
// Each address found ("tcp://10.0.0.7:7400") is reported to the bus as a
// node whose id the link's handshake will tell; addresses that leave the
// answers are reported lost, so the bus stops keeping them linked. A lookup
// that fails (a timeout, SERVFAIL, NXDOMAIN, an answer that does not parse)
// keeps the addresses the last good one gave and is logged: a DNS outage
// does not unlink a running mesh.
//
//	src := dns.New(dns.Config{SRV: []string{"_xbus._tcp.svc.cluster.local"}})
//	b, err := bus.New(bus.WithTransport(netbus.New(netbus.Config{Listen: []string{":7400"}})),
//		bus.WithDiscovery(src))
package dns

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"time"

	"github.com/xbus-dev/xbus/bus"
	"github.com/xbus-dev/xbus/bus/discovery/static"
)

// Config configures a Source. At least one of SRV and Hosts is required.
type Config struct {
	// SRV lists SRV names to look up ("_xbus._tcp.example.com"). Each
	// record's target is looked up for A/AAAA and linked at its port.
	SRV []string
	// Hosts lists "host:port" pairs: host is looked up for A/AAAA and each
	// address linked at port.
	Hosts []string
	// Scheme is the scheme of the addresses reported. Zero: "tcp".
	Scheme string
	// Refresh is how often the names are looked up again. Zero:
	// DefaultRefresh.
	Refresh time.Duration
	// Timeout bounds one round of lookups. Zero: DefaultTimeout.
	Timeout time.Duration
	// Resolver does the lookups. Zero: net.DefaultResolver. A
	// net.Resolver with PreferGo and a Dial of its own points it at a
	// chosen server.
	Resolver *net.Resolver
}

// Defaults of Config.
const (
	DefaultRefresh = 30 * time.Second
	DefaultTimeout = 10 * time.Second
)

// maxAddrs bounds the addresses one round of lookups reports, so a hostile
// answer cannot make the bus dial without end.
const maxAddrs = 1024

var errNoNames = errors.New("dns: Config.SRV and Config.Hosts are both empty")

// Source looks nodes up in DNS. It implements bus.Discovery.
type Source struct {
	cfg  Config
	list *static.Source // reports what Lookup returns
}

// New returns a source for cfg; Start reports a configuration without names
// as an error.
func New(cfg Config) *Source {
	if cfg.Scheme == "" {
		cfg.Scheme = "tcp"
	}
	if cfg.Refresh <= 0 {
		cfg.Refresh = DefaultRefresh
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.Resolver == nil {
		cfg.Resolver = net.DefaultResolver
	}
	s := &Source{cfg: cfg}
	s.list = static.New(static.Config{Resolve: s.Lookup, Refresh: cfg.Refresh})
	return s
}

// Addrs returns the addresses the last good round of lookups found.
func (s *Source) Addrs() []string { return s.list.Addrs() }

// Close implements bus.Discovery: it stops looking up.
func (s *Source) Close() error { return s.list.Close() }

// Start implements bus.Discovery: it checks the configuration and starts
// looking up.
func (s *Source) Start(ctx context.Context, d bus.Discovered) error {
	if len(s.cfg.SRV) == 0 && len(s.cfg.Hosts) == 0 {
		return errNoNames
	}
	for _, h := range s.cfg.Hosts {
		if _, _, err := hostPort(h); err != nil {
			return err
		}
	}
	return s.list.Start(ctx, d)
}

func hostPort(hp string) (string, uint16, error) {
	host, port, err := net.SplitHostPort(hp)
	if err != nil {
		return "", 0, fmt.Errorf("dns: host %q: %w", hp, err)
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil || p == 0 {
		return "", 0, fmt.Errorf("dns: host %q: port must be 1 to 65535", hp)
	}
	return host, uint16(p), nil
}

// Lookup does one round of lookups and returns the addresses found, sorted.
// It fails when any name fails, so that a partial answer never unlinks the
// nodes a failing name gave before.
func (s *Source) Lookup(ctx context.Context) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	var out []string
	add := func(ips []netip.Addr, port uint16) {
		for _, ip := range ips {
			ip = ip.Unmap()
			if !ip.IsValid() || ip.IsUnspecified() || ip.IsMulticast() {
				continue
			}
			if len(out) < maxAddrs {
				out = append(out, s.cfg.Scheme+"://"+netip.AddrPortFrom(ip, port).String())
			}
		}
	}
	for _, name := range s.cfg.SRV {
		_, srvs, err := s.cfg.Resolver.LookupSRV(ctx, "", "", name)
		if err != nil {
			return nil, fmt.Errorf("dns: SRV %s: %w", name, err)
		}
		for _, r := range srvs {
			if r.Port == 0 || r.Target == "" || r.Target == "." {
				continue
			}
			if len(out) >= maxAddrs {
				break
			}
			ips, err := s.cfg.Resolver.LookupNetIP(ctx, "ip", r.Target)
			if err != nil {
				return nil, fmt.Errorf("dns: SRV %s: target %s: %w", name, r.Target, err)
			}
			add(ips, r.Port)
		}
	}
	for _, hp := range s.cfg.Hosts {
		host, port, _ := hostPort(hp)
		ips, err := s.cfg.Resolver.LookupNetIP(ctx, "ip", host)
		if err != nil {
			return nil, fmt.Errorf("dns: host %s: %w", host, err)
		}
		add(ips, port)
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}
