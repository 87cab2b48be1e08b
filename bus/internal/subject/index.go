package subject

import (
	"slices"
	"strings"

	"github.com/tidwall/btree"
)

// Index maps patterns to values. The zero Index is empty and ready to use.
type Index[V comparable] struct {
	root     node[V]
	patterns btree.Map[string, int] // each distinct pattern and how many values it holds
	n        int
}

type node[V comparable] struct {
	exact map[string]*node[V]
	star  *node[V]
	here  []V // values of patterns that end at this node
	rest  []V // values of patterns that end at this node with ">"
}

func (n *node[V]) empty() bool {
	return len(n.exact) == 0 && n.star == nil && len(n.here) == 0 && len(n.rest) == 0
}

// Insert adds value under pattern. A value inserted twice is held twice and
// visited twice. Tokens after a ">" are ignored, as matching a pattern token
// by token never reaches them; callers validate patterns first.
func (x *Index[V]) Insert(pattern string, value V) {
	n := &x.root
	p := pattern
	for {
		tok, rest, more := strings.Cut(p, ".")
		if tok == ">" {
			n.rest = append(n.rest, value)
			break
		}
		var child *node[V]
		if tok == "*" {
			if n.star == nil {
				n.star = &node[V]{}
			}
			child = n.star
		} else {
			if child = n.exact[tok]; child == nil {
				if n.exact == nil {
					n.exact = map[string]*node[V]{}
				}
				child = &node[V]{}
				n.exact[tok] = child
			}
		}
		n = child
		if !more {
			n.here = append(n.here, value)
			break
		}
		p = rest
	}
	c, _ := x.patterns.Get(pattern)
	x.patterns.Set(pattern, c+1)
	x.n++
}

// Remove removes one value equal to value under pattern and reports whether
// there was one. Nodes left empty are freed.
func (x *Index[V]) Remove(pattern string, value V) bool {
	if !remove(&x.root, pattern, value) {
		return false
	}
	if c, _ := x.patterns.Get(pattern); c > 1 {
		x.patterns.Set(pattern, c-1)
	} else {
		x.patterns.Delete(pattern)
	}
	x.n--
	return true
}

func remove[V comparable](n *node[V], p string, value V) bool {
	tok, rest, more := strings.Cut(p, ".")
	if tok == ">" {
		return drop(&n.rest, value)
	}
	child := n.star
	if tok != "*" {
		child = n.exact[tok]
	}
	if child == nil {
		return false
	}
	var ok bool
	if more {
		ok = remove(child, rest, value)
	} else {
		ok = drop(&child.here, value)
	}
	if ok && child.empty() {
		if tok == "*" {
			n.star = nil
		} else {
			delete(n.exact, tok)
		}
	}
	return ok
}

func drop[V comparable](vs *[]V, value V) bool {
	i := slices.Index(*vs, value)
	if i < 0 {
		return false
	}
	var zero V
	last := len(*vs) - 1
	copy((*vs)[i:], (*vs)[i+1:])
	(*vs)[last] = zero // let the value be collected
	*vs = (*vs)[:last]
	if last == 0 {
		*vs = nil
	}
	return true
}

// Len is how many values the index holds.
func (x *Index[V]) Len() int { return x.n }

// Has reports whether any value is held under exactly pattern.
func (x *Index[V]) Has(pattern string) bool {
	_, ok := x.patterns.Get(pattern)
	return ok
}

// Match calls visit with every value whose pattern matches subject, until
// visit returns false; it reports whether it went to the end. The values
// of one pattern come in the order they were inserted. Each matching value
// is visited once per time it was inserted. Match allocates nothing.
func (x *Index[V]) Match(subject string, visit func(V) bool) bool {
	return match(&x.root, subject, visit)
}

// Matches reports whether any pattern in the index matches subject.
func (x *Index[V]) Matches(subject string) bool {
	return !match(&x.root, subject, func(V) bool { return false })
}

// match follows subject's tokens from n: the values of patterns ending
// with ">" at n take whatever remains (at least one token); the exact and
// "*" children take the next token, and either end with the subject or
// follow the rest of it.
func match[V comparable](n *node[V], subject string, visit func(V) bool) bool {
	if subject == "" {
		return true
	}
	for _, v := range n.rest {
		if !visit(v) {
			return false
		}
	}
	tok, rest, more := strings.Cut(subject, ".")
	for _, child := range [2]*node[V]{n.exact[tok], n.star} {
		if child == nil {
			continue
		}
		if !more {
			for _, v := range child.here {
				if !visit(v) {
					return false
				}
			}
		} else if !match(child, rest, visit) {
			return false
		}
	}
	return true
}

// Patterns calls visit with each distinct pattern that starts with prefix
// (all of them when prefix is empty), in byte order, and the number of
// values it holds, until visit returns false.
func (x *Index[V]) Patterns(prefix string, visit func(pattern string, count int) bool) {
	x.patterns.Ascend(prefix, func(p string, c int) bool {
		if !strings.HasPrefix(p, prefix) {
			return false
		}
		return visit(p, c)
	})
}

// All calls visit with every value in the index, until visit returns false.
func (x *Index[V]) All(visit func(V) bool) {
	all(&x.root, visit)
}

func all[V comparable](n *node[V], visit func(V) bool) bool {
	for _, v := range n.here {
		if !visit(v) {
			return false
		}
	}
	for _, v := range n.rest {
		if !visit(v) {
			return false
		}
	}
	for _, c := range n.exact {
		if !all(c, visit) {
			return false
		}
	}
	if n.star != nil {
		return all(n.star, visit)
	}
	return true
}
