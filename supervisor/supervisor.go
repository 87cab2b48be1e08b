package supervisor

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync/atomic"
	"time"

	"github.com/xbus-dev/xbus/bus"
	"github.com/xbus-dev/xbus/mailbox"
)

// Supervisor is an actor that starts its children, watches them, and
// restarts them when they fail, as its Spec says. Register it on a bus
// (b.Register("name", sup)), or give it as a child to another supervisor, so
// trees nest.
//
// Ownership: every field but status belongs to the goroutine the bus runs
// the actor on; status is published atomically for Status, which any
// goroutine may call.
type Supervisor struct {
	spec     Spec
	log      *slog.Logger
	window   *Window
	children []*child // in start order
	err      error    // why it gave up, once it has
	stopping bool
	token    uint64              // this incarnation, for selfStop
	timers   map[uint64]*delayed // delayed restarts by token
	status   atomic.Pointer[Status]
}

// delayed is a restart waiting out its backoff.
type delayed struct {
	timer *time.Timer
	group []*child
}

// Messages a supervisor sends itself.
type (
	selfStop   struct{ token uint64 }
	restartDue struct{ token uint64 }
)

var tokens atomic.Uint64

// New validates spec, fills its defaults and returns a supervisor ready to be
// registered. Nothing starts before the bus runs it.
func New(spec Spec) (*Supervisor, error) {
	if spec.Name == "" {
		spec.Name = "supervisor"
	}
	if err := spec.validate(); err != nil {
		return nil, err
	}
	spec.Children = slices.Clone(spec.Children)
	return &Supervisor{spec: spec}, nil
}

// MustNew is New for specs known to be valid, such as in a ChildSpec's New
// of a nested supervisor. It panics on an invalid spec.
func MustNew(spec Spec) *Supervisor {
	s, err := New(spec)
	if err != nil {
		panic(err)
	}
	return s
}

// Receive handles the supervisor's lifecycle, its children's ends, its
// delayed restarts and the queries and pool requests sent to it.
func (s *Supervisor) Receive(c *bus.Context, msg any) error {
	switch m := msg.(type) {
	case bus.Started:
		s.start(c)
	case bus.Stopping:
		s.shutdown(c)
	case bus.Restarting:
		s.cancelTimers() // the next instance adopts the children
	case bus.Terminated:
		return s.exited(c, m)
	case restartDue:
		return s.due(c, m.token)
	case selfStop:
		if m.token == s.token {
			c.Stop()
		}
	case GetStatus:
		_ = c.Reply(*s.snapshot(time.Now()))
	case AddChild:
		s.addChild(c)
	case RemoveChild:
		s.removeChild(c, m.Ref)
	}
	return nil
}

// ChildFailed applies the child's directive to its failure.
func (s *Supervisor) ChildFailed(c *bus.Context, f bus.Failure) error {
	now := time.Now()
	i, ch := s.find(f.Ref)
	if ch == nil || s.stopping || s.err != nil {
		_ = c.Resume(f.Ref) // not one of ours any more, or on its way out
		return nil
	}
	if f.Time.Before(ch.restartedAt) {
		return nil // a restart ordered after this failure replaces it already
	}
	ch.lastFailure, ch.failedAt = f.Reason, f.Time
	d := s.decide(ch, f)
	if d == Restart && ch.spec.Restart == Temporary {
		d = Stop
	}
	// Act first and log after: the child is back at work while this
	// goroutine formats the record.
	restarts := ch.restarts
	var err error
	switch d {
	case Resume:
		_ = c.Resume(f.Ref)
	case Stop:
		s.stopChild(c, ch)
	case Escalate:
		err = s.giveUp(c, ch, ErrEscalated, f.Reason, now)
	default:
		err = s.restartFrom(c, i, f.Reason, now)
	}
	s.log.Warn("child failed", "child", ch.spec.Name, "ref", f.Ref.String(), "reason", f.Reason, "directive", d.String(), "restarts", restarts)
	s.publish(now)
	return err
}

