package supervisor

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/xbus-dev/xbus/bus"
)

// DefaultDrainTimeout bounds Run's graceful shutdown of the bus.
const DefaultDrainTimeout = 30 * time.Second

// RunOption configures Run.
type RunOption func(*runConfig)

type runConfig struct {
	drain   time.Duration
	signals []os.Signal
}

// WithDrainTimeout bounds how long Run lets the bus drain when it shuts
// down; then what is left is stopped at once. Zero: DefaultDrainTimeout.
func WithDrainTimeout(d time.Duration) RunOption { return func(c *runConfig) { c.drain = d } }

// WithSignals sets the signals that make Run shut down. Zero: SIGINT and
// SIGTERM.
func WithSignals(sigs ...os.Signal) RunOption { return func(c *runConfig) { c.signals = sigs } }

// Start registers a supervisor for spec on b under spec.Name and returns
// once it has started its children.
func Start(ctx context.Context, b *bus.Bus, spec Spec) (*Supervisor, bus.Ref, error) {
	sup, err := New(spec)
	if err != nil {
		return nil, bus.Ref{}, err
	}
	ref, err := b.Register(sup.spec.Name, sup)
	if err != nil {
		return nil, bus.Ref{}, err
	}
	// The ask is served after Started, so the children exist when it returns.
	st, err := Query(ctx, b, ref)
	if err != nil {
		if e := sup.Status().Err; e != nil {
			err = e // it gave up and stopped before the ask was served
		}
		return sup, ref, err
	}
	if st.Err != nil {
		return sup, ref, st.Err
	}
	return sup, ref, nil
}

// Run is the main loop of a daemon: it starts the tree for spec on b, blocks
// until one of the signals arrives, ctx ends or the tree gives up, and then
// closes b gracefully: intake stops, every actor handles what is queued for
// it, and the tree stops in reverse start order, all within the drain
// timeout. It returns nil after a shutdown asked for by a signal or ctx, and
// the tree's *EscalationError when the tree gave up.
func Run(ctx context.Context, b *bus.Bus, spec Spec, opts ...RunOption) error {
	cfg := runConfig{drain: DefaultDrainTimeout, signals: []os.Signal{os.Interrupt, syscall.SIGTERM}}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.drain <= 0 {
		cfg.drain = DefaultDrainTimeout
	}
	sctx, stop := signal.NotifyContext(ctx, cfg.signals...)
	defer stop()
	// A signal during the start must not abort it half way: the tree
	// starts, then shuts down in order.
	sup, ref, err := Start(context.WithoutCancel(ctx), b, spec)
	if err != nil {
		return errors.Join(err, closeBus(b, cfg.drain))
	}
	log := b.Logger().With("supervisor", sup.spec.Name)
	log.Info("tree started", "ref", ref.String())
	var cause error
	select {
	case <-sctx.Done():
		log.Info("shutting down", "reason", context.Cause(sctx))
	case <-b.Done(ref):
		cause = sup.Status().Err
		if cause == nil {
			cause = fmt.Errorf("supervisor: %q stopped", sup.spec.Name)
		}
		log.Error("tree gave up; shutting down", "reason", cause)
	}
	stop()
	err = closeBus(b, cfg.drain)
	log.Info("shut down", "err", err)
	return errors.Join(cause, err)
}

func closeBus(b *bus.Bus, d time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	return b.Close(ctx)
}
