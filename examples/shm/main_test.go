//go:build linux

package main

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

func build(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "shm")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	return bin
}

// TestServerClient runs the example as two processes.
func TestServerClient(t *testing.T) {
	bin := build(t)
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
	got, err := exec.Command(bin, "-socket", sock).Output() // the log goes to stderr
	if err != nil {
		t.Fatalf("client: %v\n%s", err, got)
	}
	if string(got) != "HELLO\nSHARED\nMEMORY\n" {
		t.Fatalf("client printed %q", got)
	}
}

// TestServerExitsOnSignal: the server closes its bus and exits 0 on SIGINT
// and on SIGTERM alike (a service manager stops it with SIGTERM).
func TestServerExitsOnSignal(t *testing.T) {
	bin := build(t)
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) {
			sock := filepath.Join(t.TempDir(), "s.sock")
			srv := exec.Command(bin, "-server", "-socket", sock)
			out, _ := srv.StdoutPipe()
			srv.Stderr = os.Stderr
			if err := srv.Start(); err != nil {
				t.Fatal(err)
			}
			if _, err := bufio.NewReader(out).ReadString('\n'); err != nil {
				t.Fatal(err)
			}
			if err := srv.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			exited := make(chan error, 1)
			go func() { exited <- srv.Wait() }()
			select {
			case err := <-exited:
				if err != nil {
					t.Fatalf("server exited with %v after signal %q, want status 0", err, sig)
				}
			case <-time.After(time.Minute):
				srv.Process.Kill()
				t.Fatalf("server still running a minute after %v", sig)
			}
		})
	}
}
