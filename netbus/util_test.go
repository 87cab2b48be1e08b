package netbus

import (
	"bytes"
	"io"
)

func ioMulti(rest []byte, r io.Reader) io.Reader {
	return io.MultiReader(bytes.NewReader(rest), r)
}

func ioReadFull(r io.Reader, b []byte) (int, error) { return io.ReadFull(r, b) }
