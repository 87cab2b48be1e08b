//go:build !unix

package netbus

import (
	"net"
	"syscall"
)

// rawConn returns nil off Unix: writeNow's non-blocking write needs a Unix
// file descriptor, so every frame goes through the writer.
func rawConn(net.Conn) syscall.RawConn { return nil }

// writeDirect is never called without a raw connection.
func (c *conn) writeDirect(uintptr) bool { return true }
