package netbus

import (
	"slices"
	"testing"
)

// asksIn returns the correlation ids askRing r hands back for seqs [from, to).
func asksIn(r *askRing, from, to uint64) []uint64 {
	var got []uint64
	r.each(from, to, func(corr uint64) { got = append(got, corr) })
	return got
}

// TestAskRingKeepsUnacknowledgedAsks: the ring hands back, in order, exactly
// the asks pushed and neither acknowledged (trim) nor withdrawn (drop), across
// growth and wrap-around; past maxAskRecs it keeps the first ones, so an ask
// not kept fails with its link, and never displaces one that was.
func TestAskRingKeepsUnacknowledgedAsks(t *testing.T) {
	var r askRing
	// Asks at even seqs, corr = seq+1000; odd seqs are tells, not pushed.
	for seq := uint64(0); seq < 20; seq += 2 {
		r.push(seq, seq+1000)
	}
	if got, want := asksIn(&r, 4, 11), []uint64{1004, 1006, 1008, 1010}; !slices.Equal(got, want) {
		t.Fatalf("asks in [4,11): %v, want %v", got, want)
	}
	r.trim(9) // the peer read up to seq 9
	if got, want := asksIn(&r, 0, 100), []uint64{1010, 1012, 1014, 1016, 1018}; !slices.Equal(got, want) {
		t.Fatalf("after trim(9): %v, want %v", got, want)
	}
	r.drop(16) // not the last kept: stays
	r.drop(18) // the last: its Send failed
	if got, want := asksIn(&r, 0, 100), []uint64{1010, 1012, 1014, 1016}; !slices.Equal(got, want) {
		t.Fatalf("after drop: %v, want %v", got, want)
	}
	// Wrap around the buffer without growing it, then grow while wrapped.
	for seq := uint64(20); seq < 60; seq++ {
		r.push(seq, seq+1000)
		r.trim(seq - 3)
	}
	if got, want := asksIn(&r, 0, 100), []uint64{1056, 1057, 1058, 1059}; !slices.Equal(got, want) {
		t.Fatalf("after wrap: %v, want %v", got, want)
	}
	for seq := uint64(60); seq < 60+maxAskRecs+10; seq++ {
		r.push(seq, seq+1000)
	}
	if r.size != maxAskRecs || len(r.recs) != maxAskRecs {
		t.Fatalf("kept %d asks in %d records, want at most %d", r.size, len(r.recs), maxAskRecs)
	}
	got := asksIn(&r, 0, 1<<20)
	if len(got) != maxAskRecs || got[0] != 1056 || got[len(got)-1] != 1056+maxAskRecs-1 {
		t.Fatalf("past the cap kept %d asks, %d..%d; want the first %d from 1056", len(got), got[0], got[len(got)-1], maxAskRecs)
	}
	for i := 1; i < len(got); i++ {
		if got[i] != got[i-1]+1 {
			t.Fatalf("asks out of order at %d: %d after %d", i, got[i], got[i-1])
		}
	}
	r.trim(1 << 20)
	if got := asksIn(&r, 0, 1<<20); len(got) != 0 {
		t.Fatalf("after trimming all, %d asks left", len(got))
	}
}
