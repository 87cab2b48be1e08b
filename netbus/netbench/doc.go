// Package netbench measures netbus between two processes, the way it is
// used, for `xbus bench net` and `go test -bench . ./netbus/netbench`.
//
// netbus's own benchmarks (netbus.RunBench, `go test -bench ./netbus`) run
// both buses in one process. There a raw socket ping-pong is one goroutine
// on each end, and the Go scheduler runs both on one thread: whenever one
// parks, the thread finds the other ready in the network poller, and no
// thread ever sleeps. Across two processes each end's thread sleeps in
// epoll and is woken by the kernel, as in any real deployment, and every
// goroutine hand-off inside a process may wake a second thread. The figures
// differ, so both are reported.
//
// The peer is the running executable started again with an environment
// variable set, which this package's init turns into the peer before main
// runs. A program that imports netbench (cmd/xbus, this package's tests)
// thereby gains that behaviour; netbus itself does not.
package netbench
