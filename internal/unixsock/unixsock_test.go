package unixsock

import (
	"net"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// TestStale: only a socket file nobody accepts on is stale; Retry removes
// that one and never a live socket or another file.
func TestStale(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, []byte("keep"), 0o600); err != nil {
		t.Fatal(err)
	}
	live := filepath.Join(dir, "live.sock")
	ln, err := net.Listen("unix", live)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	dead := filepath.Join(dir, "dead.sock")
	dl, err := net.ListenUnix("unix", &net.UnixAddr{Name: dead, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	dl.SetUnlinkOnClose(false)
	dl.Close() // the file stays, nobody accepts: what a killed process leaves

	for _, c := range []struct {
		path  string
		stale bool
	}{{file, false}, {live, false}, {dead, true}, {filepath.Join(dir, "none"), false}} {
		if got := Stale(c.path); got != c.stale {
			t.Errorf("Stale(%s) = %v, want %v", filepath.Base(c.path), got, c.stale)
		}
		if got := Retry(c.path, syscall.EADDRINUSE); got != c.stale {
			t.Errorf("Retry(%s) = %v, want %v", filepath.Base(c.path), got, c.stale)
		}
	}
	if _, err := os.Stat(dead); !os.IsNotExist(err) {
		t.Errorf("the stale socket is still there: %v", err)
	}
	for _, p := range []string{file, live} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("%s was removed: %v", filepath.Base(p), err)
		}
	}
	if Retry(dead, syscall.EACCES) {
		t.Error("Retry on an error other than EADDRINUSE")
	}
}
