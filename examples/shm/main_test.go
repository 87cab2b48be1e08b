//go:build linux

package main

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestServerClient runs the example as two processes.
func TestServerClient(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "shm")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	sock := filepath.Join(t.TempDir(), "s.sock")
	srv := exec.Command(bin, "-server", "-socket", sock)
	out, _ := srv.StdoutPipe()
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { srv.Process.Signal(os.Interrupt); srv.Wait() }()
	if _, err := bufio.NewReader(out).ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	got, err := exec.Command(bin, "-socket", sock).CombinedOutput()
	if err != nil {
		t.Fatalf("client: %v\n%s", err, got)
	}
	if string(got) != "HELLO\nSHARED\nMEMORY\n" {
		t.Fatalf("client printed %q", got)
	}
}
