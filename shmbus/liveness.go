package shmbus

import "time"

// Liveness. Each process's reader bumps a counter in its own segment, the
// heartbeat, whenever it runs: after every batch of records it consumes and
// before every futex sleep, which lasts at most 1/beatsPerTimeout of either
// side's timeout (parkSliceFor). A process that is stopped (SIGSTOP, a debugger) or wedged stops
// bumping; one that is idle keeps bumping from its parked reader. The peer
// reads the counter when its own reader wakes and while a sender waits for
// room in the ring, and declares the link dead once the counter has not
// moved for its timeout.

const (
	// DefaultPeerTimeout is Config.PeerTimeout's default.
	DefaultPeerTimeout = 5 * time.Second
	// MinPeerTimeout is the shortest Config.PeerTimeout, and the shortest
	// timeout a peer may ask of us in its hello: our reader wakes four times
	// per timeout, so a shorter one would cost an idle link CPU.
	MinPeerTimeout = 10 * time.Millisecond
	// beatsPerTimeout is how many heartbeats a reader gives per timeout of
	// its peer: a live reader is never silent for more than a quarter of it.
	beatsPerTimeout = 4
)

// parkSliceFor returns how long the reader may sleep in one futex wait: the
// longest slice, shortened so that it beats beatsPerTimeout times per
// timeout of either side (its own timeout also sets how often it checks
// the peer). A timeout of 0 means none.
func parkSliceFor(own, peer time.Duration) time.Duration {
	d := parkSlice
	for _, t := range []time.Duration{own, peer} {
		if t > 0 {
			d = min(d, t/beatsPerTimeout)
		}
	}
	return d
}

// watchdog tells a live peer from a stopped one by its heartbeat. It takes
// the counter and the time as inputs and owns no goroutine or lock: the
// link calls it under its own mutex.
type watchdog struct {
	timeout time.Duration // 0: the peer is never declared gone
	beat    uint64        // the last value seen
	since   time.Time     // when beat was first seen
}

func newWatchdog(timeout time.Duration, beat uint64, now time.Time) watchdog {
	return watchdog{timeout: timeout, beat: beat, since: now}
}

// observe records the counter read at now and reports how long it has not
// moved, and whether that is longer than the timeout. Any change counts as
// life: the value is the peer's to write and means nothing else.
func (w *watchdog) observe(beat uint64, now time.Time) (silent time.Duration, gone bool) {
	if beat != w.beat {
		w.beat, w.since = beat, now
		return 0, false
	}
	silent = now.Sub(w.since)
	return silent, w.timeout > 0 && silent > w.timeout
}
