package bus

import (
	"fmt"
	"slices"
)

// Watching an actor on another node. The watcher's node sends the watched
// node a sysWatch; the watched node records the watching node on the actor
// and, when the actor stops (at once if it is not there), sends back a
// sysStopped, which the watcher's node turns into a Terminated for each of
// its watchers of that actor. Losing the watched node ends every watch of
// its actors too (LinkDown), with a reason wrapping ErrPeerGone.
type (
	// sysWatch asks the receiving node to report when its actor ID stops.
	sysWatch struct {
		ID uint64 `json:"i" cbor:"1,keyasint"`
	}
	// sysStopped reports that actor ID stopped, and why: Failed is false
	// for a plain stop (a nil Reason); else Code, Err (the registered name
	// of an application error) and Text are the reason, as in an error
	// body.
	sysStopped struct {
		ID     uint64 `json:"i" cbor:"1,keyasint"`
		Failed bool   `json:"f,omitempty" cbor:"2,keyasint,omitempty"`
		Code   Code   `json:"c,omitempty" cbor:"3,keyasint,omitempty"`
		Err    string `json:"e,omitempty" cbor:"4,keyasint,omitempty"`
		Text   string `json:"t,omitempty" cbor:"5,keyasint,omitempty"`
	}
)

func registerWatchTypes(t *Types) error {
	if err := RegisterType[*sysWatch](t, "xbus.watch"); err != nil {
		return err
	}
	return RegisterType[*sysStopped](t, "xbus.stopped")
}

// tellPeer queues system message m for node on its control queue
// (control.go), after the changes of names and subscriptions already
// queued: no actor and no lock waits on a peer, and notices keep their
// order. A node with no link is not told: its loss ends what m was about.
func (b *Bus) tellPeer(node NodeID, m any) {
	b.peersMu.RLock()
	pr := b.peers[node]
	b.peersMu.RUnlock()
	if pr != nil {
		pr.ctl.notice(m)
	}
}

// watchRemote records w as a watcher of ref on a peer and asks the peer to
// report ref's end.
func (b *Bus) watchRemote(w *process, ref Ref) {
	b.peersMu.Lock()
	pr := b.peers[ref.Node]
	first := false
	if pr != nil {
		first = len(pr.watchers[ref]) == 0
		pr.watchers[ref] = append(pr.watchers[ref], w)
	}
	b.peersMu.Unlock()
	if pr == nil {
		w.notifyTerminated(Terminated{Ref: ref, Reason: fmt.Errorf("%w: no link to node %s", ErrPeerGone, ref.Node.Short())})
		return
	}
	if first {
		b.tellPeer(ref.Node, &sysWatch{ID: ref.ID})
	}
}

// unwatchRemote forgets w as a watcher of ref. The peer is not told: its
// notice, if it comes, finds nobody to tell.
func (b *Bus) unwatchRemote(w *process, ref Ref) {
	b.peersMu.Lock()
	defer b.peersMu.Unlock()
	if pr := b.peers[ref.Node]; pr != nil {
		ws := slices.DeleteFunc(pr.watchers[ref], func(x *process) bool { return x == w })
		if len(ws) == 0 {
			delete(pr.watchers, ref)
		} else {
			pr.watchers[ref] = ws
		}
	}
}

// watchedFrom handles a peer's sysWatch: the peer at the other end of l is
// told when the actor stops, at once if it is not here.
func (b *Bus) watchedFrom(l Link, m *sysWatch) {
	node := l.Peer()
	if p := b.procs.get(m.ID); p != nil {
		p.watchFrom(node)
		return
	}
	b.tellStopped(node, Ref{Node: b.id, ID: m.ID}, fmt.Errorf("%w: %s", ErrNoRoute, Ref{Node: b.id, ID: m.ID}))
}

// tellStopped tells node that the actor at ref stopped with reason.
func (b *Bus) tellStopped(node NodeID, ref Ref, reason error) {
	m := &sysStopped{ID: ref.ID}
	if reason != nil {
		m.Failed = true
		m.Code, m.Err, m.Text = b.types.errorParts(reason)
	}
	b.tellPeer(node, m)
}

// stoppedOnPeer handles a peer's sysStopped: every watcher here of that
// actor gets its Terminated, with the reason as a *RemoteError.
func (b *Bus) stoppedOnPeer(l Link, m *sysStopped) {
	var reason error
	if m.Failed {
		re := &RemoteError{Code: m.Code, Name: m.Err, Text: m.Text}
		if m.Err != "" {
			re.err = b.types.errorNamed(m.Err)
		}
		reason = re
	}
	type told struct {
		ref Ref
		ws  []*process
	}
	var tell []told
	b.peersMu.Lock()
	if pr := b.peers[l.Peer()]; pr != nil {
		for ref, ws := range pr.watchers {
			if ref.ID == m.ID {
				tell = append(tell, told{ref, ws})
				delete(pr.watchers, ref)
			}
		}
	}
	b.peersMu.Unlock()
	for _, t := range tell {
		for _, w := range t.ws {
			w.notifyTerminated(Terminated{Ref: t.ref, Reason: reason})
		}
	}
}

// watchFrom records node as watching p; if p has already stopped, node is
// told at once.
func (p *process) watchFrom(node NodeID) {
	p.mu.Lock()
	if p.stopped {
		reason := p.reasonLocked()
		p.mu.Unlock()
		p.opts.bus.tellStopped(node, p.ref, reason)
		return
	}
	if k := p.kinLocked(); !slices.Contains(k.remoteWatchers, node) {
		k.remoteWatchers = append(k.remoteWatchers, node)
	}
	p.mu.Unlock()
}
