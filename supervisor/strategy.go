package supervisor

// Strategy says which children a supervisor restarts when one of them has to
// be restarted.
type Strategy uint8

const (
	// OneForOne restarts only the child that failed.
	OneForOne Strategy = iota
	// OneForAll restarts every child when one fails.
	OneForAll
	// RestForOne restarts the failed child and every child started after it.
	RestForOne
	// SimpleOneForOne runs a dynamic pool of children built from one
	// template (Spec.Children[0]): none at first, added with AddChild and
	// removed with RemoveChild at run time. A failed member is restarted
	// alone.
	SimpleOneForOne
)

func (s Strategy) String() string {
	switch s {
	case OneForOne:
		return "one-for-one"
	case OneForAll:
		return "one-for-all"
	case RestForOne:
		return "rest-for-one"
	case SimpleOneForOne:
		return "simple-one-for-one"
	}
	return "strategy(?)"
}

// affected returns the indexes, in start order, of the children to restart
// when child i of n has to be: a pure function of the strategy.
func (s Strategy) affected(i, n int) []int {
	switch s {
	case OneForAll:
		return oneForAll(i, n)
	case RestForOne:
		return restForOne(i, n)
	default:
		return oneForOne(i, n)
	}
}
