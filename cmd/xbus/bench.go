package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/xbus-dev/xbus/internal/bench/codecbench"
	"github.com/xbus-dev/xbus/internal/bench/netbench"
	"github.com/xbus-dev/xbus/internal/bench/rpcbench"
	"github.com/xbus-dev/xbus/internal/bench/shmbench"
	"github.com/xbus-dev/xbus/internal/bench/supbench"
	"github.com/xbus-dev/xbus/internal/benchkit"
	"github.com/xbus-dev/xbus/internal/busbench"
)

const benchUsage = `Usage: xbus bench [flags] [suite]

Measures xbus on this machine. Every row gives xbus's figure, the figure
of a plain-Go or raw-socket baseline doing the same work in the same run,
their ratio (xbus ÷ baseline) and the target the project holds itself to.
The suite and the flags may come in any order. While a suite runs, what
it measures is printed on stderr.

Suites: inproc (default), shm, net, supervisor, rpc, codec, all.

Flags:
`

// ratioNote says once which way the ratio goes.
const ratioNote = "ratio = xbus ÷ baseline: for a rate above 1× is xbus faster; for a time, a size or a count below 1× is."

// suite is one table of the bench output.
type suite struct {
	name  string
	title string
	run   func(out benchkit.Out, quick bool) error
}

// suites lists every suite in the order "all" runs them. A package under
// internal/bench joins by exporting a RunBench of this shape.
var suites = []suite{
	{"inproc", "in process (bus, mailbox)", busbench.RunBench},
	{"shm", "shared memory (shmbus), two processes", shmbench.RunBench},
	{"net", "sockets (netbus)", netbench.RunBench},
	{"supervisor", "supervision (restart latency)", supbench.RunBench},
	{"rpc", "rpc (a unary call beside the plain Ask; a server stream beside a channel or tells)", rpcbench.RunBench},
	{"codec", "body codecs (each beside the default, CBOR)", codecbench.RunBench},
}

func suiteNames() string {
	var names []string
	for _, s := range suites {
		names = append(names, s.name)
	}
	return strings.Join(append(names, "all"), ", ")
}

// bench is `xbus bench`.
func bench(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("xbus bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {}
	quick := fs.Bool("quick", false, "shrink every count a hundredfold (a smoke test, not a measurement)")
	asJSON := fs.Bool("json", false, "print the rows as one JSON document instead of tables")
	profile := fs.String("cpuprofile", "", "write CPU profiles: `prefix`.xbus.pprof for this process, prefix.peer.pprof for the shm suite's peer process")
	printUsage := func(w io.Writer) {
		fs.SetOutput(w)
		fmt.Fprint(w, benchUsage)
		fs.PrintDefaults()
	}
	var names []string
	for {
		if err := fs.Parse(args); errors.Is(err, flag.ErrHelp) {
			printUsage(stdout)
			return 0
		} else if err != nil {
			printUsage(stderr)
			return 2
		}
		if fs.NArg() == 0 {
			break
		}
		names, args = append(names, fs.Arg(0)), fs.Args()[1:]
	}
	which := "inproc"
	switch len(names) {
	case 0:
	case 1:
		which = names[0]
	default:
		fmt.Fprintf(stderr, "xbus bench: one suite at most, got %s\n", strings.Join(names, " "))
		return 2
	}
	var chosen []suite
	for _, s := range suites {
		if which == "all" || which == s.name {
			chosen = append(chosen, s)
		}
	}
	if len(chosen) == 0 {
		fmt.Fprintf(stderr, "xbus bench: unknown suite %q (%s)\n", which, suiteNames())
		return 2
	}
	if *profile != "" {
		stop, err := startProfile(*profile)
		if err != nil {
			fmt.Fprintf(stderr, "xbus bench: %v\n", err)
			return 1
		}
		defer stop()
	}

	doc := report{Build: versionString(), GOMAXPROCS: runtime.GOMAXPROCS(0), Ratio: "xbus ÷ baseline"}
	if !*asJSON {
		fmt.Fprintf(stdout, "%s, GOMAXPROCS=%d\n%s\n", doc.Build, doc.GOMAXPROCS, ratioNote)
	}
	code := 0
	for _, s := range chosen {
		p := &progress{suite: s.name, w: stderr, start: time.Now()}
		p.Progress("started")
		err := s.run(p, *quick)
		r := suiteReport{Name: s.name, Title: s.title, Rows: []jsonRow{}}
		for _, x := range p.rows {
			j := jsonRow{Row: x}
			if x.Baseline != 0 {
				ratio := x.Ratio()
				j.Ratio = &ratio
			}
			r.Rows = append(r.Rows, j)
		}
		if err != nil {
			r.Error = err.Error()
			fmt.Fprintf(stderr, "xbus bench %s: %v\n", s.name, err)
			code = 1
		} else {
			p.Progress("done")
		}
		doc.Suites = append(doc.Suites, r)
		if !*asJSON {
			fmt.Fprintf(stdout, "\n## %s\n\n", s.title)
			benchkit.WriteTable(stdout, "xbus", p.rows)
		}
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(doc); err != nil {
			fmt.Fprintf(stderr, "xbus bench: %v\n", err)
			return 1
		}
	}
	return code
}

// startProfile profiles this process into prefix.xbus.pprof and has the
// shm suite's peer process profile itself into prefix.peer.pprof.
func startProfile(prefix string) (stop func(), err error) {
	f, err := os.Create(prefix + ".xbus.pprof")
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	os.Setenv(shmbench.ProfileEnv, prefix+".peer.pprof") // the peer process inherits it
	return func() {
		os.Unsetenv(shmbench.ProfileEnv)
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}

// report is the JSON document of `xbus bench -json`.
type report struct {
	Build      string        `json:"build"`
	GOMAXPROCS int           `json:"gomaxprocs"`
	Ratio      string        `json:"ratio"` // how each row's ratio is taken
	Suites     []suiteReport `json:"suites"`
}

type suiteReport struct {
	Name  string    `json:"name"`
	Title string    `json:"title"`
	Rows  []jsonRow `json:"rows"`
	Error string    `json:"error,omitempty"`
}

// jsonRow is a row with its ratio, which is absent without a baseline.
type jsonRow struct {
	benchkit.Row
	Ratio *float64 `json:"ratio,omitempty"`
}

// progress collects a suite's rows and prints on stderr what the suite is
// doing and each row as it is measured.
type progress struct {
	suite string
	w     io.Writer
	start time.Time
	rows  []benchkit.Row
}

func (p *progress) Row(r benchkit.Row) {
	p.rows = append(p.rows, r)
	p.Progress("%s: %s", r.Name, r.Unit.Format(r.Xbus))
}

func (p *progress) Progress(format string, args ...any) {
	fmt.Fprintf(p.w, "xbus bench %s [%3.0fs] %s\n", p.suite, time.Since(p.start).Seconds(), fmt.Sprintf(format, args...))
}
