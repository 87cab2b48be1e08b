package supervisor

// restForOne restarts the failed child and the children started after it,
// in start order: those that may depend on it.
func restForOne(i, n int) []int {
	if i < 0 || i >= n {
		return nil
	}
	rest := make([]int, 0, n-i)
	for k := i; k < n; k++ {
		rest = append(rest, k)
	}
	return rest
}
