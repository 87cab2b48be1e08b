// Package unixsock holds what the transports that listen on Unix sockets
// (netbus, shmbus) share: replacing the socket file of a process that died
// without closing it.
package unixsock

import (
	"errors"
	"io/fs"
	"net"
	"os"
	"syscall"
)

// Stale reports whether path is a Unix socket file nobody accepts on: left
// by a process that died. A live listener's socket, or any other file, is
// not stale.
func Stale(path string) bool {
	fi, err := os.Lstat(path)
	if err != nil || fi.Mode()&fs.ModeSocket == 0 {
		return false
	}
	c, err := net.Dial("unix", path)
	if err != nil {
		return errors.Is(err, syscall.ECONNREFUSED)
	}
	c.Close()
	return false
}

// Retry reports whether a listen on path that failed with err may be tried
// again, having removed the stale socket file in its way.
func Retry(path string, err error) bool {
	if !errors.Is(err, syscall.EADDRINUSE) || !Stale(path) {
		return false
	}
	rerr := os.Remove(path)
	return rerr == nil || errors.Is(rerr, fs.ErrNotExist)
}
