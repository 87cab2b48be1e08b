//go:build !linux

package shmsys

import (
	"net"
	"sync/atomic"
	"time"
)

const Supported = false

func CreateSegment(size int) (int, []byte, error)                  { return -1, nil, ErrUnsupported }
func CreateWritableSegment(size int) (int, []byte, error)          { return -1, nil, ErrUnsupported }
func MapPeerSegment(fd, size int) ([]byte, error)                  { return nil, ErrUnsupported }
func Unmap(mem []byte)                                             {}
func CloseFd(fd int)                                               {}
func FutexWait(w *atomic.Uint32, val uint32, d time.Duration) bool { return true }
func FutexWake(w *atomic.Uint32)                                   {}
func PeerUID(c *net.UnixConn) (int, error)                         { return -1, ErrUnsupported }
func PeerPID(c *net.UnixConn) (int, error)                         { return 0, ErrUnsupported }
func ProcessGone(pid int) bool                                     { return false }
func SendFd(c *net.UnixConn, msg []byte, fd int) error             { return ErrUnsupported }
func RecvFd(c *net.UnixConn, buf []byte) (int, int, error)         { return -1, 0, ErrUnsupported }
