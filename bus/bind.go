package bus

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"slices"
	"time"
)

// A node id is bound to the peer that authenticated with it first. On a
// peer's first link each side sends the other a random key (sysLink.Key).
// A later link that claims the same node id is held: the bus uses nothing
// it carries and sends nothing on it but a challenge (sysLink.Nonce), until
// the peer answers with an HMAC of the challenge under the key this node
// sent it (sysLink.Proof). A wrong proof, or none within the proof timeout,
// closes the link with an error wrapping ErrRefused. docs/wire.md gives the
// trust model.

// DefaultProofTimeout bounds how long a second link to a linked node may
// take to prove it leads to the same node.
const DefaultProofTimeout = 10 * time.Second

const (
	bindKeyLen  = 32
	sysLinkType = "xbus.link"
	proofLabel  = "xbus link proof v1"
	maxAsked    = 8    // challenges a peer may leave waiting for its key
	maxEarly    = 1024 // messages kept from a link before it proves itself
)

// sysLink is the bus's own handshake on a link, after the transport's.
type sysLink struct {
	Key   []byte `json:"key,omitempty" cbor:"1,keyasint,omitempty"`   // first link: the key the peer proves itself with
	Nonce []byte `json:"nonce,omitempty" cbor:"2,keyasint,omitempty"` // a later link: the challenge to answer
	Proof []byte `json:"proof,omitempty" cbor:"3,keyasint,omitempty"` // the answer to the peer's challenge
	// Token is the sender's random token for the link, sent with Key or
	// Nonce; Fence and FenceAck retire a duplicate link (dup.go).
	Token    uint64 `json:"tok,omitempty" cbor:"4,keyasint,omitempty"`
	Fence    bool   `json:"fence,omitempty" cbor:"5,keyasint,omitempty"`
	FenceAck bool   `json:"ack,omitempty" cbor:"6,keyasint,omitempty"`
	// After marks the link the sender now sends on instead of the one it
	// has the token After on; Moved is the fence on that one (switch.go).
	After uint64 `json:"after,omitempty" cbor:"7,keyasint,omitempty"`
	Moved bool   `json:"moved,omitempty" cbor:"8,keyasint,omitempty"`
}

// binding is what this node knows of one peer node's identity. Guarded by
// linkTable.mu.
type binding struct {
	mine   []byte      // sent to the peer on its first link; its proofs use it
	theirs []byte      // received from the peer; our proofs use it
	links  int         // admitted links to the peer
	asked  []challenge // challenges received before theirs arrived
}

type challenge struct {
	l     Link
	nonce []byte
}

// proof is the HMAC-SHA256, under key, of a label, the prover's and the
// verifier's node ids and the verifier's nonce: good for one challenge, one
// direction and one pair of nodes.
func proof(key []byte, prover, verifier NodeID, nonce []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(proofLabel))
	m.Write(prover[:])
	m.Write(verifier[:])
	m.Write(nonce)
	return m.Sum(nil)
}

func randomKey() []byte {
	k := make([]byte, bindKeyLen)
	rand.Read(k)
	return k
}

// admit records l, which the transport reports up, and reports whether the
// bus may use it now: yes for a peer's first link (this node then sends its
// key on it), no for a later one, which is held until it proves it leads to
// the same node (this node sends it a challenge).
func (t *linkTable) admit(b *Bus, l Link) bool {
	id := l.Peer()
	ll := &liveLink{down: make(chan struct{}), tok: randomToken(),
		info: LinkInfo{Scheme: l.Scheme(), Peer: id, State: LinkReady, Since: time.Now()}}
	t.mu.Lock()
	t.live[l] = ll
	bd := t.binds[id]
	first := bd == nil
	if first {
		bd = &binding{mine: randomKey()}
		t.binds[id] = bd
		bd.links++
		t.emit(ll.info)
	} else {
		ll.nonce = randomKey()
		t.held.Add(1)
		ll.timer = time.AfterFunc(t.proofTimeout, func() {
			t.refuseHeld(l, fmt.Errorf("%w: a second link claiming node %s gave no proof within %v", ErrRefused, id.Short(), t.proofTimeout))
		})
	}
	t.mu.Unlock()
	msg := &sysLink{Key: bd.mine, Token: ll.tok}
	if first {
		b.log.Info("link up", "peer", id.Short(), "scheme", l.Scheme())
	} else {
		msg = &sysLink{Nonce: ll.nonce, Token: ll.tok}
	}
	b.sendLinkMsg(l, msg)
	return first
}

func (b *Bus) sendLinkMsg(l Link, m *sysLink) {
	b.sendLinkMsgVia(l, m, nil)
}

// sendFence sends m, a fence, on l once every send that chose l has
// returned (the caller drained the peer's gate): through Fence when l is a
// FencingLink, whose tells skip the gate.
func (b *Bus) sendFence(l Link, m *sysLink) {
	var via func(context.Context, *Envelope) error
	if fl, ok := l.(FencingLink); ok {
		via = fl.Fence
	}
	b.sendLinkMsgVia(l, m, via)
}

// sendLead sends m, a switch's mark, on l ahead of everything sent on l
// after it: through Lead when l is a LeadingLink.
func (b *Bus) sendLead(l Link, m *sysLink) {
	var via func(context.Context, *Envelope) error
	if ll, ok := l.(LeadingLink); ok {
		via = ll.Lead
	}
	b.sendLinkMsgVia(l, m, via)
}

