package supervisor

import "time"

// Intensity bounds how often a supervisor restarts its children: at most
// MaxRestarts restarts within any Period. One more and the supervisor gives
// up: it stops its children and fails to its own parent (escalation), as an
// Erlang/OTP supervisor does.
//
// The window slides: only restarts younger than Period count, so a daemon
// whose child fails once a day restarts it forever.
//
// The zero value is the default, DefaultMaxRestarts in DefaultPeriod.
type Intensity struct {
	// MaxRestarts is how many restarts Period may hold. Negative: no limit.
	// Zero together with a zero Period: DefaultMaxRestarts. Zero with a
	// non-zero Period: no restart is allowed (the first failure escalates).
	MaxRestarts int
	// Period is the length of the sliding window. Zero: DefaultPeriod.
	Period time.Duration
}

// Default restart intensity: 3 restarts in 5 seconds (Elixir's defaults).
const (
	DefaultMaxRestarts = 3
	DefaultPeriod      = 5 * time.Second
)

func (i Intensity) withDefaults() Intensity {
	if i.MaxRestarts == 0 && i.Period == 0 {
		i.MaxRestarts = DefaultMaxRestarts
	}
	if i.Period == 0 {
		i.Period = DefaultPeriod
	}
	return i
}

// Window is the restart history of one supervisor: the times of the restarts
// within the last Period. It is a pure value: time comes in as an argument,
// it starts no goroutine and reads no clock. The zero Window is not usable;
// make one with NewWindow.
type Window struct {
	max    int
	period time.Duration
	times  []time.Time // restarts in the window, oldest first; times[head:] are live
	head   int
}

// NewWindow returns an empty window for i (zero fields take their defaults).
func NewWindow(i Intensity) *Window {
	i = i.withDefaults()
	return &Window{max: i.MaxRestarts, period: i.Period}
}

// Allow records a restart at now and reports whether it is within the
// intensity. When it is not, the restart is not recorded: the caller should
// escalate. now must not go backwards by more than Period between calls;
// times that do are treated as now.
func (w *Window) Allow(now time.Time) bool {
	if w.max < 0 {
		return true
	}
	w.expire(now)
	if len(w.times)-w.head >= w.max {
		return false
	}
	if w.head > 0 && w.head == len(w.times) {
		w.times, w.head = w.times[:0], 0
	} else if w.head > 32 && w.head*2 > len(w.times) {
		n := copy(w.times, w.times[w.head:])
		w.times, w.head = w.times[:n], 0
	}
	if n := len(w.times); n > w.head && now.Before(w.times[n-1]) {
		now = w.times[n-1] // keep the history ordered
	}
	w.times = append(w.times, now)
	return true
}

// Count returns how many restarts the window holds at now.
func (w *Window) Count(now time.Time) int {
	w.expire(now)
	return len(w.times) - w.head
}

// Reset forgets every restart.
func (w *Window) Reset() { w.times, w.head = w.times[:0], 0 }

// expire drops the restarts that are Period or more old at now.
func (w *Window) expire(now time.Time) {
	cut := now.Add(-w.period)
	for w.head < len(w.times) && !w.times[w.head].After(cut) {
		w.head++
	}
}
