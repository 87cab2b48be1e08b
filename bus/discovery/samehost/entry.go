package samehost

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/xbus-dev/xbus/bus"
)

// An entry is one node's file in the directory, "<node id>.node": JSON
// written whole to a temporary file and renamed into place, so a reader
// never sees half of one.
//
//	{"v":1,"id":"6f1c…","pid":4242,"host":"…","addrs":["shm:///run/user/1000/xbus/1a2b.sock"],"names":["orders"]}
type entry struct {
	V     int      `json:"v"`
	ID    string   `json:"id"`
	PID   int      `json:"pid"`
	Host  string   `json:"host"`
	Addrs []string `json:"addrs"`
	Names []string `json:"names,omitempty"`
}

// Bounds of an entry; a file beyond them is refused, not truncated.
const (
	maxEntry    = 1 << 20
	maxAddrs    = 64
	maxAddrLen  = 4096
	maxNameLen  = 1024
	entryFormat = 1
)

var errEntry = errors.New("samehost: bad entry")

// decodeEntry parses and checks one entry file's bytes.
func decodeEntry(data []byte) (entry, bus.NodeID, error) {
	var e entry
	if len(data) > maxEntry {
		return e, bus.NodeID{}, fmt.Errorf("%w: %d bytes, more than %d", errEntry, len(data), maxEntry)
	}
	if err := json.Unmarshal(data, &e); err != nil {
		return e, bus.NodeID{}, fmt.Errorf("%w: %w", errEntry, err)
	}
	if e.V != entryFormat {
		return e, bus.NodeID{}, fmt.Errorf("%w: format %d, want %d", errEntry, e.V, entryFormat)
	}
	id, err := bus.ParseNodeID(e.ID)
	if err != nil || id.IsZero() {
		return e, bus.NodeID{}, fmt.Errorf("%w: node id %q", errEntry, e.ID)
	}
	if e.PID <= 0 {
		return e, bus.NodeID{}, fmt.Errorf("%w: pid %d", errEntry, e.PID)
	}
	if len(e.Addrs) == 0 || len(e.Addrs) > maxAddrs {
		return e, bus.NodeID{}, fmt.Errorf("%w: %d addresses, want 1 to %d", errEntry, len(e.Addrs), maxAddrs)
	}
	for _, a := range e.Addrs {
		if a == "" || len(a) > maxAddrLen || strings.ContainsAny(a, "\x00\n") {
			return e, bus.NodeID{}, fmt.Errorf("%w: address %.64q", errEntry, a)
		}
	}
	for _, n := range e.Names {
		if n == "" || len(n) > maxNameLen {
			return e, bus.NodeID{}, fmt.Errorf("%w: name %.64q", errEntry, n)
		}
	}
	return e, id, nil
}

// encode returns the entry's bytes; names are left out when they would
// make it larger than maxEntry (peers learn them once linked).
func (e entry) encode() []byte {
	e.V = entryFormat
	data, _ := json.Marshal(e)
	if len(data) > maxEntry {
		e.Names = nil
		data, _ = json.Marshal(e)
	}
	return data
}
