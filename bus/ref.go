package bus

import (
	"encoding/hex"
	"fmt"
	"strconv"

	"github.com/google/uuid"
)

// NodeID identifies one bus: one *Bus in one process. It is a random UUID
// chosen by New, so a process that restarts comes back as a new node and its
// old Refs never match the new ones.
type NodeID [16]byte

// NewNodeID returns a fresh random node id.
func NewNodeID() NodeID { return NodeID(uuid.New()) }

// ParseNodeID parses the canonical UUID text form String gives.
func ParseNodeID(s string) (NodeID, error) {
	u, err := uuid.Parse(s)
	if err != nil {
		return NodeID{}, fmt.Errorf("bus: node id %q: %w", s, err)
	}
	return NodeID(u), nil
}

// IsZero reports whether n is the zero node id.
func (n NodeID) IsZero() bool { return n == NodeID{} }

// String returns the canonical UUID text form.
func (n NodeID) String() string { return uuid.UUID(n).String() }

// Short returns the first 8 hex digits, enough to tell nodes apart in logs.
func (n NodeID) Short() string { return hex.EncodeToString(n[:4]) }

// Ref is the address of one actor instance: node, name and instance id.
//
// A Ref is a small comparable value: copy it, compare it with ==, use it as a
// map key, send it inside messages. ID is never reused on a node, so it is
// also the incarnation: when a name is registered again after its actor
// stopped, the new actor gets a new ID and messages sent to the old Ref are not
// mistaken for messages to the new one. A supervisor restart is not a new
// incarnation: the restarted actor keeps its Ref and its mailbox.
//
// A Ref with ID 0 and a Name addresses the name: the bus places each message on
// one of the instances registered under it.
type Ref struct {
	Node NodeID
	Name string
	ID   uint64
}

// IsZero reports whether r is the zero Ref (no actor).
func (r Ref) IsZero() bool { return r == Ref{} }

// String formats r as name#id@node for logs.
func (r Ref) String() string {
	if r.IsZero() {
		return "<nobody>"
	}
	name := r.Name
	if name == "" {
		name = "$anon"
	}
	return name + "#" + strconv.FormatUint(r.ID, 10) + "@" + r.Node.Short()
}

// Locality says how far away an actor or a link is, nearest first. The bus
// prefers nearer instances and faster links.
type Locality uint8

const (
	SameProcess Locality = iota // a pointer into a mailbox
	SameHost                    // shared memory or a Unix socket
	Remote                      // a socket to another host
)

func (l Locality) String() string {
	switch l {
	case SameProcess:
		return "process"
	case SameHost:
		return "host"
	case Remote:
		return "remote"
	}
	return "locality(" + strconv.Itoa(int(l)) + ")"
}
