//go:build !race

package netbus

const raceEnabled = false
