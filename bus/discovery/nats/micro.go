package nats

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strconv"
	"sync"
	"time"

	natsgo "github.com/nats-io/nats.go"

	"github.com/xbus-dev/xbus/bus"
)

// The NATS micro services protocol (io.nats.micro.v1): the subjects,
// response types, queue group and error headers any NATS client and the
// nats CLI ("nats micro ls", "nats micro info", "nats req") understand.
const (
	srvPrefix       = "$SRV"
	queueGroup      = "q"
	pingType        = "io.nats.micro.v1.ping_response"
	infoType        = "io.nats.micro.v1.info_response"
	statsType       = "io.nats.micro.v1.stats_response"
	ErrorHeader     = "Nats-Service-Error"
	ErrorCodeHeader = "Nats-Service-Error-Code"
	// TypeHeader names, on a request, a type registered with the bus's
	// Types to decode the JSON body into.
	TypeHeader = "Xbus-Type"
	// nameMeta is the endpoint metadata key that holds the xbus name.
	nameMeta = "xbus.name"
)

// The replies of PING, INFO and STATS, field for field as the schemas
// io.nats.micro.v1.{ping,info,stats}_response require.
type (
	identity struct {
		Name     string            `json:"name"`
		ID       string            `json:"id"`
		Version  string            `json:"version"`
		Metadata map[string]string `json:"metadata"`
	}
	pingResponse struct {
		Type string `json:"type"`
		identity
	}
	infoResponse struct {
		Type string `json:"type"`
		identity
		Description string         `json:"description"`
		Endpoints   []endpointInfo `json:"endpoints"`
	}
	endpointInfo struct {
		Name       string            `json:"name"`
		Subject    string            `json:"subject"`
		QueueGroup string            `json:"queue_group"`
		Metadata   map[string]string `json:"metadata"`
	}
	statsResponse struct {
		Type string `json:"type"`
		identity
		Started   time.Time       `json:"started"`
		Endpoints []endpointStats `json:"endpoints"`
	}
	endpointStats struct {
		Name                  string `json:"name"`
		Subject               string `json:"subject"`
		QueueGroup            string `json:"queue_group"`
		NumRequests           int64  `json:"num_requests"`
		NumErrors             int64  `json:"num_errors"`
		LastError             string `json:"last_error"`
		ProcessingTime        int64  `json:"processing_time"`         // nanoseconds
		AverageProcessingTime int64  `json:"average_processing_time"` // nanoseconds
	}
)

// service is this bus as a NATS micro service: it answers the protocol's
// PING, INFO and STATS and serves each local name as an endpoint. Names
// come and go with the bus's registrations (sync).
type service struct {
	s       *Source
	id      identity
	started time.Time
	sem     chan struct{} // one slot per request in flight
	verbs   []*natsgo.Subscription

	mu        sync.Mutex // guards what follows
	endpoints map[string]*endpoint
	closed    bool
	wg        sync.WaitGroup // requests in flight
}

// endpoint is one local name served over NATS, with its statistics.
type endpoint struct {
	name, subject, xbusName string
	sub                     *natsgo.Subscription
	// guarded by service.mu
	requests, errors int64
	lastError        string
	processing       time.Duration
}

func startService(s *Source) (*service, error) {
	name := s.cfg.Service
	if name == "" {
		name = ServiceName(s.b.Name())
	}
	meta := maps.Clone(s.cfg.Metadata)
	if meta == nil {
		meta = map[string]string{}
	}
	v := &service{
		s:         s,
		id:        identity{Name: name, ID: s.self, Version: s.cfg.Version, Metadata: meta},
		started:   time.Now().UTC(),
		sem:       make(chan struct{}, s.cfg.MaxInFlight),
		endpoints: map[string]*endpoint{},
	}
	for verb, reply := range map[string]func() any{
		"PING":  func() any { return pingResponse{Type: pingType, identity: v.id} },
		"INFO":  func() any { return v.info() },
		"STATS": func() any { return v.stats() },
	} {
		for _, subj := range []string{srvPrefix + "." + verb, srvPrefix + "." + verb + "." + name, srvPrefix + "." + verb + "." + name + "." + s.self} {
			sub, err := s.nc.Subscribe(subj, func(m *natsgo.Msg) {
				data, _ := json.Marshal(reply()) // plain structs: cannot fail
				_ = m.Respond(data)
			})
			if err != nil {
				v.close()
				return nil, fmt.Errorf("nats discovery: subscribing to %s: %w", subj, err)
			}
			v.verbs = append(v.verbs, sub)
		}
	}
	return v, nil // the source's first announcement serves the names (sync)
}

