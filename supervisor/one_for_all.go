package supervisor

// oneForAll restarts every child, in start order.
func oneForAll(i, n int) []int {
	if i < 0 || i >= n {
		return nil
	}
	all := make([]int, n)
	for k := range all {
		all[k] = k
	}
	return all
}
