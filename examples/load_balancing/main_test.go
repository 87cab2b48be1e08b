package main

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"testing/synctest"
)

// TestOrderOfCounts runs the example and checks what it promises: every
// ask answered, and the slow instance answering fewer under least
// connections and the latency score than under round robin. It runs in a
// synctest bubble, where the fast instances answer in no time on the clock
// and the slow one takes its 2 ms, so load on the machine cannot make the
// fast ones look as slow.
func TestOrderOfCounts(t *testing.T) {
	var out bytes.Buffer
	var all map[string]map[string]int
	var err error
	synctest.Test(t, func(t *testing.T) {
		all, err = run(&out, slog.New(slog.DiscardHandler))
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Log("\n" + out.String())
	for name, counts := range all {
		sum := 0
		for _, n := range counts {
			sum += n
		}
		if sum != asks {
			t.Errorf("%s: %d of %d asks answered", name, sum, asks)
		}
	}
	rr := all["round-robin"]["slow"]
	for _, s := range []string{"least-connections", "latency"} {
		if got := all[s]["slow"]; got >= rr {
			t.Errorf("%s sent the slow instance %d asks, round robin %d", s, got, rr)
		}
	}
	if !strings.Contains(out.String(), "least-connections") {
		t.Errorf("output lacks the strategies:\n%s", out.String())
	}
}