func (v *service) info() infoResponse {
	v.mu.Lock()
	defer v.mu.Unlock()
	r := infoResponse{Type: infoType, identity: v.id, Description: v.s.cfg.Description, Endpoints: []endpointInfo{}}
	for _, e := range v.sorted() {
		r.Endpoints = append(r.Endpoints, endpointInfo{Name: e.name, Subject: e.subject, QueueGroup: queueGroup,
			Metadata: map[string]string{nameMeta: e.xbusName}})
	}
	return r
}

func (v *service) stats() statsResponse {
	v.mu.Lock()
	defer v.mu.Unlock()
	r := statsResponse{Type: statsType, identity: v.id, Started: v.started, Endpoints: []endpointStats{}}
	for _, e := range v.sorted() {
		st := endpointStats{Name: e.name, Subject: e.subject, QueueGroup: queueGroup, NumRequests: e.requests,
			NumErrors: e.errors, LastError: e.lastError, ProcessingTime: int64(e.processing)}
		if e.requests > 0 {
			st.AverageProcessingTime = int64(e.processing) / e.requests
		}
		r.Endpoints = append(r.Endpoints, st)
	}
	return r
}

// sorted lists the endpoints by name; v.mu must be held.
func (v *service) sorted() []*endpoint {
	return slices.SortedFunc(maps.Values(v.endpoints), func(a, b *endpoint) int {
		return cmpString(a.name, b.name)
	})
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// sync serves exactly names: it subscribes new names' endpoints (in the
// queue group, so a name on several nodes gets each request once) and
// unsubscribes those of names that left. An endpoint is listed by INFO and
// STATS only once the server has its subscription, so a client that sees
// it can call it. sync runs on the source's loop only.
func (v *service) sync(names []string) {
	v.mu.Lock()
	closed := v.closed
	var added []*endpoint
	want := make(map[string]bool, len(names))
	for _, n := range names {
		want[n] = true
		if v.endpoints[n] == nil {
			added = append(added, &endpoint{xbusName: n, name: EndpointName(n)})
		}
	}
	for n, e := range v.endpoints {
		if !want[n] {
			_ = e.sub.Unsubscribe()
			delete(v.endpoints, n)
		}
	}
	v.mu.Unlock()
	if closed || len(added) == 0 {
		return
	}
	var up []*endpoint
	for _, e := range added {
		e.subject = v.s.cfg.EndpointPrefix + "." + e.name
		sub, err := v.s.nc.QueueSubscribe(e.subject, queueGroup, func(m *natsgo.Msg) { v.onRequest(e, m) })
		if err != nil {
			v.s.d.Logger().Warn("nats discovery: cannot serve a name over NATS", "name", e.xbusName, "err", err)
			continue
		}
		e.sub = sub
		up = append(up, e)
	}
	_ = v.s.nc.FlushTimeout(time.Second) // best effort: a reconnect resubscribes anyway
	v.mu.Lock()
	defer v.mu.Unlock()
	for _, e := range up {
		if v.closed {
			_ = e.sub.Unsubscribe()
			continue
		}
		v.endpoints[e.xbusName] = e
	}
}

// close stops answering and waits for the requests in flight (each bounded
// by RequestTimeout).
func (v *service) close() {
	v.mu.Lock()
	v.closed = true
	for _, e := range v.endpoints {
		_ = e.sub.Unsubscribe()
	}
	v.mu.Unlock()
	for _, sub := range v.verbs {
		_ = sub.Unsubscribe()
	}
	v.wg.Wait()
}

// onRequest runs on the endpoint's subscription goroutine, which must never
// wait on an actor: the request is handled on a goroutine of its own, or
// refused at once when MaxInFlight are already.
func (v *service) onRequest(e *endpoint, m *natsgo.Msg) {
	select {
	case v.sem <- struct{}{}:
	default:
		v.finish(e, m, 0, nil, fmt.Errorf("%w: %d requests in flight", bus.ErrMailboxFull, cap(v.sem)))
		return
	}
	v.mu.Lock()
	if v.closed {
		v.mu.Unlock()
		<-v.sem
		v.finish(e, m, 0, nil, bus.ErrClosed)
		return
	}
	v.wg.Add(1)
	v.mu.Unlock()
	go func() {
		defer v.wg.Done()
		defer func() { <-v.sem }()
		start := time.Now()
		reply, err := v.call(e, m)
		v.finish(e, m, time.Since(start), reply, err)
	}()
}

// call decodes the request's JSON body and asks the name with it.
func (v *service) call(e *endpoint, m *natsgo.Msg) (any, error) {
	msg, err := v.decode(e.xbusName, m)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), v.s.cfg.RequestTimeout)
	defer cancel()
	return v.s.b.Ask(ctx, e.xbusName, msg)
}

