//go:build race

// Package race tells whether the binary was built with the race detector,
// which slows code down and makes sync.Pool drop items at random: tests that
// count allocations or rounds read Enabled to skip or shorten themselves.
package race

// Enabled is true: the binary was built with -race.
const Enabled = true
