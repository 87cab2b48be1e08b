package rpc

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"runtime/debug"
	"strings"

	"github.com/xbus-dev/xbus/bus"
)

// Option configures a handler (Handle, Register).
type Option func(*serverOptions)

type serverOptions struct {
	actor              []bus.ActorOption
	interceptors       []ServerInterceptor
	streamInterceptors []StreamServerInterceptor
	codec              bus.Codec
	server             *Server // WithServer
}

// WithServerCodec makes the handler's bus know c, so a call in it (a
// caller's WithCodec) decodes there, and encodes the handler's responses
// to calls from other nodes with c whatever codec the call came in.
// Without it a response goes in the codec of its call. Req and Resp must
// be types c encodes.
func WithServerCodec(c bus.Codec) Option {
	return func(o *serverOptions) { o.codec = c }
}

// parseOptions applies opts; a handler's Server's interceptors go before
// its own, so they run outermost.
func parseOptions(opts []Option) serverOptions {
	var o serverOptions
	for _, f := range opts {
		f(&o)
	}
	if srv := o.server; srv != nil {
		if len(srv.ics) > 0 {
			o.interceptors = append(srv.ics[:len(srv.ics):len(srv.ics)], o.interceptors...)
		}
		if len(srv.streamIcs) > 0 {
			o.streamInterceptors = append(srv.streamIcs[:len(srv.streamIcs):len(srv.streamIcs)], o.streamInterceptors...)
		}
	}
	return o
}

// actorOptions returns the options the handler's actor is registered with.
func (o *serverOptions) actorOptions() []bus.ActorOption {
	if o.codec == nil {
		return o.actor
	}
	return append(o.actor[:len(o.actor):len(o.actor)], bus.WithReplyCodec(o.codec))
}

// WithActorOptions passes opts to the bus when the handler's actor is
// registered (its mailbox, for one).
func WithActorOptions(opts ...bus.ActorOption) Option {
	return func(o *serverOptions) { o.actor = append(o.actor, opts...) }
}

// ServerInfo describes the call a ServerInterceptor wraps.
type ServerInfo struct {
	Name string // the name the handler is registered under
	MD   MD     // the call's metadata
}

// ServerInterceptor wraps every call of a handler: it may inspect or
// refuse the request, and must call next to run the handler.
type ServerInterceptor func(ctx context.Context, info ServerInfo, req any, next func(ctx context.Context, req any) (any, error)) (any, error)

// WithServerInterceptors wraps the handler in ics, the first outermost,
// inside its Server's (ServerInterceptors).
func WithServerInterceptors(ics ...ServerInterceptor) Option {
	return func(o *serverOptions) { o.interceptors = append(o.interceptors, ics...) }
}

// Handle registers h on b under name: an actor that answers each ask whose
// message is a Req with what h returns. Req and Resp are registered with
// the bus's type registry under their Go names unless they already are,
// so nothing needs registering by hand (see the package doc).
//
// h runs on the actor's goroutine, one call at a time per registration.
// Its ctx carries the caller's deadline and metadata (IncomingMD). A panic
// in h answers the call with CodeInternal and leaves the actor running; a
// message that is not a Req is answered with CodeInvalidArgument.
func Handle[Req, Resp any](b *bus.Bus, name string, h func(ctx context.Context, req Req) (Resp, error), opts ...Option) (bus.Ref, error) {
	if h == nil {
		return bus.Ref{}, fmt.Errorf("rpc: nil handler for %q", name)
	}
	o := parseOptions(opts)
	if err := ensurePair(b.Types(), o.codec, reflect.TypeFor[Req](), reflect.TypeFor[Resp]()); err != nil {
		return bus.Ref{}, fmt.Errorf("rpc: %s: %w", name, err)
	}
	s := &server[Req, Resp]{name: name, h: h, log: b.Logger(), srv: o.server}
	if len(o.interceptors) > 0 {
		s.wrapped = chainServer(name, o.interceptors, func(ctx context.Context, req any) (any, error) {
			r, ok := req.(Req)
			if !ok {
				return nil, errBadRequest(name, reflect.TypeFor[Req]().String(), req)
			}
			return h(ctx, r)
		})
	}
	return register(b, name, s, &o)
}