func (s *Supervisor) decide(ch *child, f bus.Failure) Directive {
	switch {
	case ch.spec.Decider != nil:
		return ch.spec.Decider(f)
	case s.spec.Decider != nil:
		return s.spec.Decider(f)
	}
	return Restart
}

func (s *Supervisor) find(ref bus.Ref) (int, *child) {
	if ref.IsZero() {
		return -1, nil
	}
	for i, ch := range s.children {
		if ch.ref == ref {
			return i, ch
		}
	}
	return -1, nil
}

// start begins an incarnation: it starts the children, or, when the
// supervisor itself was restarted in place, adopts the children its previous
// instance left and restarts each in place so their queued messages survive.
func (s *Supervisor) start(c *bus.Context) {
	now := time.Now()
	s.token = tokens.Add(1)
	s.log = s.spec.Logger
	if s.log == nil {
		s.log = c.Logger()
	}
	s.log = s.log.With("supervisor", s.spec.Name)
	s.window = NewWindow(s.spec.Intensity)
	s.children, s.err, s.stopping, s.timers = nil, nil, false, map[uint64]*delayed{}
	existing := c.Children()
	var err error
	var failed *child
	switch {
	case s.spec.Strategy == SimpleOneForOne:
		for _, ref := range existing {
			ch := s.newChild(s.spec.Children[0])
			ch.ref = ref
			s.children = append(s.children, ch)
			if err = s.restartOne(c, ch, now); err != nil {
				failed = ch
				break
			}
		}
	case adoptable(existing, s.spec.Children):
		for k, ref := range existing {
			ch := s.newChild(s.spec.Children[k])
			ch.ref = ref
			s.children = append(s.children, ch)
			if err = s.restartOne(c, ch, now); err != nil {
				failed = ch
				break
			}
		}
	default:
		for k := len(existing) - 1; k >= 0; k-- {
			c.Unwatch(existing[k])
			_ = c.StopChild(existing[k])
		}
		for _, cs := range s.spec.Children {
			ch := s.newChild(cs)
			s.children = append(s.children, ch)
			a, e := ch.build(s.log)
			if e == nil {
				e = s.spawn(c, ch, a, now)
			}
			if e != nil {
				err, failed = e, ch
				break
			}
		}
	}
	if err != nil {
		// A lifecycle message cannot fail the actor: give up and stop.
		s.log.Error("supervisor could not start its children", "child", failed.spec.Name, "reason", err)
		_ = s.giveUp(c, failed, ErrStartFailed, err, now)
	} else {
		s.log.Debug("supervisor started", "strategy", s.spec.Strategy.String(), "children", len(s.children))
	}
	s.publish(now)
}

// adoptable reports whether the children left by a previous instance are
// the ones the spec describes, in order.
func adoptable(existing []bus.Ref, specs []ChildSpec) bool {
	if len(existing) == 0 || len(existing) != len(specs) {
		return false
	}
	for k, ref := range existing {
		if ref.Name != specs[k].Name {
			return false
		}
	}
	return true
}

func (s *Supervisor) newChild(cs ChildSpec) *child {
	return &child{spec: cs, retry: NewRetry(s.spec.Backoff)}
}

// spawn starts a new process for ch running in, and waits for it to have
// handled Started.
func (s *Supervisor) spawn(c *bus.Context, ch *child, in instance, now time.Time) error {
	opts := append(slices.Clone(ch.spec.Options), bus.WithShutdownTimeout(ch.spec.Shutdown))
	ref, err := c.Spawn(ch.spec.Name, in.actor, opts...)
	if err != nil {
		return err
	}
	c.Watch(ref)
	ch.ref, ch.state, ch.startedAt, ch.pending = ref, Running, now, 0
	s.awaitStarted(ch, in)
	return nil
}

