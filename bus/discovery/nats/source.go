package nats

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	natsgo "github.com/nats-io/nats.go"

	"github.com/xbus-dev/xbus/bus"
)

// Defaults of Config.
const (
	DefaultPrefix         = "xbus.discovery"
	DefaultEndpointPrefix = "xbus"
	DefaultHeartbeat      = 2 * time.Second
	DefaultMaxSkew        = 30 * time.Second
	DefaultVersion        = "0.0.0"
	DefaultRequestTimeout = 10 * time.Second
	DefaultMaxInFlight    = 256
	// MinSecret is the shortest Config.Secret accepted, in bytes.
	MinSecret = 16
)

// Config configures a Source. Secret is required; the rest has defaults.
type Config struct {
	// URL is the NATS server to connect to ("nats://127.0.0.1:4222"; a
	// comma-separated list for a cluster), as nats.Connect takes it.
	// Ignored when Conn is set.
	URL string
	// Conn is a connection to use instead of dialing URL. The source
	// neither closes it nor changes its handlers.
	Conn *natsgo.Conn
	// Options are passed to nats.Connect after the source's own (a client
	// name, reconnect forever): credentials, TLS, a different reconnect.
	Options []natsgo.Option

	// Secret authenticates announcements: an HMAC-SHA256 under it covers
	// each one, and announcements that fail it are refused. Every node of
	// one cluster shares it; at least MinSecret bytes.
	Secret []byte
	// Prefix is the subject prefix of announcements: a node announces
	// itself on "<Prefix>.node.<node id>". Zero: DefaultPrefix.
	Prefix string
	// Heartbeat is how often a node announces itself again. Zero:
	// DefaultHeartbeat.
	Heartbeat time.Duration
	// TTL is how long other nodes keep this node after its last
	// announcement; a node that vanishes without a goodbye is dropped
	// then. Zero: three heartbeats.
	TTL time.Duration
	// MaxSkew is how far an announcement's time may be from the
	// receiver's clock: the nodes' clocks must agree within it. Zero:
	// DefaultMaxSkew.
	MaxSkew time.Duration

	// NoService turns off the NATS micro service (PING, INFO, STATS and
	// the names' endpoints); the source then only announces and listens.
	NoService bool
	// Service is the micro service's name. Zero: the bus's name mapped by
	// ServiceName. It must match [A-Za-z0-9_-]+.
	Service string
	// Version is the micro service's version, SemVer. Zero: DefaultVersion.
	Version string
	// Description and Metadata are reported by INFO (and Metadata by PING
	// and STATS).
	Description string
	Metadata    map[string]string
	// EndpointPrefix is the subject prefix of the names' endpoints: name
	// n is served on "<EndpointPrefix>.<EndpointName(n)>". Zero:
	// DefaultEndpointPrefix.
	EndpointPrefix string
	// Requests declares the request type of names called over NATS: a
	// JSON body to name n is decoded into a new value of the type of
	// Requests[n] (a sample value, as Types.Register takes), and that
	// value is what the actor receives. A request may instead name a type
	// registered with the bus's Types in its Xbus-Type header. A body to a
	// name with neither is decoded as encoding/json decodes into an any
	// (a string, a float64, a map[string]any, ...).
	Requests map[string]any
	// RequestTimeout bounds each request's Ask. Zero: DefaultRequestTimeout.
	RequestTimeout time.Duration
	// MaxInFlight bounds the requests handled at once; past it a request
	// is refused at once with code 503. Zero: DefaultMaxInFlight.
	MaxInFlight int
}

// Source is the NATS discovery source: give it to bus.WithDiscovery.
type Source struct {
	cfg Config

	d       bus.Discovered
	b       busAPI // nil when the service is off
	self    string // our node id
	selfSub string // our announcement subject
	nc      *natsgo.Conn
	ownConn bool
	sub     *natsgo.Subscription
	svc     *service

	mu    sync.Mutex // guards guard
	guard *replayGuard

	seq     atomic.Uint64
	refused atomic.Uint64
	lastLog atomic.Int64 // unix nanoseconds of the last refusal logged
	poke    chan struct{}
	stop    chan struct{}
	done    chan struct{}
	once    sync.Once
	started atomic.Bool // Start was called
	running atomic.Bool // Start succeeded: the loop runs until Close
}

// busAPI is what the micro service needs of the bus beyond bus.Discovered;
// *bus.Bus implements it.
type busAPI interface {
	bus.Discovered
	Name() string
	Types() *bus.Types
	Ask(ctx context.Context, to any, msg any) (any, error)
}

