package netbus

import (
	"errors"
	"io/fs"
	"net"
	"os"
	"syscall"
)

// listen listens on network and addr. A Unix socket file left at addr by a
// process that died without closing it (one nobody accepts on) is removed
// first; a live listener's socket, or any other file, is left alone. The
// listener removes its socket file when it closes.
func listen(network, addr string) (net.Listener, error) {
	ln, err := net.Listen(network, addr)
	if err == nil || network != "unix" || !errors.Is(err, syscall.EADDRINUSE) || !staleSocket(addr) {
		return ln, err
	}
	if rerr := os.Remove(addr); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
		return nil, err
	}
	return net.Listen(network, addr)
}

// staleSocket reports whether path is a Unix socket file nobody accepts on.
// (shmbus's listenUnix does the same for its socket; the bus imports no
// transport, so each keeps its own few lines.)
func staleSocket(path string) bool {
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
