//go:build linux

package main

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestFoundWithoutConfiguration runs the example as two processes that
// share nothing but the runtime directory of the environment
// (XDG_RUNTIME_DIR, pointed at a directory of the test's own).
func TestFoundWithoutConfiguration(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "samehost")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	env := append(os.Environ(), "XDG_RUNTIME_DIR="+t.TempDir())
	srv := exec.Command(bin, "-serve")
	srv.Env = env
	srv.Stderr = os.Stderr
	out, _ := srv.StdoutPipe()
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { srv.Process.Signal(os.Interrupt); srv.Wait() }()
	if line, err := bufio.NewReader(out).ReadString('\n'); err != nil || !strings.HasPrefix(line, "serving") {
		t.Fatalf("server said %q: %v", line, err)
	}
	cli := exec.Command(bin)
	cli.Env = env
	got, err := cli.Output()
	if err != nil {
		t.Fatalf("client: %v\n%s", err, got)
	}
	if string(got) != "FOUND\nWITH\nNO\nCONFIGURATION\nlink: shm\n" {
		t.Fatalf("client printed %q", got)
	}
}