func (b *Bus) sendLinkMsgVia(l Link, m *sysLink, via func(context.Context, *Envelope) error) {
	ctx, cancel := context.WithTimeout(context.Background(), replyTimeout)
	defer cancel()
	if err := b.encodeSend(ctx, l, nil, &Envelope{Kind: KindSystem, From: Ref{Node: b.id}, Msg: m}, via); err != nil {
		b.log.Debug("link handshake not sent", "peer", l.Peer().Short(), "err", err)
	}
}

// isHeld reports whether l waits for its proof; Deliver then takes nothing
// from it but its sysLink.
func (t *linkTable) isHeld(l Link) bool {
	if t.held.Load() == 0 {
		return false
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	ll := t.live[l]
	return ll != nil && ll.nonce != nil
}

// deliverHeld handles an envelope from a held link: its sysLink now; the
// rest is kept (up to maxEarly) and delivered if the link proves itself, as
// a peer that admitted the link first may already use it.
func (b *Bus) deliverHeld(l Link, env *Envelope) {
	if env.Kind != KindSystem || env.Type != sysLinkType {
		t := &b.lk
		t.mu.Lock()
		ll := t.live[l]
		// Admitted since Deliver looked: the peer's last other link went
		// down, and this one took its place (linkDown's heir).
		admitted := ll != nil && ll.nonce == nil
		over := ll != nil && ll.nonce != nil && len(ll.early) >= maxEarly
		if ll != nil && ll.nonce != nil && !over {
			e := *env
			e.Body = slices.Clone(env.Body) // env.Body aliases the transport's buffer
			e.Headers = slices.Clone(env.Headers)
			ll.early = append(ll.early, &e)
		}
		t.mu.Unlock()
		if admitted {
			b.Deliver(l, env)
			return
		}
		if over {
			t.refuseHeld(l, fmt.Errorf("%w: %d messages on a link that has not proven its node id", ErrRefused, maxEarly))
		}
		return
	}
	if err := b.types.DecodeBody(l.Codec(), env); err != nil {
		b.lk.refuseHeld(l, fmt.Errorf("%w: %w", ErrRefused, err))
		return
	}
	if m, ok := env.Msg.(*sysLink); ok {
		b.onLinkMsg(l, m)
	}
}

// onLinkMsg handles a sysLink from l.
func (b *Bus) onLinkMsg(l Link, m *sysLink) {
	t := &b.lk
	id := l.Peer()
	var answers []challenge
	var early []*Envelope
	var promote bool
	var refuse error
	t.mu.Lock()
	bd := t.binds[id]
	ll := t.live[l]
	if bd == nil || ll == nil {
		t.mu.Unlock()
		return
	}
	gotToken := m.Token != 0 && ll.theirTok == 0
	if gotToken {
		ll.theirTok = m.Token
	}
	if len(m.Key) == bindKeyLen && bd.theirs == nil {
		// On the peer's first link, or on one it saw first while this
		// node saw another first: a key fills only an empty slot.
		bd.theirs = m.Key
		answers, bd.asked = bd.asked, nil
	} else if len(m.Key) == bindKeyLen && ll.nonce != nil {
		// The peer takes this held link for its first: it has dropped
		// every link this node still counts. Kept so that the link can
		// take their place when they go down (linkDown).
		ll.peerKey = m.Key
	}
	if m.Nonce != nil {
		c := challenge{l, m.Nonce}
		if bd.theirs != nil {
			answers = append(answers, c)
		} else if len(bd.asked) < maxAsked {
			bd.asked = append(bd.asked, c) // the key is on its way on another link
		}
	}
	if m.Proof != nil && ll.nonce != nil {
		if hmac.Equal(m.Proof, proof(bd.mine, id, b.id, ll.nonce)) {
			promote = true
			early = t.promote(bd, l, ll)
		} else {
			refuse = fmt.Errorf("%w: a second link claiming node %s gave a wrong proof", ErrRefused, id.Short())
		}
	}
	key, admitted := bd.theirs, ll.nonce == nil
	t.mu.Unlock()
	for _, c := range answers {
		b.sendLinkMsg(c.l, &sysLink{Proof: proof(key, b.id, id, c.nonce)})
	}
	switch {
	case refuse != nil:
		t.refuseHeld(l, refuse)
	case promote:
		b.log.Info("link up", "peer", id.Short(), "scheme", l.Scheme(), "proven", true)
		b.admitted(l, early)
	case gotToken && admitted:
		b.dedupe(id)
	}
	if m.After != 0 {
		b.onAfter(l, m.After)
	}
	if m.Moved {
		b.onMoved(l)
	}
	if m.Fence {
		b.onFence(l)
	}
	if m.FenceAck {
		b.onFenceAck(l)
	}
}

// promote admits the held link l to bd and returns what it held; t.mu must
// be held.
func (t *linkTable) promote(bd *binding, l Link, ll *liveLink) []*Envelope {
	early := ll.early
	ll.early, ll.nonce, ll.peerKey = nil, nil, nil
	ll.timer.Stop()
	t.held.Add(-1)
	bd.links++
	ll.info.Since = time.Now()
	t.emit(ll.info)
	for _, k := range ll.ks {
		if k.link == l {
			t.ready(k, ll)
		}
	}
	return early
}

// admitted puts a link promote admitted to use and delivers what it held.
func (b *Bus) admitted(l Link, early []*Envelope) {
	b.addLink(l)
	b.added(l)
	for _, env := range early {
		b.Deliver(l, env)
	}
}

// refuseHeld closes l if it is still held, logging the refusal at Warn.
func (t *linkTable) refuseHeld(l Link, err error) {
	t.mu.Lock()
	ll := t.live[l]
	if ll == nil || ll.nonce == nil {
		t.mu.Unlock()
		return
	}
	ll.refused = err
	t.mu.Unlock()
	l.Close(err)
}
