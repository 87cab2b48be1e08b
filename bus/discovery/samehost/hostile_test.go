//go:build linux

package samehost_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/xbus-dev/xbus/bus"
	"github.com/xbus-dev/xbus/bus/discovery/samehost"
)

func entryJSON(id string, pid int, addrs ...string) []byte {
	data, _ := json.Marshal(map[string]any{"v": 1, "id": id, "pid": pid, "host": bus.HostID(), "addrs": addrs})
	return data
}

// deadPID returns the pid of a process that has exited.
func deadPID(t *testing.T) int {
	t.Helper()
	p, err := os.StartProcess("/bin/true", []string{"true"}, &os.ProcAttr{})
	if err != nil {
		t.Fatal(err)
	}
	p.Wait()
	return p.Pid
}

// Hostile and stale files in the directory: each is logged once and
// ignored, never linked to, never a crash or a hang; dead nodes' files are
// removed, the rest left alone.
func TestHostileDirectoryEntries(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "xbus")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	at := func(name string) string { return filepath.Join(dir, name) }
	write := func(name string, data []byte) {
		if err := os.WriteFile(at(name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	trap := "unix://" + at("trap.sock")

	write("garbage.node", []byte("\x00\xff{not json"))
	write("huge.node", []byte(`{"v":1,"pad":"`+strings.Repeat("x", 2<<20)+`"}`))
	os.Symlink("/etc/passwd", at("link.node"))
	syscall.Mkfifo(at("fifo.node"), 0o600)
	os.Mkdir(at("dir.node"), 0o700)
	// A valid entry under another node's file name.
	liar, other := bus.NewNodeID(), bus.NewNodeID()
	write(other.String()+".node", entryJSON(liar.String(), os.Getpid(), trap))
	// Another uid's file (root can make one).
	foreign := bus.NewNodeID()
	write(foreign.String()+".node", entryJSON(foreign.String(), os.Getpid(), trap))
	foreignOwned := os.Chown(at(foreign.String()+".node"), 65534, 65534) == nil
	// A symlinked lock file: not followed.
	symLock := bus.NewNodeID()
	write(symLock.String()+".node", entryJSON(symLock.String(), os.Getpid(), trap))
	os.Symlink("/etc/passwd", at(symLock.String()+".lock"))
	// Dead nodes: one whose lock is free, with a socket file in the
	// directory; one with no lock and a dead pid.
	dead := bus.NewNodeID()
	sock := at("dead.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close()
	write(dead.String()+".node", entryJSON(dead.String(), os.Getpid(), "shm://"+sock))
	write(dead.String()+".lock", nil)
	gone := bus.NewNodeID()
	write(gone.String()+".node", entryJSON(gone.String(), deadPID(t), trap))

	log := &logs{}
	cfg := samehost.Config{Dir: dir, Interval: interval}
	tr, err := samehost.Transport(cfg)
	if err != nil {
		t.Fatal(err)
	}
	b, err := bus.New(bus.WithLogger(slog.New(log)), bus.WithTransport(tr), bus.WithDiscovery(samehost.New(cfg)))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close(context.Background())

	for _, want := range [][]string{
		{"garbage.node", "bad entry"},
		{"huge.node", "more than"},
		{"link.node", "symbolic link"},
		{"fifo.node", "not a regular file"},
		{"dir.node", "not a regular file"},
		{other.String() + ".node", "holds the entry of node"},
		{symLock.String() + ".node", "lock of node"},
		{"removing the entry of a dead node", dead.Short()},
		{"removing the entry of a dead node", gone.Short()},
	} {
		waitUntil(t, "a log line with "+strings.Join(want, ", "), func() bool { return log.has(want...) })
	}
	if foreignOwned {
		waitUntil(t, "the foreign file logged", func() bool { return log.has(foreign.String()+".node", "belongs to uid 65534") })
	}
	for _, name := range []string{dead.String() + ".node", dead.String() + ".lock", "dead.sock", gone.String() + ".node"} {
		if exists(at(name)) {
			t.Errorf("dead node's %s not removed", name)
		}
	}
	for _, name := range []string{"garbage.node", "huge.node", "link.node", "fifo.node", other.String() + ".node", foreign.String() + ".node"} {
		if !exists(at(name)) {
			t.Errorf("%s removed; only dead nodes' files may be", name)
		}
	}
	if exists("/etc/passwd") && !exists(at("link.node")) {
		t.Error("symlink target touched")
	}
	for _, l := range b.Links() {
		t.Errorf("linked from a hostile entry: %+v", l)
	}
	// Logged once each, however many scans ran.
	log.mu.Lock()
	n := 0
	for _, s := range log.got {
		if strings.Contains(s, "garbage.node") {
			n++
		}
	}
	log.mu.Unlock()
	if n != 1 {
		t.Errorf("garbage.node logged %d times, want once", n)
	}
}

// A directory others may enter, a symbolic link or a file instead of a
// directory is refused with a clear error.
func TestUnsafeDirectoryRefused(t *testing.T) {
	base := t.TempDir()
	open := filepath.Join(base, "open")
	os.Mkdir(open, 0o755)
	os.Chmod(open, 0o755)
	link := filepath.Join(base, "link")
	os.Symlink(open, link)
	file := filepath.Join(base, "file")
	os.WriteFile(file, nil, 0o600)
	cases := map[string]string{open: "others may enter it", link: "not a directory", file: "not a directory"}
	if os.Getuid() == 0 {
		foreign := filepath.Join(base, "foreign")
		os.Mkdir(foreign, 0o700)
		os.Chown(foreign, 65534, 65534)
		cases[foreign] = "belongs to uid 65534"
	}
	for dir, want := range cases {
		if _, err := samehost.Transport(samehost.Config{Dir: dir}); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Transport in %s: %v, want %q", dir, err, want)
		}
		_, err := bus.New(bus.WithLogger(slog.New(slog.DiscardHandler)), bus.WithDiscovery(samehost.New(samehost.Config{Dir: dir})))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("a bus with a source in %s: %v, want %q", dir, err, want)
		}
		_, err = bus.New(bus.WithLogger(slog.New(slog.DiscardHandler)), samehost.Enable(samehost.Config{Dir: dir}))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("a bus enabled in %s: %v, want %q", dir, err, want)
		}
	}
}
