//go:build !linux

package shmbus

import (
	"io"
	"net"
	"sync/atomic"
	"time"
)

const supported = false

func createSegment(size int) (int, []byte, error)             { return -1, nil, ErrUnsupported }
func mapPeerSegment(fd, size int) ([]byte, error)             { return nil, ErrUnsupported }
func unmap(mem []byte)                                        {}
func closeFd(fd int)                                          {}
func futexWait(w *atomic.Uint32, val uint32, d time.Duration) {}
func futexWake(w *atomic.Uint32)                              {}
func peerUID(c *net.UnixConn) (int, error)                    { return -1, ErrUnsupported }
func sendFd(c *net.UnixConn, msg []byte, fd int) error        { return ErrUnsupported }
func recvFd(c *net.UnixConn, buf []byte) (int, error)         { return -1, ErrUnsupported }

// RunBench needs shared memory between processes; see bench_linux.go.
func RunBench(w io.Writer, quick bool) error { return ErrUnsupported }