// awaitStarted waits, up to the child's shutdown timeout, for a new
// instance to handle Started, so that children start one after another as
// in Erlang/OTP: a child may rely on the ones started before it.
func (s *Supervisor) awaitStarted(ch *child, in instance) {
	select {
	case <-in.started:
		return
	default:
	}
	t := time.NewTimer(ch.shutdownTimeout())
	defer t.Stop()
	select {
	case <-in.started:
	case <-t.C:
		s.log.Warn("child still starting after its shutdown timeout; going on", "child", ch.spec.Name, "ref", ch.ref.String())
	}
}

// restartFrom restarts child i and the siblings its strategy names, now or
// after its backoff, or gives up when the intensity is exceeded.
func (s *Supervisor) restartFrom(c *bus.Context, i int, reason error, now time.Time) error {
	ch := s.children[i]
	if !s.window.Allow(now) {
		return s.giveUp(c, ch, ErrIntensity, reason, now)
	}
	delay := ch.retry.Next(now, ch.startedAt, rand.Float64())
	var group []*child
	for _, k := range s.spec.Strategy.affected(i, len(s.children)) {
		g := s.children[k]
		switch {
		case g == ch:
		case g.state == Stopped:
			continue
		case g.spec.Restart == Temporary:
			s.stopChild(c, g) // temporary siblings end with the group
			continue
		}
		group = append(group, g)
	}
	if delay <= 0 {
		return s.restartGroup(c, group, now)
	}
	tok := tokens.Add(1)
	for _, g := range group {
		g.pending = tok
	}
	ch.state = Restarting
	self, b := c.Self(), c.Bus()
	s.timers[tok] = &delayed{group: group, timer: time.AfterFunc(delay, func() {
		_ = b.Tell(self, restartDue{tok})
	})}
	s.log.Info("restart scheduled", "child", ch.spec.Name, "delay", delay, "attempt", ch.retry.Attempt())
	return nil
}

// due runs a delayed restart.
func (s *Supervisor) due(c *bus.Context, tok uint64) error {
	d := s.timers[tok]
	if d == nil || s.stopping || s.err != nil {
		return nil
	}
	delete(s.timers, tok)
	now := time.Now()
	var group []*child
	for _, g := range d.group {
		if g.pending == tok && g.state != Stopped {
			group = append(group, g)
		}
	}
	err := s.restartGroup(c, group, now)
	s.publish(now)
	return err
}

func (s *Supervisor) restartGroup(c *bus.Context, group []*child, now time.Time) error {
	for _, g := range group {
		if err := s.restartOne(c, g, now); err != nil {
			return s.giveUp(c, g, ErrStartFailed, err, now)
		}
	}
	return nil
}

// restartOne replaces ch's instance with a fresh one in place, keeping its
// Ref and mailbox, or starts it anew when its process has ended.
func (s *Supervisor) restartOne(c *bus.Context, ch *child, now time.Time) error {
	in, err := ch.build(s.log)
	if err != nil {
		return err
	}
	ch.restartedAt, ch.pending = now, 0
	if !ch.ref.IsZero() && c.Restart(ch.ref, in.actor) == nil {
		ch.state, ch.startedAt = Running, now
		s.awaitStarted(ch, in)
	} else if err := s.spawn(c, ch, in, now); err != nil {
		return err
	}
	ch.restarts++
	s.log.Info("child restarted", "child", ch.spec.Name, "ref", ch.ref.String(), "restarts", ch.restarts)
	return nil
}

// exited handles a child that ended on its own (the supervisor unwatches
// the children it stops): restart it or let it go, by its restart type.
func (s *Supervisor) exited(c *bus.Context, t bus.Terminated) error {
	i, ch := s.find(t.Ref)
	if ch == nil || s.stopping || s.err != nil {
		return nil
	}
	now := time.Now()
	ch.ref = bus.Ref{}
	if t.Reason != nil {
		ch.lastFailure, ch.failedAt = t.Reason, now
	}
	restart := ch.spec.Restart == Permanent || ch.spec.Restart == Transient && t.Reason != nil
	if !restart {
		s.log.Info("child stopped", "child", ch.spec.Name, "ref", t.Ref.String(), "reason", t.Reason)
		ch.state = Stopped
		s.forget(ch)
		s.publish(now)
		return nil
	}
	s.log.Warn("child stopped; restarting it", "child", ch.spec.Name, "ref", t.Ref.String(), "reason", t.Reason)
	err := s.restartFrom(c, i, t.Reason, now)
	s.publish(now)
	return err
}

