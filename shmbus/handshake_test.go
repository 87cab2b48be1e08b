//go:build linux

package shmbus

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/xbus-dev/xbus/bus"
	"github.com/xbus-dev/xbus/codec"
	"github.com/xbus-dev/xbus/internal/shmsys"
	"golang.org/x/sys/unix"
)

// logRecorder is a slog.Handler that keeps every record.
type logRecorder struct {
	mu   sync.Mutex
	recs []slog.Record
}

func (r *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (r *logRecorder) WithAttrs([]slog.Attr) slog.Handler       { return r }
func (r *logRecorder) WithGroup(string) slog.Handler            { return r }
func (r *logRecorder) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	r.recs = append(r.recs, rec.Clone())
	r.mu.Unlock()
	return nil
}

// warned returns the error of the first Warn record whose "err" wraps target.
func (r *logRecorder) warned(target error) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, rec := range r.recs {
		if rec.Level != slog.LevelWarn {
			continue
		}
		var found error
		rec.Attrs(func(a slog.Attr) bool {
			if e, ok := a.Value.Any().(error); ok && a.Key == "err" && errors.Is(e, target) {
				found = e
				return false
			}
			return true
		})
		if found != nil {
			return found
		}
	}
	return nil
}

// waitWarned waits for a Warn record whose error wraps target.
func (r *logRecorder) waitWarned(t *testing.T, target error) error {
	t.Helper()
	for range 1000 {
		if err := r.warned(target); err != nil {
			return err
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("no Warn record with an error wrapping %v", target)
	return nil
}

// namedCodec is JSON under another name: a codec no other node has unless
// given it.
type namedCodec struct{ name string }

func (c namedCodec) Name() string                           { return c.name }
func (namedCodec) Append(dst []byte, v any) ([]byte, error) { return bus.JSON.Append(dst, v) }
func (namedCodec) Decode(data []byte, v any) error          { return bus.JSON.Decode(data, v) }

// TestRefusals checks that a peer is refused with an error wrapping
// bus.ErrRefused on the dialing side, and that the listener logs the
// refusal at Warn, when neither end has the other's codec, when the ring
// sizes differ, and when the protocol versions do.
func TestRefusals(t *testing.T) {
	cases := map[string]struct{ listen, dial Config }{
		"codec":     {Config{Codec: namedCodec{"gob"}}, Config{Codec: namedCodec{"msgpack"}}},
		"ring size": {Config{RingSize: MinRingSize}, Config{RingSize: 2 * MinRingSize}},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			c.listen.Listen = filepath.Join(t.TempDir(), "s")
			lh, dh := newTestHost(), newTestHost()
			lt, dt := New(c.listen), New(c.dial)
			if err := lt.Start(lh); err != nil {
				t.Fatal(err)
			}
			defer lt.Close(context.Background())
			if err := dt.Start(dh); err != nil {
				t.Fatal(err)
			}
			defer dt.Close(context.Background())
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_, err := dt.Dial(ctx, c.listen.Listen)
			if !errors.Is(err, bus.ErrRefused) || !errors.Is(err, ErrPeerRefused) {
				t.Fatalf("dial: %v, want an error wrapping bus.ErrRefused", err)
			}
			t.Logf("dialer: %v", err)
			t.Logf("listener: %v", lh.logs.waitWarned(t, bus.ErrRefused))
			select {
			case l := <-lh.up:
				t.Fatalf("the listener brought up a link to %s", l.Peer())
			default:
			}
		})
	}
	t.Run("version", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "s")
		h := newTestHost()
		tr := New(Config{Listen: path})
		if err := tr.Start(h); err != nil {
			t.Fatal(err)
		}
		defer tr.Close(context.Background())
		c, err := net.Dial("unix", path)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		fd, mem, err := shmsys.CreateSegment(segmentSize(DefaultRingSize))
		if err != nil {
			t.Fatal(err)
		}
		defer shmsys.Unmap(mem)
		defer shmsys.CloseFd(fd)
		hl := hello{version: segVersion + 1, ringSize: DefaultRingSize, node: bus.NewNodeID(), codec: codec.Binary().Name()}
		msg := hl.marshal()
		if err := shmsys.SendFd(c.(*net.UnixConn), msg[:], fd); err != nil {
			t.Fatal(err)
		}
		t.Logf("listener: %v", h.logs.waitWarned(t, bus.ErrRefused))
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.ReadAll(c); err != nil {
			t.Fatalf("the listener did not hang up: %v", err)
		}
	})
}

