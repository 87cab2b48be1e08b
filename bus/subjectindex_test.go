package bus

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/xbus-dev/xbus/bus/internal/subject"
)

// These tests hold the subject index to matchSubject, the linear matcher it
// replaces: for any patterns and any subject, the index visits exactly the
// values whose pattern matchSubject accepts.

type indexed struct {
	pattern string
	id      int
}

// checkIndex compares x against a linear scan of live with matchSubject.
func checkIndex(t *testing.T, x *subject.Index[int], live []indexed, subj string) {
	t.Helper()
	var got, want []int
	x.Match(subj, func(id int) bool { got = append(got, id); return true })
	for _, e := range live {
		if matchSubject(e.pattern, subj) {
			want = append(want, e.id)
		}
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Fatalf("subject %q over %v: index visits %v, matchSubject %v", subj, live, got, want)
	}
	if x.Matches(subj) != (len(want) > 0) {
		t.Fatalf("subject %q: Matches says %v, matchSubject found %d", subj, x.Matches(subj), len(want))
	}
}

func TestSubjectIndexTable(t *testing.T) {
	patterns := []string{
		"a", "a.b", "a.*", "a.>", "*", ">", "*.b", "*.*", "a.b.c", "a.*.c", "a.b.>",
		"*.>", "a.*.>", "b.>", "$deadletters", "x.y.z.w", "a.b", // "a.b" twice: two values
	}
	subjects := []string{
		"a", "b", "a.b", "a.c", "a.b.c", "a.c.c", "a.b.c.d", "b.b", "x.y.z.w", "x.y.z",
		"$deadletters", "c.b.a", "zz",
		// Not valid for Publish, but a peer may send them: same answers as matchSubject.
		"", ".", "a.", ".a", "a..c", "a.*", "a.>", ">", "*",
	}
	var x subject.Index[int]
	var live []indexed
	for i, p := range patterns {
		x.Insert(p, i)
		live = append(live, indexed{p, i})
	}
	for _, s := range subjects {
		checkIndex(t, &x, live, s)
	}
	if x.Len() != len(patterns) {
		t.Fatalf("Len = %d, want %d", x.Len(), len(patterns))
	}
	// Remove every other value; the rest still match as before.
	for i := 0; i < len(live); i += 2 {
		if !x.Remove(live[i].pattern, live[i].id) {
			t.Fatalf("Remove(%q, %d) found nothing", live[i].pattern, live[i].id)
		}
	}
	if x.Remove("a", 0) || x.Remove("no.such", 1) || x.Remove("a.b", 99) {
		t.Fatal("Remove of a value not held reported one")
	}
	var rest []indexed
	for i := 1; i < len(live); i += 2 {
		rest = append(rest, live[i])
	}
	for _, s := range subjects {
		checkIndex(t, &x, rest, s)
	}
}

// TestSubjectIndexOrderAndDuplicates holds the order of one pattern's values
// (insertion order) and visits a value inserted twice twice.
func TestSubjectIndexOrderAndDuplicates(t *testing.T) {
	var x subject.Index[int]
	for _, v := range []int{3, 1, 2, 1} {
		x.Insert("o.*", v)
	}
	var got []int
	x.Match("o.k", func(v int) bool { got = append(got, v); return true })
	if !slices.Equal(got, []int{3, 1, 2, 1}) {
		t.Fatalf("visits %v, want [3 1 2 1]", got)
	}
	x.Remove("o.*", 1)
	got = got[:0]
	x.Match("o.k", func(v int) bool { got = append(got, v); return true })
	if !slices.Equal(got, []int{3, 2, 1}) {
		t.Fatalf("after removing one 1: visits %v, want [3 2 1]", got)
	}
	// Stopping early.
	n := 0
	if x.Match("o.k", func(int) bool { n++; return false }) || n != 1 {
		t.Fatalf("Match did not stop at the first false (%d visits)", n)
	}
}

func TestSubjectIndexPatterns(t *testing.T) {
	var x subject.Index[int]
	for i, p := range []string{"b.>", "a.x", "a.*", "a.x", "c", "a.x.y"} {
		x.Insert(p, i)
	}
	list := func(prefix string) []string {
		var out []string
		x.Patterns(prefix, func(p string, c int) bool { out = append(out, fmt.Sprintf("%s=%d", p, c)); return true })
		return out
	}
	if got := list(""); !slices.Equal(got, []string{"a.*=1", "a.x=2", "a.x.y=1", "b.>=1", "c=1"}) {
		t.Fatalf("Patterns: %v", got)
	}
	if got := list("a.x"); !slices.Equal(got, []string{"a.x=2", "a.x.y=1"}) {
		t.Fatalf("Patterns under a.x: %v", got)
	}
	x.Remove("a.x", 1)
	x.Remove("a.x", 3)
	if x.Has("a.x") || !x.Has("a.x.y") {
		t.Fatal("Has after removing both a.x values")
	}
	if got := list("a."); !slices.Equal(got, []string{"a.*=1", "a.x.y=1"}) {
		t.Fatalf("Patterns under a.: %v", got)
	}
	n := 0
	x.All(func(int) bool { n++; return true })
	if n != x.Len() || n != 4 {
		t.Fatalf("All visited %d values, Len %d, want 4", n, x.Len())
	}
}

