package shmbus

// RawRTT exposes the raw floors of RunBench to the benchmarks.
var RawRTT = rawRTT
