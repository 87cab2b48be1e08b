package main

import (
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// The library carries no benchmark harness: the benchmarks live under
// internal/bench and in _test.go files, their peer processes start through
// this command's hidden subcommand or a test binary's TestMain, and the
// command does not link package testing. These tests fail when one of
// those regresses.

const module = "github.com/xbus-dev/xbus"

// listed is what `go list -json` says of one package.
type listed struct {
	ImportPath string
	Dir        string
	GoFiles    []string
	Deps       []string
}

// goList runs `go list -json` over patterns in the module's
// root directory.
func goList(t *testing.T, patterns ...string) []listed {
	t.Helper()
	cmd := exec.Command("go", append([]string{"list", "-json"}, patterns...)...)
	cmd.Dir = "../.."
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var pkgs []listed
	dec := json.NewDecoder(out)
	for {
		var p listed
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		pkgs = append(pkgs, p)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("go list %v: %v", patterns, err)
	}
	return pkgs
}

// libraryPackages are the packages a program imports to use xbus, without
// bus/bustest, which is a kit for tests and imports testing on purpose.
func libraryPackages(t *testing.T) []listed {
	var lib []listed
	for _, p := range goList(t, "./bus/...", "./mailbox/...", "./codec/...", "./supervisor/...", "./shmbus/...", "./netbus/...") {
		if strings.Contains(p.ImportPath, "/internal/") || strings.HasSuffix(p.ImportPath, "/bustest") {
			continue
		}
		lib = append(lib, p)
	}
	if len(lib) < 6 {
		t.Fatalf("go list found %d library packages, want at least 6", len(lib))
	}
	return lib
}

// TestCommandDoesNotLinkTesting checks that xbus does not import package
// testing, directly or through a dependency.
func TestCommandDoesNotLinkTesting(t *testing.T) {
	p := goList(t, "./cmd/xbus")[0]
	if len(p.Deps) == 0 {
		t.Fatal("go list gave no dependencies for cmd/xbus")
	}
	if slices.Contains(p.Deps, "testing") {
		t.Errorf("cmd/xbus depends on package testing")
	}
}

// TestLibraryDependencies checks that no library package depends on
// testing or on the benchmarks, and that shmbus does not depend on netbus
// (a transport knows nothing of the others).
func TestLibraryDependencies(t *testing.T) {
	for _, p := range libraryPackages(t) {
		for _, d := range p.Deps {
			if d == "testing" || strings.HasPrefix(d, module+"/internal/bench") {
				t.Errorf("%s depends on %s", p.ImportPath, d)
			}
			if strings.HasPrefix(p.ImportPath, module+"/shmbus") && d == module+"/netbus" {
				t.Errorf("%s depends on netbus", p.ImportPath)
			}
		}
	}
}

// benchName matches exported names that exist only to benchmark.
var benchName = regexp.MustCompile(`(?i)bench|^Raw(Echo|Ping|Stream)`)

// TestLibraryExportsNoHarness parses each library package's non-test
// files and checks that none exports a benchmark name or has an init
// function (which could turn an importing program into a benchmark peer).
func TestLibraryExportsNoHarness(t *testing.T) {
	fset := token.NewFileSet()
	for _, p := range libraryPackages(t) {
		for _, name := range p.GoFiles {
			f, err := parser.ParseFile(fset, filepath.Join(p.Dir, name), nil, parser.SkipObjectResolution)
			if err != nil {
				t.Fatal(err)
			}
			for _, id := range exported(f) {
				if benchName.MatchString(id) {
					t.Errorf("%s exports %s (%s)", p.ImportPath, id, name)
				}
			}
			for _, d := range f.Decls {
				if fn, ok := d.(*ast.FuncDecl); ok && fn.Recv == nil && fn.Name.Name == "init" {
					t.Errorf("%s has an init function (%s)", p.ImportPath, name)
				}
			}
		}
	}
}

// exported lists the exported top-level names of f, and the exported
// methods as Type.Method.
func exported(f *ast.File) []string {
	var names []string
	for _, d := range f.Decls {
		switch d := d.(type) {
		case *ast.FuncDecl:
			if !d.Name.IsExported() {
				continue
			}
			if d.Recv != nil && len(d.Recv.List) == 1 {
				names = append(names, recvName(d.Recv.List[0].Type)+"."+d.Name.Name)
			} else {
				names = append(names, d.Name.Name)
			}
		case *ast.GenDecl:
			for _, s := range d.Specs {
				switch s := s.(type) {
				case *ast.TypeSpec:
					if s.Name.IsExported() {
						names = append(names, s.Name.Name)
					}
				case *ast.ValueSpec:
					for _, n := range s.Names {
						if n.IsExported() {
							names = append(names, n.Name)
						}
					}
				}
			}
		}
	}
	return names
}

// recvName is the type name of a method's receiver.
func recvName(e ast.Expr) string {
	switch e := e.(type) {
	case *ast.StarExpr:
		return recvName(e.X)
	case *ast.IndexExpr:
		return recvName(e.X)
	case *ast.IndexListExpr:
		return recvName(e.X)
	case *ast.Ident:
		return e.Name
	}
	return ""
}

// TestExportedNames checks exported against a small file, so that the
// harness test above cannot pass by finding nothing.
func TestExportedNames(t *testing.T) {
	src := `package p
func RunBench() {}
func helper() {}
type BenchPair struct{}
func (p *BenchPair) Close() {}
func (q *pair[T]) Ask() {}
var RawEcho, hidden = 1, 2
const Latency = 3
func init() {}
`
	f, err := parser.ParseFile(token.NewFileSet(), "p.go", src, 0)
	if err != nil {
		t.Fatal(err)
	}
	got := exported(f)
	want := []string{"RunBench", "BenchPair", "BenchPair.Close", "pair.Ask", "RawEcho", "Latency"}
	if !slices.Equal(got, want) {
		t.Fatalf("exported = %v, want %v", got, want)
	}
	for _, n := range []string{"RunBench", "BenchPair", "RawEcho", "RawPingPong"} {
		if !benchName.MatchString(n) {
			t.Errorf("benchName does not match %s", n)
		}
	}
	for _, n := range []string{"Tell", "Ask", "Config", "Latency"} {
		if benchName.MatchString(n) {
			t.Errorf("benchName matches %s", n)
		}
	}
}
