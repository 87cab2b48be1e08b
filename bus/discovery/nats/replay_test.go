package nats

import (
	"errors"
	"testing"
	"time"
)

func TestReplayGuard(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0)
	skew := 30 * time.Second
	at := func(seq uint64, sent time.Time) *announcement {
		a := testAnnouncement()
		a.Seq, a.Time, a.TTL = seq, sent.UnixMilli(), 6000
		return a
	}
	steps := []struct {
		name string
		a    *announcement
		now  time.Time
		want error
	}{
		{"first hello", at(1, t0), t0, nil},
		{"the same again (replay)", at(1, t0), t0.Add(time.Second), errReplay},
		{"next heartbeat", at(2, t0.Add(2*time.Second)), t0.Add(2 * time.Second), nil},
		{"an older one replayed", at(1, t0), t0.Add(3 * time.Second), errReplay},
		{"sender's clock 10 s ahead", at(3, t0.Add(14*time.Second)), t0.Add(4 * time.Second), nil},
		{"from too far in the future", at(4, t0.Add(time.Hour)), t0.Add(5 * time.Second), errStale},
		{"captured long ago, with a sequence number never seen", at(100, t0.Add(-time.Minute)), t0.Add(6 * time.Second), errStale},
		// Long after the node vanished its record is pruned, and a replay of
		// its last message is refused as stale instead.
		{"its last message replayed after the record went", at(3, t0.Add(14*time.Second)), t0.Add(14*time.Second + 6*time.Second + 2*skew + time.Second), errStale},
	}
	g := newReplayGuard(skew)
	for _, s := range steps {
		g.prune(s.now)
		if err := g.admit(s.a, s.now); !errors.Is(err, s.want) {
			t.Fatalf("%s: admit = %v, want %v", s.name, err, s.want)
		}
	}
	if len(g.seen) != 0 {
		t.Fatalf("records left after every node expired: %v", g.seen)
	}
}

// TestReplayGuardBounded: a sender with the secret that uses a new node id
// per message cannot grow the guard past maxPeers.
func TestReplayGuardBounded(t *testing.T) {
	g := newReplayGuard(time.Second)
	now := time.Unix(1_700_000_000, 0)
	refused := 0
	for i := range maxPeers + 10 {
		a := testAnnouncement()
		a.Node = testNode[:30] + string(rune('a'+i%6)) + testNode[31:] + string(rune(i)) // distinct keys
		a.Time = now.UnixMilli()
		if g.admit(a, now) != nil {
			refused++
		}
	}
	if len(g.seen) > maxPeers || refused != 10 {
		t.Fatalf("%d records, %d refused; want at most %d and 10", len(g.seen), refused, maxPeers)
	}
	// Once their records expire, new nodes are admitted again.
	later := now.Add(time.Hour)
	a := testAnnouncement()
	a.Time = later.UnixMilli()
	if err := g.admit(a, later); err != nil {
		t.Fatalf("after expiry: %v", err)
	}
}
