package bus

import "testing"

// TestInboundMapSharedCorr holds asks of two peers with one correlation id
// (ids are each asker's own, so a peer may pick another's): a cancel from
// one peer cancels its own ask only, and each ask's end removes its own
// record, whichever order they come in.
func TestInboundMapSharedCorr(t *testing.T) {
	for _, firstDone := range []int{0, 1, 2} {
		m := newInboundMap()
		nodes := []NodeID{{1}, {2}, {3}}
		ins := make([]*inbound, len(nodes))
		for i, n := range nodes {
			ins[i] = &inbound{env: Envelope{Kind: KindAsk, Corr: 7}}
			m.store(n, ins[i])
		}
		other := &inbound{env: Envelope{Kind: KindAsk, Corr: 7 + corrShards}} // same shard, another id
		m.store(nodes[0], other)

		m.cancel(nodes[1], 7)
		for i, in := range ins {
			if got, want := in.canceled.Load(), i == 1; got != want {
				t.Fatalf("after peer 2's cancel, ask of peer %d canceled = %v, want %v", i+1, got, want)
			}
		}
		if other.canceled.Load() {
			t.Fatal("a cancel of id 7 canceled an ask with another id")
		}
		m.delete(ins[firstDone])
		if m.any(func(in *inbound) bool { return in == ins[firstDone] }) {
			t.Fatalf("the ended ask of peer %d is still held", firstDone+1)
		}
		for i, in := range ins {
			if i != firstDone && !m.any(func(x *inbound) bool { return x == in }) {
				t.Fatalf("ending peer %d's ask removed peer %d's", firstDone+1, i+1)
			}
		}
		m.cancel(nodes[firstDone], 7) // its ask has ended: nothing of the others
		for i, in := range ins {
			if i != 1 && in.canceled.Load() {
				t.Fatalf("a cancel for an ended ask canceled peer %d's", i+1)
			}
		}
		m.delete(ins[firstDone]) // twice: nothing
		m.removeIf(func(in *inbound) bool { return in == ins[2] || in == other })
		for i, in := range ins {
			held := m.any(func(x *inbound) bool { return x == in })
			if want := i != firstDone && i != 2; held != want {
				t.Fatalf("after removing peer 3's and the other id's asks, peer %d's held = %v, want %v", i+1, held, want)
			}
		}
		if m.any(func(x *inbound) bool { return x == other }) {
			t.Fatal("the ask with another id is still held")
		}
	}
}
