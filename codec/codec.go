// Package codec holds the codecs that encode message bodies when they leave
// the process. Binary returns the default the transports use.
package codec

import "github.com/xbus-dev/xbus/bus"

// Binary returns the default codec for bodies that cross a process boundary.
func Binary() bus.Codec { return bus.JSON }