// TestSubjectIndexEmptied removes everything and checks nothing matches and
// the trie holds no nodes for the removed patterns (a fresh insert works).
func TestSubjectIndexEmptied(t *testing.T) {
	var x subject.Index[int]
	ps := []string{"a.b.c", "a.*.c", "a.>", ">", "*"}
	for i, p := range ps {
		x.Insert(p, i)
	}
	for i, p := range ps {
		x.Remove(p, i)
	}
	if x.Len() != 0 || x.Matches("a.b.c") || x.Matches("a") {
		t.Fatal("an emptied index still matches")
	}
	n := 0
	x.Patterns("", func(string, int) bool { n++; return true })
	if n != 0 {
		t.Fatalf("an emptied index lists %d patterns", n)
	}
	x.Insert("a.b.c", 7)
	checkIndex(t, &x, []indexed{{"a.b.c", 7}}, "a.b.c")
}

func TestSubjectIndexMatchAllocs(t *testing.T) {
	var x subject.Index[*Subscription]
	for i := range 1000 {
		x.Insert(fmt.Sprintf("p.%d.*", i), &Subscription{})
	}
	x.Insert("p.>", &Subscription{})
	n := 0
	allocs := testing.AllocsPerRun(100, func() {
		x.Match("p.500.q", func(*Subscription) bool { n++; return true })
	})
	if allocs != 0 {
		t.Fatalf("Match allocates %.1f times per call", allocs)
	}
	if n != 2*101 {
		t.Fatalf("Match visited %d, want 2 per call", n)
	}
}

// FuzzIndex inserts patterns (split on spaces), removes every third, and
// checks the index against matchSubject for subj, and its pattern listing
// against the patterns held.
func FuzzIndex(f *testing.F) {
	f.Add("a.b a.* a.> > * *.b a.b.c", "a.b")
	f.Add("$deadletters > *", "$deadletters")
	f.Add("a..b a.>.b .> *.", "a..b")
	f.Add("x.*.z x.> x.y.z", "x.y.z")
	f.Fuzz(func(t *testing.T, patterns, subj string) {
		var x subject.Index[int]
		var live []indexed
		for i, p := range strings.Split(patterns, " ") {
			x.Insert(p, i)
			live = append(live, indexed{p, i})
		}
		kept := live[:0:0]
		for i, e := range live {
			if i%3 == 2 {
				if !x.Remove(e.pattern, e.id) {
					t.Fatalf("Remove(%q, %d) found nothing", e.pattern, e.id)
				}
				continue
			}
			kept = append(kept, e)
		}
		checkIndex(t, &x, kept, subj)
		for _, e := range kept { // each pattern matches its own text when that is a subject
			checkIndex(t, &x, kept, e.pattern)
		}
		counts := map[string]int{}
		for _, e := range kept {
			counts[e.pattern]++
		}
		var prev string
		n := 0
		x.Patterns("", func(p string, c int) bool {
			if n > 0 && p <= prev {
				t.Fatalf("Patterns out of order: %q after %q", p, prev)
			}
			if counts[p] != c {
				t.Fatalf("Patterns: %q holds %d, want %d", p, c, counts[p])
			}
			prev = p
			n++
			return true
		})
		if n != len(counts) || x.Len() != len(kept) {
			t.Fatalf("Patterns lists %d of %d, Len %d of %d", n, len(counts), x.Len(), len(kept))
		}
	})
}

// BenchmarkSubjectMatch times finding the subscriptions for one published
// subject among n, with the index and with the linear scan it replaces, in
// the same run. The subscriptions are "t.<i>.*" and "t.<i>.x" for n/2 values
// of i, and one "t.>": a publish on "t.<k>.x" matches three.
func BenchmarkSubjectMatch(b *testing.B) {
	for _, n := range []int{10, 1000, 100000} {
		var x subject.Index[*Subscription]
		var list []*Subscription
		for i := range n - 1 {
			p := fmt.Sprintf("t.%d.%s", i/2, []string{"*", "x"}[i%2])
			s := &Subscription{pattern: p}
			x.Insert(p, s)
			list = append(list, s)
		}
		s := &Subscription{pattern: "t.>"}
		x.Insert("t.>", s)
		list = append(list, s)
		subjects := make([]string, 64)
		r := rand.New(rand.NewPCG(1, 2))
		for i := range subjects {
			subjects[i] = fmt.Sprintf("t.%d.x", r.IntN(max(1, (n-1)/2)))
		}
		b.Run(fmt.Sprintf("subs=%d/index", n), func(b *testing.B) {
			b.ReportAllocs()
			found := 0
			for i := 0; b.Loop(); i++ {
				x.Match(subjects[i%len(subjects)], func(*Subscription) bool { found++; return true })
			}
			if found == 0 {
				b.Fatal("nothing matched")
			}
		})
		b.Run(fmt.Sprintf("subs=%d/linear", n), func(b *testing.B) {
			b.ReportAllocs()
			found := 0
			for i := 0; b.Loop(); i++ {
				subj := subjects[i%len(subjects)]
				for _, s := range list {
					if s.pattern == subj || (s.pattern != DeadLetterSubject && matchSubject(s.pattern, subj)) {
						found++
					}
				}
			}
			if found == 0 {
				b.Fatal("nothing matched")
			}
		})
	}
}
