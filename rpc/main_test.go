package rpc_test

import (
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/xbus-dev/xbus/bus/bustest"
)

// TestMain fails the package if goroutines of ours are still running once
// every test and its buses' Close have finished.
func TestMain(m *testing.M) {
	code := m.Run()
	if code == 0 {
		if leaked := bustest.Leaked(5 * time.Second); leaked != "" {
			fmt.Fprintf(os.Stderr, "goroutines leaked by the tests:\n%s\n", leaked)
			code = 1
		}
	}
	os.Exit(code)
}
