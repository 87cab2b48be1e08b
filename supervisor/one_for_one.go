package supervisor

// oneForOne restarts the failed child alone. SimpleOneForOne uses it too.
func oneForOne(i, n int) []int {
	if i < 0 || i >= n {
		return nil
	}
	return []int{i}
}
