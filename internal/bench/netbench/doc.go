// Package netbench measures netbus for `xbus bench net` and for
// `go test -bench . ./internal/bench/netbench`: two buses in one process
// (OneProcess, BenchPair) and two processes, the way netbus is used
// (RunBench), each figure beside a raw socket baseline of the same bytes.
//
// Both are reported because they differ. In one process a raw socket
// ping-pong is one goroutine on each end, and the Go scheduler runs both on
// one thread: whenever one parks, the thread finds the other ready in the
// network poller, and no thread ever sleeps. Across two processes each
// end's thread sleeps in epoll and is woken by the kernel, as in any real
// deployment, and every goroutine hand-off inside a process may wake a
// second thread.
//
// The peer process is the running executable started again through
// benchkit.StartPeer; the xbus command's hidden bench-peer subcommand and
// this package's TestMain run Peer in it.
package netbench
