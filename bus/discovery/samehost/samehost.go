// Package samehost is a discovery source for the processes of one user on
// one host, with no configuration: each bus writes an entry file into a
// runtime directory, reads the others' and links to them over shared
// memory.
//
// The directory is $XDG_RUNTIME_DIR/xbus, or xbus-<uid> under the system's
// temporary directory when XDG_RUNTIME_DIR is unset (DefaultDir). It is
// created with mode 0700 and refused when it is a symbolic link, belongs to
// another user or others may enter it. Each node keeps there:
//
//	<node id>.node   its entry: id, pid, host, addresses, names (JSON)
//	<node id>.lock   flocked by the node for as long as it lives
//	<random>.sock    the socket its shared-memory transport listens on (Transport)
//
// Every Config.Interval a node reads the directory: it reports each live
// node to the bus (bus.Discovered.Found), and each that left as lost. An entry whose lock nobody holds belongs to a
// dead process, however it died (SIGKILL included): the first node to see
// it removes its files. Entries that are not regular files, belong to
// another user, are oversized or do not decode are logged once each and
// ignored.
//
// Enable is the one option that does it all: a transport listening in the
// directory (Transport) and the source that announces it and finds the
// others (New):
//
//	b, err := bus.New(samehost.Enable(samehost.Config{}))
//
// Two processes started so find each other and link over shared memory
// (Unix sockets where shared memory is not supported). A directory that
// cannot be used fails bus.New with the reason. Transport and New give the
// two parts for a bus that wants only one of them, or other transports
// beside (a node announces the addresses of all its transports that
// implement bus.Listener).
package samehost

import (
	"context"
	cryptorand "crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/xbus-dev/xbus/bus"
	"github.com/xbus-dev/xbus/netbus"
	"github.com/xbus-dev/xbus/shmbus"
)

// Config configures a Source and Transport. The zero value is valid.
type Config struct {
	// Dir is the runtime directory. Zero: DefaultDir().
	Dir string
	// Interval is how often the directory is read. Zero: DefaultInterval.
	Interval time.Duration
	// Sockets makes Transport listen on a Unix socket (netbus) instead of
	// shared memory.
	Sockets bool
}

// DefaultInterval is how often the directory is read when Interval is zero.
const DefaultInterval = time.Second

// maxDirEntries bounds the directory entries one scan reads.
const maxDirEntries = 16384

// DefaultDir is $XDG_RUNTIME_DIR/xbus, or xbus-<uid> in os.TempDir() when
// XDG_RUNTIME_DIR is unset or not absolute.
func DefaultDir() string {
	if x := os.Getenv("XDG_RUNTIME_DIR"); filepath.IsAbs(x) {
		return filepath.Join(x, "xbus")
	}
	return filepath.Join(os.TempDir(), fmt.Sprintf("xbus-%d", os.Getuid()))
}

func (c Config) dir() string {
	if c.Dir != "" {
		return c.Dir
	}
	return DefaultDir()
}

// openDir creates dir with mode 0700 when missing and checks that it is a
// directory of this user's that no one else may enter.
func openDir(dir string) error {
	if !supported {
		return fmt.Errorf("samehost: %w on %s", bus.ErrUnsupported, runtime.GOOS)
	}
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("samehost: %w", err)
	}
	fi, err := os.Lstat(dir)
	if err != nil {
		return fmt.Errorf("samehost: %w", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("samehost: %s is not a directory (mode %v); refusing it", dir, fi.Mode())
	}
	if uid, ok := owner(fi); ok && uid != os.Getuid() {
		return fmt.Errorf("samehost: %s belongs to uid %d, not %d; refusing it", dir, uid, os.Getuid())
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return fmt.Errorf("samehost: %s has mode %v, others may enter it; refusing it (want 0700)", dir, fi.Mode().Perm())
	}
	return nil
}

// Transport returns a transport listening in the runtime directory:
// shared memory (shmbus) where it is supported and Config.Sockets is
// unset, else a Unix socket (netbus). Its address is what Source announces.
func Transport(cfg Config) (bus.Transport, error) {
	dir := cfg.dir()
	if err := openDir(dir); err != nil {
		return nil, err
	}
	var r [8]byte
	cryptorand.Read(r[:])
	path := filepath.Join(dir, hex.EncodeToString(r[:])+".sock")
	if runtime.GOOS == "linux" && !cfg.Sockets {
		return shmbus.New(shmbus.Config{Listen: path}), nil
	}
	return netbus.New(netbus.Config{Listen: []string{"unix://" + path}}), nil
}

// Enable returns the option that links a bus to every other node of this
// user on this host with no further configuration: Transport(cfg) and
// New(cfg) given together. When the runtime directory cannot be used,
// bus.New fails with the reason.
func Enable(cfg Config) bus.Option {
	tr, err := Transport(cfg)
	if err != nil {
		tr = refused{err}
	}
	return bus.Options(bus.WithTransport(tr), bus.WithDiscovery(New(cfg)))
}

