package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// TestRun runs the tour against an embedded server and checks what it
// prints: the nodes found each other and both kinds of client got answers.
func TestRun(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), []string{"-nats", ""}, &out); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	for _, want := range []string{
		"node-a asks greeter: hello, node-a from node-b",
		"node-a asks add {2 3}: 5",
		`nats req xbus.greeter '"world"': "hello, world from node-b"`,
		`nats req xbus.add '{"A":1,"B":2}': {"N":3}`,
		`nats req xbus.add '{"A":"one"}': error 400:`,
		`$SRV.INFO.node-b: {"type":"io.nats.micro.v1.info_response"`,
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}
