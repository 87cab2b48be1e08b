package nats

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

var testSecret = []byte("0123456789abcdef0123456789abcdef")

const testNode = "6f1c2a4e-1b2c-4d3e-8f40-5a6b7c8d9e0f"

func testAnnouncement() *announcement {
	return &announcement{V: announceVersion, Kind: kindHello, Node: testNode, Name: "orders", Host: "h1",
		Seq: 7, Time: time.Now().UnixMilli(), TTL: 6000, Addrs: []string{"tcp://127.0.0.1:7400", "shm:///run/x.sock"},
		Names: []string{"orders.create", "orders.list"}}
}

func subjectOf(node string) string { return DefaultPrefix + ".node." + node }

func TestSealOpenRoundTrip(t *testing.T) {
	a := testAnnouncement()
	data, macText, err := seal(testSecret, subjectOf(testNode), a)
	if err != nil {
		t.Fatal(err)
	}
	got, err := open(testSecret, subjectOf(testNode), data, macText)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(*got) != fmt.Sprint(*a) {
		t.Fatalf("opened %+v, sealed %+v", *got, *a)
	}
}

// TestOpenRefuses is what a stranger on the NATS server can send: every
// case must be refused with the right error, none may panic.
func TestOpenRefuses(t *testing.T) {
	subj := subjectOf(testNode)
	data, macText, err := seal(testSecret, subj, testAnnouncement())
	if err != nil {
		t.Fatal(err)
	}
	other := "0d1c2a4e-1b2c-4d3e-8f40-5a6b7c8d9e0f"
	resealed := func(mut func(a *announcement), subject string) ([]byte, string) {
		a := testAnnouncement()
		mut(a)
		d, m, err := seal(testSecret, subject, a)
		if err != nil {
			t.Fatal(err)
		}
		return d, m
	}
	flipped := bytes.Clone(data)
	flipped[len(flipped)/2] ^= 1
	_, wrongKey, _ := seal([]byte("another secret, same length!!!!!"), subj, testAnnouncement())
	big := bytes.Repeat([]byte{' '}, MaxAnnouncement+1)
	cases := []struct {
		name    string
		subject string
		data    []byte
		mac     string
		want    error
	}{
		{"no MAC", subj, data, "", errBadMAC},
		{"MAC not base64", subj, data, "!!!", errBadMAC},
		{"short MAC", subj, data, base64.RawURLEncoding.EncodeToString([]byte("short")), errBadMAC},
		{"wrong secret", subj, data, wrongKey, errBadMAC},
		{"a flipped bit", subj, flipped, macText, errBadMAC},
		{"moved to another node's subject", subjectOf(other), data, macText, errBadMAC},
		{"garbage", subj, []byte("\x00\xff{{{"), macText, errBadMAC},
		{"oversized", subj, big, macText, errTooLarge},
	}
	// Authenticated but wrong: a buggy node that has the secret.
	for _, c := range []struct {
		name string
		mut  func(a *announcement)
		subj string
	}{
		{"wrong version", func(a *announcement) { a.V = 2 }, subj},
		{"unknown kind", func(a *announcement) { a.Kind = "takeover" }, subj},
		{"node id not a UUID", func(a *announcement) { a.Node = "orders" }, subjectOf("orders")},
		{"node id not canonical", func(a *announcement) { a.Node = strings.ToUpper(testNode) }, subjectOf(strings.ToUpper(testNode))},
		{"body names another node", func(a *announcement) { a.Node = other }, subj},
		{"sequence 0", func(a *announcement) { a.Seq = 0 }, subj},
		{"ttl too short", func(a *announcement) { a.TTL = 1 }, subj},
		{"ttl too long", func(a *announcement) { a.TTL = int64(2 * time.Hour / time.Millisecond) }, subj},
		{"address without scheme", func(a *announcement) { a.Addrs = []string{"127.0.0.1:80"} }, subj},
		{"too many addresses", func(a *announcement) { a.Addrs = make([]string, MaxAddrs+1) }, subj},
		{"empty name", func(a *announcement) { a.Names = []string{""} }, subj},
		{"too many names", func(a *announcement) {
			a.Names = make([]string, MaxNames+1)
			for i := range a.Names {
				a.Names[i] = "n"
			}
		}, subj},
		{"name too long", func(a *announcement) { a.Names = []string{strings.Repeat("x", maxField+1)} }, subj},
	} {
		d, m := resealed(c.mut, c.subj)
		cases = append(cases, struct {
			name    string
			subject string
			data    []byte
			mac     string
			want    error
		}{c.name, c.subj, d, m, errMalfomed})
	}
	d, m := []byte(`{"v":1,"kind":"hello"`), base64.RawURLEncoding.EncodeToString(mac(testSecret, subj, []byte(`{"v":1,"kind":"hello"`)))
	cases = append(cases, struct {
		name    string
		subject string
		data    []byte
		mac     string
		want    error
	}{"truncated JSON with a valid MAC", subj, d, m, errMalfomed})
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a, err := open(testSecret, c.subject, c.data, c.mac)
			if !errors.Is(err, c.want) {
				t.Fatalf("open = %v, %v; want %v", a, err, c.want)
			}
		})
	}
}

func TestSealRefusesOversized(t *testing.T) {
	a := testAnnouncement()
	a.Names = make([]string, 20000)
	for i := range a.Names {
		a.Names[i] = fmt.Sprintf("a-rather-long-service-name-%06d", i)
	}
	if _, _, err := seal(testSecret, subjectOf(testNode), a); !errors.Is(err, errTooLarge) {
		t.Fatalf("seal of %d names: %v, want errTooLarge", len(a.Names), err)
	}
}

// FuzzDecodeAnnouncement feeds open arbitrary bytes twice: with a MAC as
// given (which must almost always be refused) and with a valid MAC over
// them, so the JSON decoding and field checks behind the MAC are reached.
// Whatever it admits must pass the checks and seal again.
func FuzzDecodeAnnouncement(f *testing.F) {
	subj := subjectOf(testNode)
	data, macText, _ := seal(testSecret, subj, testAnnouncement())
	f.Add(data, macText)
	f.Add([]byte(`{"v":1,"kind":"bye","node":"`+testNode+`","seq":1,"time":1,"ttl_ms":1000}`), "")
	f.Add([]byte(`{"names":[`+strings.Repeat(`"x",`, 100)+`"y"]}`), "AAAA")
	f.Add([]byte("null"), "")
	f.Fuzz(func(t *testing.T, data []byte, macText string) {
		if a, err := open(testSecret, subj, data, macText); err == nil && a.check(subj) != nil {
			t.Fatalf("admitted an announcement that fails its checks: %+v", a)
		}
		good := base64.RawURLEncoding.EncodeToString(mac(testSecret, subj, data))
		a, err := open(testSecret, subj, data, good)
		if err != nil {
			return
		}
		if err := a.check(subj); err != nil {
			t.Fatalf("admitted %q: %v", data, err)
		}
		if _, _, err := seal(testSecret, subj, a); err != nil {
			t.Fatalf("admitted %q, which does not seal again: %v", data, err)
		}
	})
}
