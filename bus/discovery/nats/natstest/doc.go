// Package natstest tests package bus/discovery/nats against a real
// nats-server started in process. It is a module of its own so that the
// main module does not carry nats-server and its dependencies: run its
// tests from this directory with go test -race ./... (.ci/run does).
package natstest
