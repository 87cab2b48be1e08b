package netbus

import (
	"net"

	"github.com/xbus-dev/xbus/internal/unixsock"
)

// listen listens on network and addr. A Unix socket file left at addr by a
// process that died without closing it (one nobody accepts on) is removed
// first; a live listener's socket, or any other file, is left alone. The
// listener removes its socket file when it closes.
func listen(network, addr string) (net.Listener, error) {
	ln, err := net.Listen(network, addr)
	if err == nil || network != "unix" || !unixsock.Retry(addr, err) {
		return ln, err
	}
	return net.Listen(network, addr)
}
