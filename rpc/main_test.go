package rpc_test

import (
	"testing"

	"github.com/xbus-dev/xbus/bus/bustest"
)

// TestMain fails the package if goroutines of ours are still running once
// every test and its buses' Close have finished.
func TestMain(m *testing.M) { bustest.Main(m) }