// errBadRequest marks a request body that does not decode.
var errBadRequest = errors.New("bad request")

// decode decodes the body into the name's request type (Config.Requests),
// or the type its Xbus-Type header names, or else into an any. An empty
// body is JSON null: the type's zero value.
func (v *service) decode(name string, m *natsgo.Msg) (any, error) {
	data := m.Data
	if len(data) == 0 {
		data = []byte("null")
	}
	var rt reflect.Type
	if tn := m.Header.Get(TypeHeader); tn != "" {
		p, err := v.s.b.Types().New(tn)
		if err != nil {
			return nil, fmt.Errorf("%w: %s header: %w", errBadRequest, TypeHeader, err)
		}
		rt = p.Type().Elem()
	} else if sample, ok := v.s.cfg.Requests[name]; ok && sample != nil {
		rt = reflect.TypeOf(sample)
	}
	if rt == nil {
		var msg any
		if err := json.Unmarshal(data, &msg); err != nil {
			return nil, fmt.Errorf("%w: body is not JSON: %w", errBadRequest, err)
		}
		return msg, nil
	}
	p := reflect.New(rt)
	if err := json.Unmarshal(data, p.Interface()); err != nil {
		return nil, fmt.Errorf("%w: body does not decode into %v: %w", errBadRequest, rt, err)
	}
	return p.Elem().Interface(), nil
}

// finish counts a request and answers it (a message without a reply
// subject was a one-way call: the actor got it, nobody waits). It counts
// first, so a client that has its reply sees it in STATS.
func (v *service) finish(e *endpoint, m *natsgo.Msg, took time.Duration, reply any, err error) {
	var data []byte
	if err == nil {
		if data, err = json.Marshal(reply); err != nil {
			err = fmt.Errorf("reply of type %T does not encode as JSON: %w", reply, err)
		}
	}
	out := &natsgo.Msg{Data: data}
	if err != nil {
		out.Header = natsgo.Header{ErrorHeader: []string{err.Error()}, ErrorCodeHeader: []string{strconv.Itoa(errorCode(err))}}
		out.Data = nil
	}
	v.count(e, true, took, err)
	if m.Reply != "" {
		if rerr := m.RespondMsg(out); rerr != nil {
			v.count(e, false, 0, fmt.Errorf("responding: %w", rerr))
		}
	}
}

// count adds a request (or only an error, when it is not a new one) to
// e's statistics.
func (v *service) count(e *endpoint, request bool, took time.Duration, err error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if request {
		e.requests++
		e.processing += took
	}
	if err != nil {
		e.errors++
		e.lastError = err.Error()
	}
}

// errorCode maps an error to the HTTP-like code the micro protocol uses in
// Nats-Service-Error-Code.
func errorCode(err error) int {
	switch {
	case errors.Is(err, errBadRequest), errors.Is(err, bus.ErrUnknownType), errors.Is(err, bus.ErrBadEnvelope),
		errors.Is(err, bus.ErrWrongType), errors.Is(err, bus.ErrInvalidName):
		return 400
	case errors.Is(err, bus.ErrNoRoute):
		return 404
	case errors.Is(err, bus.ErrTooLarge):
		return 413
	case errors.Is(err, bus.ErrDeadline):
		return 504
	case errors.Is(err, bus.ErrMailboxFull), errors.Is(err, bus.ErrClosed), errors.Is(err, bus.ErrPeerGone),
		errors.Is(err, bus.ErrSlowConsumer), errors.Is(err, bus.ErrCanceled):
		return 503
	}
	return 500
}