// stopChild stops ch at once (its queued messages become dead letters) and
// marks it stopped.
func (s *Supervisor) stopChild(c *bus.Context, ch *child) {
	if !ch.ref.IsZero() {
		c.Unwatch(ch.ref)
		_ = c.StopChild(ch.ref)
	}
	ch.ref, ch.state, ch.pending = bus.Ref{}, Stopped, 0
	s.forget(ch)
}

// forget drops a stopped member of a pool: pools keep only live members.
func (s *Supervisor) forget(ch *child) {
	if s.spec.Strategy == SimpleOneForOne {
		s.children = slices.DeleteFunc(s.children, func(x *child) bool { return x == ch })
	}
}

// giveUp stops every child in reverse start order and fails the supervisor:
// the returned error goes to its parent; a supervisor without one stops.
func (s *Supervisor) giveUp(c *bus.Context, ch *child, why, cause error, now time.Time) error {
	name := ""
	if ch != nil {
		name = ch.spec.Name
	}
	err := &EscalationError{Supervisor: s.spec.Name, Child: name, Err: why, Cause: cause}
	s.log.Error("supervisor giving up; stopping its children", "child", name, "reason", err, "restarts", s.window.Count(now))
	s.cancelTimers()
	for k := len(s.children) - 1; k >= 0; k-- {
		if k < len(s.children) {
			s.stopChild(c, s.children[k])
		}
	}
	s.err = err
	s.tellSelf(c, selfStop{s.token})
	s.publish(now)
	return err
}

// tellSelf queues msg in the supervisor's own mailbox without ever blocking
// its goroutine on it.
func (s *Supervisor) tellSelf(c *bus.Context, msg any) {
	b, self := c.Bus(), c.Self()
	if err := b.Send(context.Background(), self, msg, mailbox.FailFast); err == bus.ErrMailboxFull {
		go func() { _ = b.Tell(self, msg) }() // released when the mailbox closes
	}
}

func (s *Supervisor) cancelTimers() {
	for tok, d := range s.timers {
		d.timer.Stop()
		delete(s.timers, tok)
	}
}

// shutdown runs while the supervisor stops: each child, in reverse start
// order, handles what is queued for it and stops, within its shutdown
// timeout; then it is stopped at once (and abandoned by the bus if it still
// hangs).
func (s *Supervisor) shutdown(c *bus.Context) {
	s.stopping = true
	s.cancelTimers()
	for k := len(s.children) - 1; k >= 0; k-- {
		ch := s.children[k]
		if ch.ref.IsZero() {
			continue
		}
		if ch.state == Restarting || ch.pending != 0 {
			if err := s.restartOne(c, ch, time.Now()); err != nil {
				s.stopChild(c, ch)
				continue
			}
		}
		s.drain(c, ch)
	}
	s.publish(time.Now())
}

// drain tells ch to stop after its queued messages and waits for it.
func (s *Supervisor) drain(c *bus.Context, ch *child) {
	ref := ch.ref
	c.Unwatch(ref)
	done := c.Bus().Done(ref)
	timeout := ch.shutdownTimeout()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	ch.draining.Store(true)
	defer ch.draining.Store(false)
	c.Ask(ctx, ref, drainStop{}, func(any, error) {})
	// While it drains, a failure of the child waits for this supervisor,
	// which is busy here: let the child go on (the failing message has been
	// dead-lettered) rather than hang the shutdown.
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-done:
			ch.ref, ch.state = bus.Ref{}, Stopped
			return
		case <-tick.C:
			_ = c.Resume(ref)
		case <-ctx.Done():
			s.log.Error("child did not drain within its shutdown timeout; stopping it now", "child", ch.spec.Name, "ref", ref.String(), "timeout", timeout)
			s.stopChild(c, ch)
			return
		}
	}
}
