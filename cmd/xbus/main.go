// Command xbus is the project's tool: it measures the bus on this machine
// and tells which build it is.
//
//	xbus bench [-quick] [-cpuprofile prefix] [inproc|shm|net|supervisor|all]
//	                                                      measure, print tables
//	xbus version                                          print the build
//
// Every row of the bench table gives xbus's figure, the figure of a plain-Go
// baseline doing the same work in the same run, their ratio, and the target
// the project holds itself to. The in-process suite runs in well under a
// minute; -quick shrinks every count a hundredfold for a smoke test.
//
// Each suite is a function that writes its own Markdown table to stdout;
// a package under internal/bench joins by exporting a RunBench function,
// and wiring it in is one line in the suites table below. The shm and net
// suites start a peer process: this executable again, as the hidden
// subcommand bench-peer.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strings"

	"github.com/xbus-dev/xbus/internal/bench/netbench"
	"github.com/xbus-dev/xbus/internal/bench/shmbench"
	"github.com/xbus-dev/xbus/internal/bench/supbench"
	"github.com/xbus-dev/xbus/internal/benchkit"
)

const usage = `xbus: an actor / message-bus runtime for Go.

Usage:
  xbus bench [-quick] [suite]   measure the bus and print a table of
                                xbus / same-run baseline / ratio / target
                                suites: inproc (default), shm, net,
                                supervisor, all
                                -cpuprofile prefix: CPU profiles of this
                                process and of the shm suite's peer
  xbus version                  print the module version and Go version
  xbus help                     print this text
`

// suite is one table of the bench output.
type suite struct {
	name  string
	title string
	run   func(w io.Writer, quick bool) error // writes a Markdown table
}

// suites lists every bench suite in the order "all" runs them. A package
// that exports RunBench joins with one line.
var suites = []suite{
	{"inproc", "in process (bus, mailbox)", runInProcess},
	{"shm", "shared memory (shmbus)", shmbench.RunBench},
	{"net", "sockets (netbus)", netbench.RunBench},
	{"supervisor", "supervision (restart latency)", func(w io.Writer, _ bool) error { return supbench.RunBench(w) }},
}

// peers are the benchmark peer processes, which the suites start as this
// executable's hidden bench-peer subcommand.
var peers = map[string]func(string) int{netbench.PeerName: netbench.Peer, shmbench.PeerName: shmbench.Peer}

func pick[T any](quick bool, q, full T) T {
	if quick {
		return q
	}
	return full
}

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
	case benchkit.PeerArg: // hidden: the peer process of the shm and net suites
		if code, ok := benchkit.ServePeer(args, peers); ok {
			return code
		}
	case "version":
		fmt.Fprintln(stdout, versionString())
		return 0
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "xbus: unknown command %q\n\n%s", args[0], usage)
	return 2
}

func versionString() string {
	v := "(devel)"
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		v = bi.Main.Version
	}
	return fmt.Sprintf("xbus %s %s %s/%s", v, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

func bench(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("xbus bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	quick := fs.Bool("quick", false, "shrink every count a hundredfold (a smoke test, not a measurement)")
	profile := fs.String("cpuprofile", "", "write CPU profiles: `prefix`.xbus.pprof for this process, prefix.peer.pprof for the shm suite's peer process")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *profile != "" {
		f, err := os.Create(*profile + ".xbus.pprof")
		if err != nil {
			fmt.Fprintf(stderr, "xbus bench: %v\n", err)
			return 1
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintf(stderr, "xbus bench: %v\n", err)
			return 1
		}
		defer pprof.StopCPUProfile()
		os.Setenv(shmbench.ProfileEnv, *profile+".peer.pprof") // the peer process inherits it
		defer os.Unsetenv(shmbench.ProfileEnv)
	}
	which := "inproc"
	switch fs.NArg() {
	case 0:
	case 1:
		which = fs.Arg(0)
	default:
		fmt.Fprintf(stderr, "xbus bench: one suite at most, got %s\n", strings.Join(fs.Args(), " "))
		return 2
	}
	var chosen []suite
	for _, s := range suites {
		if which == "all" || which == s.name {
			chosen = append(chosen, s)
		}
	}
	if len(chosen) == 0 {
		fmt.Fprintf(stderr, "xbus bench: unknown suite %q (inproc, shm, net, supervisor, all)\n", which)
		return 2
	}
	fmt.Fprintf(stdout, "%s, GOMAXPROCS=%d\n", versionString(), runtime.GOMAXPROCS(0))
	code := 0
	for _, s := range chosen {
		fmt.Fprintf(stdout, "\n## %s\n\n", s.title)
		if err := s.run(stdout, *quick); err != nil {
			fmt.Fprintf(stderr, "xbus bench %s: %v\n", s.name, err)
			code = 1
		}
	}
	return code
}
