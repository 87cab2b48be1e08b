// Package supervisor builds supervision trees for xbus actors, in the manner
// of Erlang/OTP, for daemons that must stay up for months.
//
// A Supervisor is an actor. It starts an ordered list of children, each
// described by a ChildSpec (a name, a factory New that builds a fresh
// instance, a RestartType and a shutdown timeout), watches them, and when
// one fails applies a Directive: Restart (the default), Resume, Stop or
// Escalate, chosen per child or by a Decider from the kind of error (see
// ByError).
//
// A restart happens in place: the bus keeps the child's Ref, name and
// mailbox, so every message queued for it while it failed and restarted is
// delivered to the new instance, in order. Only the message that failed it
// is lost, and not silently: the bus dead-letters it with the panic value or
// error and the stack. The Strategy says which siblings restart with it:
// OneForOne, OneForAll, RestForOne, or SimpleOneForOne for a dynamic pool of
// identical children added and removed at run time (StartChild,
// TerminateChild).
//
// Restarts are bounded by an Intensity (at most N in a sliding window T;
// beyond it the supervisor stops its children and fails to its own parent)
// and spaced by an exponential Backoff with jitter that resets after a
// healthy run. Both are pure types (Window, Retry) with time as an input.
//
// A supervisor stops its children in reverse start order, each after it has
// handled what is queued for it, within its shutdown timeout. Run starts a
// tree, blocks until SIGINT or SIGTERM, and closes the bus gracefully.
//
// Status (or an Ask with GetStatus, or Query) tells restart counts, last
// failure and state per child; failures and restarts are logged through
// log/slog with structured fields.
//
// # Caller's duties
//
// New must return a fresh instance on every call; the supervisor calls it on
// its own goroutine, so it must not block. A child's state lives in its
// instance: a restart discards it. Children should not make blocking calls
// to their supervisor from Started.
//
// # Example
//
//	b, _ := bus.New()
//	err := supervisor.Run(context.Background(), b, supervisor.Spec{
//		Name:     "orders",
//		Strategy: supervisor.RestForOne,
//		Children: []supervisor.ChildSpec{
//			{Name: "db", New: func() bus.Actor { return newDB() }},
//			{Name: "orders", New: func() bus.Actor { return newOrders() }, Shutdown: 10 * time.Second},
//		},
//	})
//
// See docs/supervision.md for the semantics side by side with Erlang/OTP.
package supervisor
