package bus

import (
	"fmt"
	"strings"
)

// Subjects are dot-separated tokens ("prices.eur.spot"). A pattern may use
// "*" for exactly one token and ">" as its last token for one or more
// tokens, as in NATS: "prices.*" matches "prices.eur" but not
// "prices.eur.spot"; "prices.>" matches both, not "prices".

// matchSubject reports whether subject matches pattern. It allocates nothing.
func matchSubject(pattern, subject string) bool {
	for {
		pt, prest, pmore := strings.Cut(pattern, ".")
		if pt == ">" {
			return subject != ""
		}
		if subject == "" {
			return false
		}
		st, srest, smore := strings.Cut(subject, ".")
		if pt != "*" && pt != st {
			return false
		}
		if !pmore || !smore {
			return pmore == smore
		}
		pattern, subject = prest, srest
	}
}

func validSubject(s string) error {
	if s == "" || len(s) > MaxNameLen {
		return fmt.Errorf("%w: subject %q must be 1..%d bytes", ErrInvalidName, s, MaxNameLen)
	}
	for tok := range strings.SplitSeq(s, ".") {
		if tok == "" || tok == "*" || tok == ">" || strings.ContainsAny(tok, " \t\r\n") {
			return fmt.Errorf("%w: subject %q: tokens must be non-empty, without wildcards or spaces", ErrInvalidName, s)
		}
	}
	return nil
}

func validPattern(p string) error {
	if p == "" || len(p) > MaxNameLen {
		return fmt.Errorf("%w: pattern %q must be 1..%d bytes", ErrInvalidName, p, MaxNameLen)
	}
	toks := strings.Split(p, ".")
	for i, tok := range toks {
		switch {
		case tok == "":
			return fmt.Errorf("%w: pattern %q has an empty token", ErrInvalidName, p)
		case tok == ">" && i != len(toks)-1:
			return fmt.Errorf("%w: pattern %q: > must be the last token", ErrInvalidName, p)
		case tok != "*" && tok != ">" && strings.ContainsAny(tok, "*> \t\r\n"):
			return fmt.Errorf("%w: pattern %q: wildcards must be whole tokens", ErrInvalidName, p)
		}
	}
	return nil
}
