package rpc

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/xbus-dev/xbus/bus"
)

// Server is a set of handlers shut down together, gracefully (Shutdown),
// and wrapped in the same interceptors (ServerInterceptors,
// StreamServerInterceptors). A handler joins one with the WithServer option
// of Handle, Register or a stream handler.
type Server struct {
	b          *bus.Bus
	ics        []ServerInterceptor       // ServerInterceptors; fixed by NewServer
	streamIcs  []StreamServerInterceptor // StreamServerInterceptors; fixed by NewServer
	hard       context.Context           // ends when Shutdown's deadline passes: running handlers' ctx ends with it
	cancelHard context.CancelFunc

	mu       sync.Mutex
	refs     []bus.Ref
	draining bool
	running  int           // calls whose handler runs now
	idle     chan struct{} // closed once draining with nothing running
	hooks    []func(context.Context) error
}

// ServerOption configures a Server (NewServer).
type ServerOption func(*Server)

// ServerInterceptors wraps every call of each of the server's unary
// handlers (Handle, and each method Register makes) in ics, the first
// outermost, outside the handler's own (WithServerInterceptors).
func ServerInterceptors(ics ...ServerInterceptor) ServerOption {
	return func(s *Server) { s.ics = append(s.ics, ics...) }
}

// StreamServerInterceptors wraps every stream of each of the server's
// stream handlers in ics, the first outermost, outside the handler's own
// (WithStreamServerInterceptors).
func StreamServerInterceptors(ics ...StreamServerInterceptor) ServerOption {
	return func(s *Server) { s.streamIcs = append(s.streamIcs, ics...) }
}

// NewServer returns an empty Server of handlers on b.
func NewServer(b *bus.Bus, opts ...ServerOption) *Server {
	s := &Server{b: b, idle: make(chan struct{})}
	for _, f := range opts {
		f(s)
	}
	s.hard, s.cancelHard = context.WithCancel(context.Background())
	return s
}

// WithServer makes the handler one of s's: shut down with it, and wrapped
// in its interceptors before the handler's own.
func WithServer(s *Server) Option {
	return func(o *serverOptions) { o.server = s }
}

// OnShutdown adds f to what Shutdown runs, at its start and beside the
// calls it waits for, with its ctx: what else the server must finish
// (streams in flight, for one) before its handlers stop. f should return
// once its work is done or ctx ends.
func (s *Server) OnShutdown(f func(ctx context.Context) error) {
	s.mu.Lock()
	s.hooks = append(s.hooks, f)
	s.mu.Unlock()
}

// ErrServerClosed is what registering a handler on a Server that is
// shutting down returns.
var ErrServerClosed = errors.New("rpc: server shut down")

// Shutdown stops s gracefully: from now on its handlers answer every new
// call with CodeUnavailable without running it (its caller sends it to
// another instance: see FailMode); it waits, up to ctx, for the calls
// running in them, and for what OnShutdown added; then it stops the
// handlers' actors, which takes their names off the bus and its peers (a
// call still queued fails with bus.ErrActorStopped and is placed again
// elsewhere). When ctx ends first, the running calls' ctx ends too
// (context.Canceled), and Shutdown returns an error wrapping ctx's after
// stopping the actors all the same.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	if s.draining {
		s.mu.Unlock()
		return ErrServerClosed
	}
	s.draining = true
	if s.running == 0 {
		close(s.idle)
	}
	refs, hooks := s.refs, s.hooks
	s.mu.Unlock()

	errs := make([]error, len(hooks)+1)
	var wg sync.WaitGroup
	for i, f := range hooks {
		wg.Go(func() { errs[i+1] = f(ctx) })
	}
	select {
	case <-s.idle:
	case <-ctx.Done():
		s.mu.Lock()
		n := s.running
		s.mu.Unlock()
		errs[0] = fmt.Errorf("rpc: shutdown: %d calls still running, now cancelled: %w", n, ctx.Err())
	}
	s.cancelHard()
	wg.Wait()
	for _, r := range refs {
		_ = s.b.Stop(r)
	}
	return errors.Join(errs...)
}

// add records a handler's actor.
func (s *Server) add(ref bus.Ref) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.draining {
		return ErrServerClosed
	}
	s.refs = append(s.refs, ref)
	return nil
}

// enter counts a call in, or reports false when s is shutting down.
func (s *Server) enter() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.draining {
		return false
	}
	s.running++
	return true
}

func (s *Server) leave() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.running--
	if s.draining && s.running == 0 {
		close(s.idle)
	}
}

// refuse answers a call that came while its server shuts down.
func refuse(c *bus.Context, name string) {
	if c.IsAsk() {
		c.ReplyError(Errorf(CodeUnavailable, "rpc: %s: the server is shutting down", name))
	}
}

// register registers a on b under name, as one of o's server's handlers if
// it has one.
func register(b *bus.Bus, name string, a bus.Actor, o *serverOptions) (bus.Ref, error) {
	if o.server != nil && o.server.b != b {
		return bus.Ref{}, fmt.Errorf("rpc: %s: its Server is another bus's", name)
	}
	ref, err := b.Register(name, a, o.actorOptions()...)
	if err != nil || o.server == nil {
		return ref, err
	}
	if err := o.server.add(ref); err != nil {
		_ = b.Stop(ref)
		return bus.Ref{}, fmt.Errorf("rpc: %s: %w", name, err)
	}
	return ref, nil
}