// New checks cfg and returns a Source to give to bus.WithDiscovery. It
// connects to NATS when the bus starts it.
func New(cfg Config) (*Source, error) {
	if len(cfg.Secret) < MinSecret {
		return nil, fmt.Errorf("nats discovery: Secret must be at least %d bytes (it authenticates announcements)", MinSecret)
	}
	if cfg.URL == "" && cfg.Conn == nil {
		return nil, errors.New("nats discovery: give a URL or a Conn")
	}
	cfg.Secret = append([]byte(nil), cfg.Secret...)
	if cfg.Prefix == "" {
		cfg.Prefix = DefaultPrefix
	}
	if cfg.EndpointPrefix == "" {
		cfg.EndpointPrefix = DefaultEndpointPrefix
	}
	for _, p := range []string{cfg.Prefix, cfg.EndpointPrefix} {
		if !validSubject(p) {
			return nil, fmt.Errorf("nats discovery: prefix %q is not a subject without wildcards", p)
		}
	}
	if cfg.Heartbeat <= 0 {
		cfg.Heartbeat = DefaultHeartbeat
	}
	if cfg.TTL <= 0 {
		cfg.TTL = 3 * cfg.Heartbeat
	}
	if cfg.TTL < minTTL || cfg.TTL > maxTTL || cfg.TTL < cfg.Heartbeat {
		return nil, fmt.Errorf("nats discovery: TTL %v must be in [%v, %v] and at least Heartbeat (%v)", cfg.TTL, minTTL, maxTTL, cfg.Heartbeat)
	}
	if cfg.MaxSkew <= 0 {
		cfg.MaxSkew = DefaultMaxSkew
	}
	if cfg.Version == "" {
		cfg.Version = DefaultVersion
	}
	if !semver.MatchString(cfg.Version) {
		return nil, fmt.Errorf("nats discovery: Version %q is not SemVer (major.minor.patch)", cfg.Version)
	}
	if cfg.Service != "" && !serviceNameRE.MatchString(cfg.Service) {
		return nil, fmt.Errorf("nats discovery: Service %q: a micro service name allows only [A-Za-z0-9_-]", cfg.Service)
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = DefaultRequestTimeout
	}
	if cfg.MaxInFlight <= 0 {
		cfg.MaxInFlight = DefaultMaxInFlight
	}
	return &Source{cfg: cfg, poke: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}, nil
}

// validSubject reports whether s is a NATS subject of non-empty tokens
// without wildcards or white space.
func validSubject(s string) bool {
	for tok := range strings.SplitSeq(s, ".") {
		if tok == "" || tok == "*" || tok == ">" || strings.ContainsAny(tok, " \t\r\n") {
			return false
		}
	}
	return true
}

// Start implements bus.Discovery: it connects, listens for other nodes'
// announcements, starts the micro service and announces this node.
func (s *Source) Start(_ context.Context, d bus.Discovered) error {
	if !s.started.CompareAndSwap(false, true) {
		return errors.New("nats discovery: a Source serves one bus")
	}
	s.d = d
	self := d.Self()
	s.self = self.ID.String()
	s.selfSub = s.cfg.Prefix + ".node." + s.self
	s.guard = newReplayGuard(s.cfg.MaxSkew)
	if !s.cfg.NoService {
		b, ok := d.(busAPI)
		if !ok {
			return fmt.Errorf("nats discovery: the micro service needs a *bus.Bus, not a %T (or set NoService)", d)
		}
		s.b = b
	}
	s.nc = s.cfg.Conn
	if s.nc == nil {
		opts := append([]natsgo.Option{natsgo.Name("xbus " + self.ID.Short()), natsgo.MaxReconnects(-1)}, s.cfg.Options...)
		nc, err := natsgo.Connect(s.cfg.URL, opts...)
		if err != nil {
			return fmt.Errorf("nats discovery: connecting to %s: %w", s.cfg.URL, err)
		}
		s.nc, s.ownConn = nc, true
	}
	sub, err := s.nc.Subscribe(s.cfg.Prefix+".node.*", s.onAnnounce)
	if err != nil {
		s.closeConn()
		return fmt.Errorf("nats discovery: subscribing: %w", err)
	}
	s.sub = sub
	if s.b != nil {
		svc, err := startService(s)
		if err != nil {
			_ = sub.Unsubscribe()
			s.closeConn()
			return err
		}
		s.svc = svc
	}
	// Once Start returns, the server has every subscription: a PING sent
	// then is answered.
	if err := s.nc.FlushTimeout(5 * time.Second); err != nil {
		s.d.Logger().Warn("nats discovery: flushing subscriptions", "err", err)
	}
	s.running.Store(true)
	go s.loop()
	return nil
}

