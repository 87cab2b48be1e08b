package samehost

import (
	"strings"
	"testing"

	"github.com/xbus-dev/xbus/bus"
)

func TestDecodeEntry(t *testing.T) {
	id := bus.NewNodeID()
	good := entry{ID: id.String(), PID: 7, Host: "h", Addrs: []string{"shm:///x.sock"}, Names: []string{"a"}}
	e, got, err := decodeEntry(good.encode())
	if err != nil || got != id || e.PID != 7 || e.Addrs[0] != "shm:///x.sock" || e.Names[0] != "a" {
		t.Fatalf("round trip = %+v, %v, %v", e, got, err)
	}
	bad := map[string]string{
		"not json":       "\x00\xff garbage",
		"truncated":      string(good.encode()[:20]),
		"wrong format":   `{"v":2,"id":"` + id.String() + `","pid":1,"addrs":["a"]}`,
		"bad id":         `{"v":1,"id":"nope","pid":1,"addrs":["a"]}`,
		"zero id":        `{"v":1,"id":"00000000-0000-0000-0000-000000000000","pid":1,"addrs":["a"]}`,
		"no pid":         `{"v":1,"id":"` + id.String() + `","addrs":["a"]}`,
		"no address":     `{"v":1,"id":"` + id.String() + `","pid":1}`,
		"empty address":  `{"v":1,"id":"` + id.String() + `","pid":1,"addrs":[""]}`,
		"long address":   `{"v":1,"id":"` + id.String() + `","pid":1,"addrs":["` + strings.Repeat("a", maxAddrLen+1) + `"]}`,
		"empty name":     `{"v":1,"id":"` + id.String() + `","pid":1,"addrs":["a"],"names":[""]}`,
		"wrong types":    `{"v":"1","id":1,"pid":"x","addrs":"a"}`,
		"oversized file": `{"v":1,"pad":"` + strings.Repeat("x", maxEntry) + `"}`,
	}
	for what, data := range bad {
		if _, _, err := decodeEntry([]byte(data)); err == nil {
			t.Errorf("%s: decoded", what)
		}
	}
}

// An entry too large with its names is written without them.
func TestEncodeDropsNamesBeyondBound(t *testing.T) {
	names := make([]string, maxEntry/100)
	for i := range names {
		names[i] = strings.Repeat("n", 120)
	}
	data := entry{ID: bus.NewNodeID().String(), PID: 1, Addrs: []string{"shm:///x"}, Names: names}.encode()
	e, _, err := decodeEntry(data)
	if err != nil || len(e.Names) != 0 {
		t.Fatalf("%d bytes: %v, %d names", len(data), err, len(e.Names))
	}
}

func FuzzDecodeEntry(f *testing.F) {
	f.Add(entry{ID: bus.NewNodeID().String(), PID: 1, Addrs: []string{"shm:///x.sock"}, Names: []string{"a"}}.encode())
	f.Add([]byte(`{"v":1}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		e, id, err := decodeEntry(data)
		if err != nil {
			return
		}
		// What decodes survives a round trip.
		e2, id2, err := decodeEntry(e.encode())
		if err != nil || id2 != id || e2.PID != e.PID || len(e2.Addrs) != len(e.Addrs) {
			t.Fatalf("round trip of %q: %+v %v", data, e2, err)
		}
	})
}
