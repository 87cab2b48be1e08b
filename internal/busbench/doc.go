// Package busbench holds the in-process measurements of package bus that
// its benchmarks (bus/bench_test.go) and the xbus bench command share:
// Tell throughput, Ask latency and the cost of idle actors, and the inproc
// suite of `xbus bench` (RunBench). The timing
// harness and the plain-Go baselines are in internal/benchkit, which
// imports nothing of xbus; this package drives a real bus with it.
package busbench