// Close implements bus.Discovery: it says goodbye, stops the micro service
// (waiting for the requests it is handling) and closes its connection.
func (s *Source) Close() error {
	if !s.running.Load() {
		return nil // never started, or Start failed and undid itself
	}
	s.once.Do(func() {
		close(s.stop)
		<-s.done
		_ = s.sub.Unsubscribe()
		if s.svc != nil {
			s.svc.close()
		}
		s.closeConn()
	})
	return nil
}

func (s *Source) closeConn() {
	if s.ownConn {
		s.nc.Close()
	}
}

// Refused counts the announcements refused: not authenticated, malformed,
// oversized, stale or replayed.
func (s *Source) Refused() uint64 { return s.refused.Load() }

// Conn returns the source's NATS connection once started.
func (s *Source) Conn() *natsgo.Conn { return s.nc }

// loop announces this node: at once (asking the others to announce
// themselves), on every heartbeat, shortly after its names change, when
// another node asks; and says goodbye when the source closes.
func (s *Source) loop() {
	defer close(s.done)
	tick := time.NewTicker(s.cfg.Heartbeat)
	defer tick.Stop()
	// A burst of registrations makes one announcement, not one each.
	const settle = 20 * time.Millisecond
	soon := time.NewTimer(time.Hour)
	soon.Stop()
	changed := s.d.Changed()
	s.announce(kindHello, true)
	for {
		select {
		case <-s.stop:
			s.announce(kindBye, false)
			if err := s.nc.FlushTimeout(time.Second); err != nil && s.nc.IsConnected() {
				s.d.Logger().Warn("nats discovery: goodbye not flushed", "err", err)
			}
			return
		case <-tick.C:
			s.announce(kindHello, false)
			s.mu.Lock()
			s.guard.prune(time.Now())
			s.mu.Unlock()
		case <-changed:
			changed = s.d.Changed()
			soon.Reset(settle)
		case <-soon.C:
			s.announce(kindHello, false)
		case <-s.poke:
			s.announce(kindHello, false)
		}
	}
}

// announce publishes this node's hello (or bye).
func (s *Source) announce(kind string, want bool) {
	self := s.d.Self()
	a := &announcement{
		V: announceVersion, Kind: kind, Node: s.self, Host: self.Host,
		Seq: s.seq.Add(1), Time: time.Now().UnixMilli(), TTL: s.cfg.TTL.Milliseconds(), Want: want,
	}
	if s.b != nil {
		a.Name = s.b.Name()
	}
	if kind == kindHello {
		a.Addrs, a.Names = self.Addrs, self.Names
		if s.svc != nil {
			s.svc.sync(self.Names)
		}
	}
	data, macText, err := seal(s.cfg.Secret, s.selfSub, a)
	if err != nil {
		s.d.Logger().Error("nats discovery: cannot announce this node", "err", err)
		return
	}
	msg := &natsgo.Msg{Subject: s.selfSub, Data: data, Header: natsgo.Header{macHeader: []string{macText}}}
	if err := s.nc.PublishMsg(msg); err != nil && !errors.Is(err, natsgo.ErrConnectionClosed) {
		s.d.Logger().Warn("nats discovery: announcing", "err", err)
	}
}

// onAnnounce handles another node's announcement, on the subscription's
// goroutine.
func (s *Source) onAnnounce(m *natsgo.Msg) {
	if m.Subject == s.selfSub {
		return // our own, echoed; or someone else's on our subject
	}
	var macText string
	if m.Header != nil {
		macText = m.Header.Get(macHeader)
	}
	a, err := open(s.cfg.Secret, m.Subject, m.Data, macText)
	if err == nil {
		s.mu.Lock()
		err = s.guard.admit(a, time.Now())
		s.mu.Unlock()
	}
	if err != nil {
		s.refuse(m.Subject, err)
		return
	}
	id := bus.NodeID(uuid.MustParse(a.Node)) // check made it canonical
	switch a.Kind {
	case kindHello:
		s.d.Found(bus.NodeInfo{ID: id, Host: a.Host, Addrs: a.Addrs, Names: a.Names, TTL: time.Duration(a.TTL) * time.Millisecond})
		if a.Want {
			select {
			case s.poke <- struct{}{}:
			default:
			}
		}
	case kindBye:
		s.d.Lost(bus.NodeInfo{ID: id})
	}
}

// refuse counts a refused announcement and logs it, at most once a second
// (with the count since), so a flood of forgeries cannot flood the log.
func (s *Source) refuse(subject string, err error) {
	n := s.refused.Add(1)
	now := time.Now().UnixNano()
	last := s.lastLog.Load()
	if now-last < int64(time.Second) || !s.lastLog.CompareAndSwap(last, now) {
		return
	}
	s.d.Logger().Warn("nats discovery: announcement refused", "subject", subject, "err", err, "refused", n)
}