// server is the actor of one handler.
type server[Req, Resp any] struct {
	name    string
	h       func(context.Context, Req) (Resp, error)
	wrapped func(context.Context, any) (any, error) // h behind the interceptors, if any
	log     interface {
		Error(msg string, args ...any)
	}
	srv *Server // WithServer; nil for none
}

func (s *server[Req, Resp]) Receive(c *bus.Context, msg any) error {
	req, ok := msg.(Req)
	if !ok {
		switch m := msg.(type) {
		case bus.Started, bus.Stopping, bus.Restarting, bus.Terminated:
			return nil
		case *bus.Stream:
			refuseStream(m, s.name)
			return nil
		}
		if c.IsAsk() {
			c.ReplyError(errBadRequest(s.name, reflect.TypeFor[Req]().String(), msg))
		}
		return nil
	}
	if s.srv != nil && !s.srv.enter() {
		refuse(c, s.name)
		return nil
	}
	ctx, cc := handlerContext(c, s.srv)
	var resp any
	var err error
	if s.wrapped != nil {
		resp, err = s.callWrapped(ctx, req)
	} else {
		resp, err = s.call(ctx, req)
	}
	finish(c, cc)
	answer(c, s.name, resp, err, s.log)
	if s.srv != nil {
		s.srv.leave()
	}
	return nil
}

// call runs the handler, turning a panic into a CodeInternal error.
func (s *server[Req, Resp]) call(ctx context.Context, req Req) (resp any, err error) {
	defer recoverInto(s.name, &err, s.log)
	r, err := s.h(ctx, req)
	if err != nil {
		return nil, err
	}
	return r, nil
}

func (s *server[Req, Resp]) callWrapped(ctx context.Context, req Req) (resp any, err error) {
	defer recoverInto(s.name, &err, s.log)
	return s.wrapped(ctx, req)
}

func recoverInto(name string, err *error, log interface{ Error(string, ...any) }) {
	if r := recover(); r != nil {
		log.Error("rpc: handler panicked", "name", name, "panic", r, "stack", string(debug.Stack()))
		*err = Errorf(CodeInternal, "rpc: %s panicked: %v", name, r)
	}
}

// finish ends a handler's ctx as it returns and puts the trailer it set on
// its reply.
func finish(c *bus.Context, cc *callCtx) {
	if cc == nil {
		return
	}
	if tr := cc.finish(); len(tr) > 0 {
		c.SetReplyHeaders(tr...)
	}
}

// answer replies to an ask with the handler's outcome; the outcome of a
// one-way call has nowhere to go, and a failure is logged.
func answer(c *bus.Context, name string, resp any, err error, log interface{ Error(string, ...any) }) {
	if !c.IsAsk() {
		if err != nil {
			log.Error("rpc: one-way call failed", "name", name, "err", err)
		}
		return
	}
	if err != nil {
		c.ReplyError(ctxCoded(err))
		return
	}
	_ = c.Reply(resp)
}

// ctxCoded gives a handler's error that is its ctx's ending, and has no
// code of its own, the bus's code for it: the caller sees ErrDeadline or
// ErrCanceled whichever side noticed first.
func ctxCoded(err error) error {
	if bus.CodeOf(err) != bus.CodeApplication {
		return err
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("%w: %w", bus.ErrDeadline, err)
	case errors.Is(err, context.Canceled):
		return fmt.Errorf("%w: %w", bus.ErrCanceled, err)
	}
	return err
}

func chainServer(name string, ics []ServerInterceptor, h func(context.Context, any) (any, error)) func(context.Context, any) (any, error) {
	for i := len(ics) - 1; i >= 0; i-- {
		ic, next := ics[i], h
		h = func(ctx context.Context, req any) (any, error) {
			return ic(ctx, ServerInfo{Name: name, MD: IncomingMD(ctx)}, req, next)
		}
	}
	return h
}

var (
	ctxType = reflect.TypeFor[context.Context]()
	errType = reflect.TypeFor[error]()
)

