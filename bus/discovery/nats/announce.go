package nats

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/google/uuid"
)

// Limits on an announcement, checked before and while it is decoded, so a
// stranger's message costs a bounded amount of memory and work.
const (
	// MaxAnnouncement is the largest announcement accepted, in bytes.
	MaxAnnouncement = 256 << 10
	// MaxNames is the most names one announcement may carry.
	MaxNames = 4096
	// MaxAddrs is the most addresses one announcement may carry.
	MaxAddrs = 32
	maxField = 1024 // bytes in one name, address, host or node name
)

// Kinds of announcement.
const (
	kindHello = "hello" // a node and what it hosts; also its heartbeat
	kindBye   = "bye"   // the node is closing
)

// macHeader carries an announcement's MAC (base64url of HMAC-SHA256).
const macHeader = "Xbus-Mac"

// announceVersion is the version of the announcement's layout.
const announceVersion = 1

// announcement is what a node publishes on <prefix>.node.<node id>: itself,
// its addresses and its names. Its bytes are authenticated by an HMAC in
// the Xbus-Mac header (see seal); Seq and Time make a replay detectable.
type announcement struct {
	V     int      `json:"v"`
	Kind  string   `json:"kind"`
	Node  string   `json:"node"`           // node id, UUID text
	Name  string   `json:"name,omitempty"` // the node's name (bus.WithName), for logs
	Host  string   `json:"host,omitempty"` // bus.HostID of the node's machine
	Seq   uint64   `json:"seq"`            // counts up with every message of the node
	Time  int64    `json:"time"`           // the sender's clock, Unix milliseconds
	TTL   int64    `json:"ttl_ms"`         // how long a receiver keeps it without news
	Want  bool     `json:"want,omitempty"` // asks every node to announce itself now
	Addrs []string `json:"addrs,omitempty"`
	Names []string `json:"names,omitempty"`
}

// Errors an announcement is refused with. Each is logged, never more.
var (
	errTooLarge = errors.New("announcement too large")
	errBadMAC   = errors.New("announcement not authenticated: bad or missing MAC")
	errMalfomed = errors.New("malformed announcement")
	errStale    = errors.New("announcement too old or from the future (replay, or clocks apart)")
	errReplay   = errors.New("announcement replayed: its sequence number was seen")
)

// macInput is what the MAC covers: a domain tag, the subject and the data,
// so an announcement cannot be moved to another node's subject.
func mac(secret []byte, subject string, data []byte) []byte {
	h := hmac.New(sha256.New, secret)
	h.Write([]byte("xbus-announce-v1\n"))
	h.Write([]byte(subject))
	h.Write([]byte{'\n'})
	h.Write(data)
	return h.Sum(nil)
}

// seal encodes a and returns its bytes and the value of its MAC header.
func seal(secret []byte, subject string, a *announcement) ([]byte, string, error) {
	data, err := json.Marshal(a)
	if err != nil {
		return nil, "", err
	}
	if len(data) > MaxAnnouncement {
		return nil, "", fmt.Errorf("%w: %d bytes (at most %d): %d names", errTooLarge, len(data), MaxAnnouncement, len(a.Names))
	}
	return data, base64.RawURLEncoding.EncodeToString(mac(secret, subject, data)), nil
}

// open authenticates and decodes one announcement received on subject, and
// checks its fields. It never panics and allocates in proportion to data,
// which it refuses past MaxAnnouncement before looking at it.
func open(secret []byte, subject string, data []byte, macText string) (*announcement, error) {
	if len(data) > MaxAnnouncement {
		return nil, fmt.Errorf("%w: %d bytes (at most %d)", errTooLarge, len(data), MaxAnnouncement)
	}
	got, err := base64.RawURLEncoding.DecodeString(macText)
	if err != nil || len(got) != sha256.Size || !hmac.Equal(got, mac(secret, subject, data)) {
		return nil, errBadMAC
	}
	a := &announcement{}
	if err := json.Unmarshal(data, a); err != nil {
		return nil, fmt.Errorf("%w: %v", errMalfomed, err)
	}
	if err := a.check(subject); err != nil {
		return nil, fmt.Errorf("%w: %v", errMalfomed, err)
	}
	return a, nil
}

// check validates the fields of an authenticated announcement: a sender
// with the secret may still be buggy, and what it says is handed to the bus.
func (a *announcement) check(subject string) error {
	if a.V != announceVersion {
		return fmt.Errorf("version %d, want %d", a.V, announceVersion)
	}
	if a.Kind != kindHello && a.Kind != kindBye {
		return fmt.Errorf("kind %q", a.Kind)
	}
	id, err := uuid.Parse(a.Node)
	if err != nil || id == (uuid.UUID{}) || id.String() != a.Node {
		return fmt.Errorf("node id %q is not a canonical UUID", a.Node)
	}
	if !strings.HasSuffix(subject, ".node."+a.Node) {
		return fmt.Errorf("node %s announced on another node's subject %q", a.Node, subject)
	}
	if a.Seq == 0 {
		return errors.New("sequence number 0")
	}
	if a.TTL < minTTL.Milliseconds() || a.TTL > maxTTL.Milliseconds() {
		return fmt.Errorf("ttl %d ms outside [%v, %v]", a.TTL, minTTL, maxTTL)
	}
	if len(a.Name) > maxField || len(a.Host) > maxField {
		return errors.New("node name or host too long")
	}
	if len(a.Addrs) > MaxAddrs {
		return fmt.Errorf("%d addresses (at most %d)", len(a.Addrs), MaxAddrs)
	}
	for _, s := range a.Addrs {
		u, err := url.Parse(s)
		if err != nil || u.Scheme == "" || len(s) > maxField {
			return fmt.Errorf("address %q is not scheme://...", s)
		}
	}
	if len(a.Names) > MaxNames {
		return fmt.Errorf("%d names (at most %d)", len(a.Names), MaxNames)
	}
	for _, n := range a.Names {
		if n == "" || len(n) > maxField {
			return fmt.Errorf("name of %d bytes", len(n))
		}
	}
	return nil
}

// Bounds on an announced TTL.
const (
	minTTL = 100 * time.Millisecond
	maxTTL = time.Hour
)
