package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestDaemonDrainsOnSIGTERM builds the real binary, starts it, sends SIGTERM
// as soon as its work is queued, and checks that it handled every job but
// the ones that crashed the worker, in order, and exited 0.
func TestDaemonDrainsOnSIGTERM(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	bin := filepath.Join(t.TempDir(), "daemon")
	build := exec.Command(goBin, "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}

	const jobs, every = 500, 97
	cmd := exec.Command(bin, "-jobs", fmt.Sprint(jobs), "-crash-every", fmt.Sprint(every), "-work", "2ms")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	lines := make(chan string, 16)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		exited <- cmd.Wait()
	}()
	var out []string
	select {
	case l := <-lines:
		out = append(out, l)
		if !strings.HasPrefix(l, "ready:") {
			t.Fatalf("first line %q, want ready", l)
		}
	case <-time.After(time.Minute):
		_ = cmd.Process.Kill()
		t.Fatalf("daemon never got ready; stderr:\n%s", stderr.String())
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	for l := range lines {
		out = append(out, l)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("daemon exited with %v; stdout %q; stderr:\n%s", err, out, stderr.String())
		}
	case <-time.After(2 * time.Minute):
		_ = cmd.Process.Kill()
		t.Fatalf("daemon did not exit after SIGTERM; stderr:\n%s", stderr.String())
	}
	crashes := jobs / every
	want := fmt.Sprintf("drained: handled=%d crashed=%d out-of-order=0 of %d", jobs-crashes, crashes, jobs)
	if len(out) != 2 || out[1] != want {
		t.Fatalf("stdout %q, want the ready line then %q; stderr:\n%s", out, want, stderr.String())
	}
	logs := stderr.String()
	for _, s := range []string{`msg="shutting down"`, "job 97 is cursed", "job 485 is cursed"} {
		if !strings.Contains(logs, s) {
			t.Errorf("stderr lacks %s:\n%s", s, logs)
		}
	}
}