// refused is the transport Enable gives when Transport failed: it reports
// the failure when the bus starts it.
type refused struct{ err error }

func (refused) Schemes() []string               { return nil }
func (r refused) Start(bus.Host) error          { return r.err }
func (refused) Close(ctx context.Context) error { return nil }

// Source finds the other nodes of the runtime directory and announces this
// one. It implements bus.Discovery.
type Source struct {
	cfg  Config
	dir  string
	host string

	mu     sync.Mutex // guards started and closed
	d      bus.Discovered
	log    *slog.Logger
	id     bus.NodeID
	lockf  *os.File // this node's lock, held until Close
	cancel context.CancelFunc
	closed bool
	wg     sync.WaitGroup

	// Owned by the loop goroutine (by Start before it runs).
	seen   map[bus.NodeID]bool
	warned map[string]string // file name → the problem last logged for it
	quiet  bool              // logged that this node announces nothing
}

// New returns a source for cfg.
func New(cfg Config) *Source {
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultInterval
	}
	return &Source{cfg: cfg, dir: cfg.dir(), host: bus.HostID(), seen: map[bus.NodeID]bool{}, warned: map[string]string{}}
}

// Start implements bus.Discovery: it takes this node's lock, writes its
// entry, reads the directory once, then goes on doing so every Interval.
func (s *Source) Start(ctx context.Context, d bus.Discovered) error {
	if err := openDir(s.dir); err != nil {
		return err
	}
	self := d.Self()
	f, _, err := lock(s.path(self.ID, ".lock"), true)
	if err != nil {
		return fmt.Errorf("samehost: taking this node's lock: %w", err)
	}
	s.mu.Lock()
	s.d, s.log, s.id, s.lockf = d, d.Logger().With("discovery", "samehost"), self.ID, f
	ctx, s.cancel = context.WithCancel(ctx)
	s.mu.Unlock()
	changed := d.Changed()
	s.write()
	s.scan()
	s.wg.Go(func() {
		t := time.NewTicker(s.cfg.Interval)
		defer t.Stop()
		for {
			select {
			case <-changed:
				changed = d.Changed()
				s.write()
			case <-t.C:
				s.scan()
			case <-ctx.Done():
				return
			}
		}
	})
	return nil
}

