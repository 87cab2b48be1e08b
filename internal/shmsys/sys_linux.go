//go:build linux

package shmsys

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"strconv"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

const Supported = true

// CreateSegment makes an anonymous shared-memory file of size bytes
// (memfd_create: it has no name in /dev/shm and vanishes with its last
// reference), maps it read-write, then seals it: from then on nobody can
// resize it or write it, except through the mapping returned. The fd
// returned is for the peer: read-only where /proc allows reopening it so.
func CreateSegment(size int) (fd int, mem []byte, err error) {
	return createSegment(size, true)
}

// CreateWritableSegment is CreateSegment without the write seal: whoever
// receives its fd may map it writable. Benchmarks use it for memory both
// their processes write; links never do.
func CreateWritableSegment(size int) (fd int, mem []byte, err error) {
	return createSegment(size, false)
}

func createSegment(size int, sealWrites bool) (fd int, mem []byte, err error) {
	fd, err = unix.MemfdCreate("xbus-shm", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if err != nil {
		return -1, nil, fmt.Errorf("shmbus: memfd_create: %w", err)
	}
	if err = unix.Ftruncate(fd, int64(size)); err != nil {
		unix.Close(fd)
		return -1, nil, fmt.Errorf("shmbus: ftruncate: %w", err)
	}
	mem, err = unix.Mmap(fd, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		unix.Close(fd)
		return -1, nil, fmt.Errorf("shmbus: mmap: %w", err)
	}
	// F_SEAL_FUTURE_WRITE (Linux 5.1) keeps our mapping writable and refuses
	// every later writable mapping, write(2) and mprotect to writable, even
	// through an fd reopened read-write; F_SEAL_SEAL keeps the seals on.
	seals := unix.F_SEAL_SHRINK | unix.F_SEAL_GROW | unix.F_SEAL_SEAL
	if !sealWrites {
		_, _ = unix.FcntlInt(uintptr(fd), unix.F_ADD_SEALS, seals)
		return fd, mem, nil
	}
	if _, err = unix.FcntlInt(uintptr(fd), unix.F_ADD_SEALS, seals|unix.F_SEAL_FUTURE_WRITE); err != nil {
		unix.Munmap(mem)
		unix.Close(fd)
		return -1, nil, fmt.Errorf("shmbus: sealing the segment against writes (Linux 5.1 or later): %w", err)
	}
	// A read-only fd besides: the peer cannot even add seals to it.
	if ro, err := unix.Open("/proc/self/fd/"+strconv.Itoa(fd), unix.O_RDONLY|unix.O_CLOEXEC, 0); err == nil {
		unix.Close(fd)
		fd = ro
	}
	return fd, mem, nil
}

// MapPeerSegment maps a segment received from the peer read-only, after
// checking that its file is exactly size bytes.
func MapPeerSegment(fd, size int) ([]byte, error) {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, fmt.Errorf("shmbus: fstat of the peer's segment: %w", err)
	}
	if st.Size != int64(size) {
		return nil, fmt.Errorf("%w: peer segment of %d bytes, want %d", ErrHandshake, st.Size, size)
	}
	seals, err := unix.FcntlInt(uintptr(fd), unix.F_GET_SEALS, 0)
	if err != nil || seals&unix.F_SEAL_SHRINK == 0 {
		return nil, fmt.Errorf("%w: peer segment is not sealed against shrinking", ErrHandshake)
	}
	mem, err := unix.Mmap(fd, 0, size, unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("shmbus: mmap of the peer's segment: %w", err)
	}
	return mem, nil
}

func Unmap(mem []byte) {
	if mem != nil {
		_ = unix.Munmap(mem)
	}
}

func CloseFd(fd int) {
	if fd >= 0 {
		_ = unix.Close(fd)
	}
}

// FutexWait sleeps while *w == val, at most d, and reports whether it slept
// all of d. Spurious returns are fine.
func FutexWait(w *atomic.Uint32, val uint32, d time.Duration) (timedOut bool) {
	ts := unix.NsecToTimespec(int64(d))
	_, _, errno := unix.Syscall6(unix.SYS_FUTEX, uintptr(unsafe.Pointer(w)), futexOpWait,
		uintptr(val), uintptr(unsafe.Pointer(&ts)), 0, 0)
	return errno == unix.ETIMEDOUT
}

// FutexWake wakes the waiters on w (in another process: not FUTEX_PRIVATE).
func FutexWake(w *atomic.Uint32) {
	_, _, _ = unix.Syscall6(unix.SYS_FUTEX, uintptr(unsafe.Pointer(w)), futexOpWake,
		1<<30, 0, 0, 0)
}

// PeerUID returns the uid of the process at the other end of c.
func PeerUID(c *net.UnixConn) (int, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return -1, err
	}
	var cred *unix.Ucred
	var serr error
	if err := raw.Control(func(fd uintptr) {
		cred, serr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return -1, err
	}
	if serr != nil {
		return -1, fmt.Errorf("shmbus: SO_PEERCRED: %w", serr)
	}
	return int(cred.Uid), nil
}

// PeerPID returns the process id at the other end of c.
func PeerPID(c *net.UnixConn) (int, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return 0, err
	}
	var cred *unix.Ucred
	var serr error
	if err := raw.Control(func(fd uintptr) {
		cred, serr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return 0, err
	}
	if serr != nil {
		return 0, fmt.Errorf("shmbus: SO_PEERCRED: %w", serr)
	}
	return int(cred.Pid), nil
}

// ProcessGone reports that process pid has exited (it is gone, or a
// zombie not yet reaped): it will never write its memory again.
func ProcessGone(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return errors.Is(err, fs.ErrNotExist) || errors.Is(err, unix.ESRCH)
	}
	// The state follows the command name, which is in parentheses and may
	// itself hold any byte: take the last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 >= len(b) {
		return false
	}
	st := b[i+2]
	return st == 'Z' || st == 'X' || st == 'x'
}

// SendFd writes msg with fd attached (SCM_RIGHTS).
func SendFd(c *net.UnixConn, msg []byte, fd int) error {
	_, _, err := c.WriteMsgUnix(msg, unix.UnixRights(fd), nil)
	return err
}

// RecvFd reads one message of at most len(buf) bytes carrying exactly one
// fd, and returns the fd and the bytes read.
func RecvFd(c *net.UnixConn, buf []byte) (int, int, error) {
	oob := make([]byte, unix.CmsgSpace(4*4))
	n, oobn, _, _, err := c.ReadMsgUnix(buf, oob)
	if err != nil {
		return -1, 0, err
	}
	msgs, perr := unix.ParseSocketControlMessage(oob[:oobn])
	var fds []int
	if perr == nil {
		for _, m := range msgs {
			if f, err := unix.ParseUnixRights(&m); err == nil {
				fds = append(fds, f...)
			}
		}
	}
	if len(fds) != 1 {
		for _, f := range fds {
			unix.Close(f)
		}
		return -1, 0, fmt.Errorf("%w: hello of %d bytes with %d fds, want 1 fd", ErrHandshake, n, len(fds))
	}
	return fds[0], n, nil
}

const (
	futexOpWait = 0 // FUTEX_WAIT, shared (not FUTEX_PRIVATE_FLAG): the word is in another process too
	futexOpWake = 1 // FUTEX_WAKE
)
