//go:build !race

// Package race tells whether the binary was built with the race detector,
// which slows code down and makes sync.Pool drop items at random: tests that
// count allocations or rounds read Enabled to skip or shorten themselves.
package race

// Enabled is false: the binary was built without -race.
const Enabled = false
