package supervisor

import (
	"context"
	"time"

	"github.com/xbus-dev/xbus/bus"
)

// AddChild, sent as an Ask to a SimpleOneForOne supervisor, starts a new
// member of its pool from the template. The reply is the member's bus.Ref.
type AddChild struct{}

// RemoveChild, sent as an Ask to a SimpleOneForOne supervisor, stops the
// member Ref after its queued messages (within its shutdown timeout) and
// drops it from the pool. The reply is Removed.
type RemoveChild struct{ Ref bus.Ref }

// Removed is the reply to RemoveChild.
type Removed struct{ Ref bus.Ref }

// StartChild asks the pool supervisor sup (a Ref or a name) for a new member
// and returns its Ref.
func StartChild(ctx context.Context, b *bus.Bus, sup any) (bus.Ref, error) {
	return bus.AskAs[bus.Ref](ctx, b, sup, AddChild{})
}

// TerminateChild asks the pool supervisor sup to stop and drop member ref.
func TerminateChild(ctx context.Context, b *bus.Bus, sup any, ref bus.Ref) error {
	_, err := bus.AskAs[Removed](ctx, b, sup, RemoveChild{Ref: ref})
	return err
}

// Query asks the supervisor sup for its Status.
func Query(ctx context.Context, b *bus.Bus, sup any) (Status, error) {
	return bus.AskAs[Status](ctx, b, sup, GetStatus{})
}

func (s *Supervisor) addChild(c *bus.Context) {
	if s.spec.Strategy != SimpleOneForOne {
		c.ReplyError(ErrNotPool)
		return
	}
	if s.stopping || s.err != nil {
		c.ReplyError(bus.ErrActorStopped)
		return
	}
	now := time.Now()
	ch := s.newChild(s.spec.Children[0])
	a, err := ch.build(s.log)
	if err == nil {
		err = s.spawn(c, ch, a, now)
	}
	if err != nil {
		c.ReplyError(err)
		return
	}
	s.children = append(s.children, ch)
	s.log.Info("pool member started", "child", ch.spec.Name, "ref", ch.ref.String(), "members", len(s.children))
	_ = c.Reply(ch.ref)
	s.publish(now)
}

func (s *Supervisor) removeChild(c *bus.Context, ref bus.Ref) {
	if s.spec.Strategy != SimpleOneForOne {
		c.ReplyError(ErrNotPool)
		return
	}
	_, ch := s.find(ref)
	if ch == nil {
		c.ReplyError(ErrUnknownChild)
		return
	}
	if ch.state == Restarting || ch.pending != 0 {
		if err := s.restartOne(c, ch, time.Now()); err != nil {
			s.stopChild(c, ch)
		}
	}
	if !ch.ref.IsZero() {
		s.drain(c, ch)
	}
	ch.state = Stopped
	s.forget(ch)
	s.log.Info("pool member removed", "ref", ref.String(), "members", len(s.children))
	_ = c.Reply(Removed{Ref: ref})
	s.publish(time.Now())
}