// Close implements bus.Discovery: it stops reading the directory and
// removes this node's files.
func (s *Source) Close() error {
	s.mu.Lock()
	if s.closed || s.lockf == nil {
		s.closed = true
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.cancel()
	s.mu.Unlock()
	s.wg.Wait()
	os.Remove(s.path(s.id, ".node"))
	os.Remove(s.tmpPath(s.id))
	os.Remove(s.path(s.id, ".lock"))
	return s.lockf.Close()
}

// Dir is the runtime directory the source reads.
func (s *Source) Dir() string { return s.dir }

func (s *Source) path(id bus.NodeID, ext string) string {
	return filepath.Join(s.dir, id.String()+ext)
}

func (s *Source) tmpPath(id bus.NodeID) string {
	return filepath.Join(s.dir, "."+id.String()+".tmp")
}

// write replaces this node's entry with what it announces now.
func (s *Source) write() {
	self := s.d.Self()
	if len(self.Addrs) == 0 {
		if !s.quiet {
			s.log.Info("no transport listens: this node finds others but announces nothing")
			s.quiet = true
		}
		os.Remove(s.path(s.id, ".node"))
		return
	}
	s.quiet = false
	data := entry{ID: s.id.String(), PID: os.Getpid(), Host: s.host, Addrs: self.Addrs, Names: self.Names}.encode()
	tmp := s.tmpPath(s.id)
	f, err := createNoFollow(tmp)
	if err == nil {
		_, err = f.Write(data)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err == nil {
		err = os.Rename(tmp, s.path(s.id, ".node"))
	}
	if err != nil {
		s.log.Warn("cannot write this node's entry", "dir", s.dir, "err", err)
	}
}

// scan reads the directory: it reports each live node found, each node
// gone since the last scan lost, and removes the files of dead nodes.
func (s *Source) scan() {
	names, err := s.list()
	if err != nil {
		s.warn(".", err)
	}
	own := s.id.String() + ".node"
	alive := map[bus.NodeID]bool{}
	present := map[string]bool{}
	for _, name := range names {
		if !strings.HasSuffix(name, ".node") {
			continue
		}
		present[name] = true
		if name == own {
			continue
		}
		e, id, err := s.read(name)
		if err != nil {
			s.warn(name, err)
			continue
		}
		if !s.live(id, e) {
			continue
		}
		if e.Host != s.host {
			s.warn(name, fmt.Errorf("samehost: entry of node %s says host %q, not this host %q", id.Short(), e.Host, s.host))
			continue
		}
		delete(s.warned, name)
		alive[id] = true
		// No TTL: every scan reports a node's end itself (its entry gone or
		// its lock free); a TTL would drop live links whenever this
		// process stalls longer than it.
		s.d.Found(bus.NodeInfo{ID: id, Host: e.Host, Addrs: e.Addrs, Names: e.Names})
	}
	for id := range s.seen {
		if !alive[id] {
			s.d.Lost(bus.NodeInfo{ID: id})
		}
	}
	s.seen = alive
	for name := range s.warned {
		if !present[name] && name != "." {
			delete(s.warned, name)
		}
	}
	if !present[own] && !s.quiet {
		s.write() // removed by someone: write it again
	}
}

// list returns the names in the directory, at most maxDirEntries.
func (s *Source) list() ([]string, error) {
	d, err := os.Open(s.dir)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	names, err := d.Readdirnames(maxDirEntries)
	if errors.Is(err, io.EOF) {
		err = nil
	}
	if len(names) == maxDirEntries {
		err = fmt.Errorf("samehost: more than %d files in %s; reading only the first", maxDirEntries, s.dir)
	}
	return names, err
}

// read reads and checks one entry file.
func (s *Source) read(name string) (entry, bus.NodeID, error) {
	path := filepath.Join(s.dir, name)
	fi, err := os.Lstat(path)
	if err != nil {
		return entry{}, bus.NodeID{}, err
	}
	switch uid, ok := owner(fi); {
	case fi.Mode()&fs.ModeSymlink != 0:
		return entry{}, bus.NodeID{}, fmt.Errorf("samehost: %s is a symbolic link; ignored", path)
	case !fi.Mode().IsRegular():
		return entry{}, bus.NodeID{}, fmt.Errorf("samehost: %s is not a regular file (mode %v); ignored", path, fi.Mode())
	case ok && uid != os.Getuid():
		return entry{}, bus.NodeID{}, fmt.Errorf("samehost: %s belongs to uid %d, not %d; ignored", path, uid, os.Getuid())
	case fi.Size() > maxEntry:
		return entry{}, bus.NodeID{}, fmt.Errorf("samehost: %s has %d bytes, more than %d; ignored", path, fi.Size(), maxEntry)
	}
	f, err := openNoFollow(path)
	if err != nil {
		return entry{}, bus.NodeID{}, err
	}
	data, err := io.ReadAll(io.LimitReader(f, maxEntry+1))
	f.Close()
	if err != nil {
		return entry{}, bus.NodeID{}, err
	}
	e, id, err := decodeEntry(data)
	if err != nil {
		return e, id, fmt.Errorf("%s: %w", path, err)
	}
	if name != id.String()+".node" {
		return e, id, fmt.Errorf("samehost: %s holds the entry of node %s; ignored", path, id)
	}
	return e, id, nil
}

// live reports whether the node of entry e lives: someone holds its lock.
// The files of a node whose lock is free are removed, under that lock.
func (s *Source) live(id bus.NodeID, e entry) bool {
	f, held, err := lock(s.path(id, ".lock"), false)
	switch {
	case held:
		return true
	case errors.Is(err, fs.ErrNotExist):
		// No lock: a node writes its entry only once it holds its lock,
		// so the entry is a dead node's whose lock was removed already,
		// or was never a node's.
		if _, err := os.Lstat(s.path(id, ".node")); errors.Is(err, fs.ErrNotExist) {
			return false // it left between the two reads
		}
		if pidAlive(e.PID) {
			s.warn(id.String()+".node", fmt.Errorf("samehost: node %s has no lock file but its pid %d lives; ignored", id.Short(), e.PID))
			return false
		}
		s.clean(id, e)
		return false
	case err != nil:
		s.warn(id.String()+".node", fmt.Errorf("samehost: lock of node %s: %w", id.Short(), err))
		return false
	}
	defer f.Close()
	s.clean(id, e)
	return false
}

// clean removes the files of a dead node: its entry, the sockets in the
// directory it listened on, and its lock, last.
func (s *Source) clean(id bus.NodeID, e entry) {
	s.log.Info("removing the entry of a dead node", "peer", id.Short(), "pid", e.PID)
	os.Remove(s.path(id, ".node"))
	os.Remove(s.tmpPath(id))
	for _, a := range e.Addrs {
		scheme, p, ok := strings.Cut(a, "://")
		if !ok || (scheme != "shm" && scheme != "unix") || filepath.Dir(p) != filepath.Clean(s.dir) {
			continue
		}
		if fi, err := os.Lstat(p); err == nil && fi.Mode()&fs.ModeSocket != 0 {
			os.Remove(p)
		}
	}
	os.Remove(s.path(id, ".lock"))
}

// warn logs a problem with a file once, until it changes.
func (s *Source) warn(name string, err error) {
	if s.warned[name] == err.Error() {
		return
	}
	s.warned[name] = err.Error()
	s.log.Warn("ignoring a file of the runtime directory", "file", name, "err", err)
}

var _ bus.Discovery = (*Source)(nil)
