//go:build !unix

package samehost

import (
	"os"

	"github.com/xbus-dev/xbus/bus"
)

const supported = false

func lock(string, bool) (*os.File, bool, error) { return nil, false, bus.ErrUnsupported }
func pidAlive(int) bool                         { return false }
func owner(os.FileInfo) (int, bool)             { return 0, false }

func openNoFollow(path string) (*os.File, error) { return os.Open(path) }

func createNoFollow(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
}
