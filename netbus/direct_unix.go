//go:build unix

package netbus

import (
	"net"
	"syscall"
)

// rawConn returns nc's file descriptor for writeNow, or nil when it has none
// (TLS, a pipe).
func rawConn(nc net.Conn) syscall.RawConn {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return nil
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	return raw
}

// writeDirect is c.raw.Write's callback for writeNow: it writes c.direct.frame
// until the socket is full, and never waits for it (the writer does that).
func (c *conn) writeDirect(fd uintptr) bool {
	d := &c.direct
	for d.n < len(d.frame) {
		m, err := syscall.Write(int(fd), d.frame[d.n:])
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			if err != syscall.EAGAIN {
				d.err = err
			}
			break
		}
		d.n += m
	}
	return true
}