// Register registers every exported method of rcvr of the shape
// func(context.Context, Req) (Resp, error) under service + "." + the
// method's name, as Handle does. Methods are looked up, checked and their
// types registered here, once; each call then runs its method through
// reflect.Value.Call (Handle calls a func directly, without reflection).
//
// An exported method of another shape is an error naming it, and then
// nothing is registered: export only the service's methods, or register
// the others one by one with Handle.
func Register(b *bus.Bus, service string, rcvr any, opts ...Option) ([]bus.Ref, error) {
	v := reflect.ValueOf(rcvr)
	if !v.IsValid() {
		return nil, fmt.Errorf("rpc: service %q: nil receiver", service)
	}
	t := v.Type()
	var misfits []string
	for i := range t.NumMethod() {
		m := t.Method(i)
		if why := misfit(m.Type); why != "" {
			misfits = append(misfits, fmt.Sprintf("%s.%s has type %v: %s", t, m.Name, m.Type, why))
		}
	}
	if len(misfits) > 0 {
		return nil, fmt.Errorf("rpc: service %q: methods of the wrong shape (want func(context.Context, Req) (Resp, error)):\n\t%s",
			service, strings.Join(misfits, "\n\t"))
	}
	if t.NumMethod() == 0 {
		return nil, fmt.Errorf("rpc: service %q: %v has no exported methods", service, t)
	}
	o := parseOptions(opts)
	for i := range t.NumMethod() {
		mt := t.Method(i).Type
		if err := ensurePair(b.Types(), o.codec, mt.In(2), mt.Out(0)); err != nil {
			return nil, fmt.Errorf("rpc: service %q: method %s: %w", service, t.Method(i).Name, err)
		}
	}
	var refs []bus.Ref
	for i := range t.NumMethod() {
		name := service + "." + t.Method(i).Name
		m := &method{name: name, fn: v.Method(i), req: t.Method(i).Type.In(2), log: b.Logger(), srv: o.server}
		m.call = m.invoke
		if len(o.interceptors) > 0 {
			m.call = chainServer(name, o.interceptors, m.invoke)
		}
		ref, err := register(b, name, m, &o)
		if err != nil {
			for _, r := range refs {
				_ = b.Stop(r)
			}
			return nil, fmt.Errorf("rpc: service %q: %w", service, err)
		}
		refs = append(refs, ref)
	}
	return refs, nil
}

// misfit says why a method's type (receiver first) is not a handler's, or
// returns "".
func misfit(mt reflect.Type) string {
	switch {
	case mt.NumIn() != 3:
		return "it must take a context.Context and a request"
	case mt.In(1) != ctxType:
		return "its first argument must be a context.Context"
	case mt.NumOut() != 2 || mt.Out(1) != errType:
		return "it must return a response and an error"
	case mt.In(2).Kind() == reflect.Interface, mt.Out(0).Kind() == reflect.Interface:
		return "its request and response must be concrete types"
	}
	return ""
}

// method is the actor of one method registered by Register.
type method struct {
	name string
	fn   reflect.Value // bound to its receiver
	req  reflect.Type
	call func(context.Context, any) (any, error)
	log  interface{ Error(string, ...any) }
	srv  *Server // WithServer; nil for none
}

func (m *method) Receive(c *bus.Context, msg any) error {
	if msg == nil || reflect.TypeOf(msg) != m.req {
		switch s := msg.(type) {
		case bus.Started, bus.Stopping, bus.Restarting, bus.Terminated:
			return nil
		case *bus.Stream:
			refuseStream(s, m.name)
			return nil
		}
		if c.IsAsk() {
			c.ReplyError(errBadRequest(m.name, m.req.String(), msg))
		}
		return nil
	}
	if m.srv != nil && !m.srv.enter() {
		refuse(c, m.name)
		return nil
	}
	ctx, cc := handlerContext(c, m.srv)
	resp, err := m.safeCall(ctx, msg)
	finish(c, cc)
	answer(c, m.name, resp, err, m.log)
	if m.srv != nil {
		m.srv.leave()
	}
	return nil
}

func (m *method) safeCall(ctx context.Context, req any) (resp any, err error) {
	defer recoverInto(m.name, &err, m.log)
	return m.call(ctx, req)
}

func (m *method) invoke(ctx context.Context, req any) (any, error) {
	rv := reflect.ValueOf(req)
	if rv.Type() != m.req {
		return nil, errBadRequest(m.name, m.req.String(), req)
	}
	out := m.fn.Call([]reflect.Value{reflect.ValueOf(ctx), rv})
	if err, _ := out[1].Interface().(error); err != nil {
		return nil, err
	}
	return out[0].Interface(), nil
}
