package main

import (
	"fmt"
	"io"

	"github.com/xbus-dev/xbus/internal/bench/netbench"
	"github.com/xbus-dev/xbus/internal/bench/rpcbench"
	"github.com/xbus-dev/xbus/internal/bench/shmbench"
	"github.com/xbus-dev/xbus/internal/benchkit"
)

// peers are the benchmark peer processes that the shm and net suites
// start: this executable again, as `xbus bench-peer name value`
// (benchkit.StartPeer). The subcommand is hidden: it is no use by hand.
var peers = map[string]func(string) int{
	netbench.PeerName: netbench.Peer,
	shmbench.PeerName: shmbench.Peer,
	rpcbench.PeerName: rpcbench.Peer,
}

func peer(args []string, stderr io.Writer) int {
	if code, ok := benchkit.ServePeer(args, peers); ok {
		return code
	}
	fmt.Fprintf(stderr, "xbus %s: want a peer's name and its argument\n", benchkit.PeerArg)
	return 2
}
