package bus

import "sync/atomic"

// cancelHook is a function to run once an asker gives up on its ask
// (Context.AfterCancel).
type cancelHook struct {
	seq   uint64 // the arming of the local call it was added for; 0 for an ask from a link
	f     func()
	state atomic.Uint32 // hookArmed, then hookFired or hookStopped
	next  *cancelHook
}

const (
	hookArmed = iota
	hookFired
	hookStopped
)

// fire runs f on a goroutine of its own, unless the hook fired or was
// stopped already: whoever tells of the cancel (an asker's goroutine, a
// link's reader) must not wait on it.
func (h *cancelHook) fire() {
	if h.state.CompareAndSwap(hookArmed, hookFired) {
		go h.f()
	}
}

// stop keeps f from running; false if it has run or was stopped already.
func (h *cancelHook) stop() bool { return h.state.CompareAndSwap(hookArmed, hookStopped) }

// cancelHooks is a lock-free list of the hooks of one pending ask.
type cancelHooks struct{ head atomic.Pointer[cancelHook] }

func (hs *cancelHooks) add(h *cancelHook) {
	for {
		old := hs.head.Load()
		h.next = old
		if hs.head.CompareAndSwap(old, h) {
			return
		}
	}
}

// fire runs the hooks added for arming seq and drops every hook: any other
// belongs to an arming that has ended.
func (hs *cancelHooks) fire(seq uint64) {
	for h := hs.head.Swap(nil); h != nil; h = h.next {
		if h.seq == seq {
			h.fire()
		}
	}
}

// reset drops every hook. It loads before it stores: most asks have no
// hook, and an atomic store is a locked exchange.
func (hs *cancelHooks) reset() {
	if hs.head.Load() != nil {
		hs.head.Store(nil)
	}
}
