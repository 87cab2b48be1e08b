// Command xbus is the project's tool: it measures the bus on this machine
// and tells which build it is.
//
//	xbus bench [-quick] [-json] [-cpuprofile prefix] [inproc|shm|net|supervisor|all]
//	xbus version
//
// Each subcommand is a file of its own: bench.go, version.go, and peer.go,
// the hidden subcommand that a benchmark's peer process runs.
package main

import (
	"fmt"
	"io"
	"os"

	"github.com/xbus-dev/xbus/internal/benchkit"
)

const usage = `xbus: an actor / message-bus runtime for Go.

Usage:
  xbus bench [flags] [suite]    measure the bus, each figure beside a
                                baseline doing the same work in the same
                                run; suites: inproc (default), shm, net,
                                supervisor, rpc, codec, all ("xbus bench
                                -h" for flags)
  xbus version                  print the module version and Go version
  xbus help                     print this text
`

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

// run is the command with its arguments and outputs; it returns the exit
// code.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "bench":
		return bench(args[1:], stdout, stderr)
	case "version":
		return version(stdout)
	case benchkit.PeerArg:
		return peer(args, stderr)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "xbus: unknown command %q\n\n%s", args[0], usage)
	return 2
}