// TestUnsupportedMatchesBus checks that ErrUnsupported, what shmbus
// returns off Linux, matches bus.ErrUnsupported.
func TestUnsupportedMatchesBus(t *testing.T) {
	if !errors.Is(ErrUnsupported, bus.ErrUnsupported) {
		t.Fatalf("%v does not wrap bus.ErrUnsupported", ErrUnsupported)
	}
}

// TestPeerCannotWriteSegment checks that the fd a peer receives gives it no
// way to write our segment: not by a writable shared mapping, not by
// write(2), not by reopening it read-write through /proc, not by mprotect
// of its read-only mapping.
func TestPeerCannotWriteSegment(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s")
	h := newTestHost()
	tr := New(Config{Listen: path, RingSize: MinRingSize})
	if err := tr.Start(h); err != nil {
		t.Fatal(err)
	}
	defer tr.Close(context.Background())
	_, _, pfd := rawHandshake(t, path, MinRingSize)
	defer shmsys.CloseFd(pfd)
	<-h.up
	size := segmentSize(MinRingSize)
	refused := func(err error) bool {
		return errors.Is(err, unix.EACCES) || errors.Is(err, unix.EPERM) || errors.Is(err, unix.EBADF)
	}

	check := func(how string, fd int) {
		t.Helper()
		if mem, err := unix.Mmap(fd, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED); !refused(err) {
			if err == nil {
				unix.Munmap(mem)
			}
			t.Errorf("%s: writable shared mapping: %v, want EACCES or EPERM", how, err)
		}
		if _, err := unix.Pwrite(fd, []byte("x"), ringOffset); !refused(err) {
			t.Errorf("%s: pwrite: %v, want EBADF or EPERM", how, err)
		}
		if err := unix.Ftruncate(fd, 0); !refused(err) && !errors.Is(err, unix.EINVAL) {
			t.Errorf("%s: ftruncate: %v, want an error", how, err)
		}
	}
	check("received fd", pfd)
	if fd, err := unix.Open("/proc/self/fd/"+strconv.Itoa(pfd), unix.O_RDWR|unix.O_CLOEXEC, 0); err == nil {
		check("reopened read-write", fd)
		unix.Close(fd)
	} else if !refused(err) {
		t.Errorf("reopen read-write: %v", err)
	}
	mem, err := unix.Mmap(pfd, 0, size, unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		t.Fatalf("read-only mapping, which the peer needs: %v", err)
	}
	defer unix.Munmap(mem)
	if err := unix.Mprotect(mem, unix.PROT_READ|unix.PROT_WRITE); !refused(err) {
		t.Errorf("mprotect of the read-only mapping to writable: %v, want EACCES or EPERM", err)
	}
	if string(mem[:len(segMagic)]) != segMagic {
		t.Errorf("segment starts with %q, want the magic", mem[:len(segMagic)])
	}
}

// TestPeerTimeoutConfig checks PeerTimeout's bounds: under MinPeerTimeout
// is refused by Start; negative (none) and the minimum are accepted.
func TestPeerTimeoutConfig(t *testing.T) {
	for _, c := range []struct {
		d  time.Duration
		ok bool
	}{{time.Millisecond, false}, {MinPeerTimeout - 1, false}, {MinPeerTimeout, true}, {-1, true}, {0, true}} {
		tr := New(Config{PeerTimeout: c.d})
		err := tr.Start(newTestHost())
		if (err == nil) != c.ok {
			t.Errorf("PeerTimeout %v: Start returned %v", c.d, err)
		}
		tr.Close(context.Background())
	}
}
