package rpc_test

import (
	"os"
	"testing"

	"github.com/xbus-dev/xbus/bus/bustest"
)

// TestMain fails the package if goroutines of ours are still running once
// every test and its buses' Close have finished. With RPC_TEST_HELPER set,
// the test binary is instead the peer process of a test (the os/exec
// helper-process pattern).
func TestMain(m *testing.M) {
	if mode := os.Getenv("RPC_TEST_HELPER"); mode != "" {
		os.Exit(helperMain(mode))
	}
	bustest.Main(m)
}
