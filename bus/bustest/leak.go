package bustest

import (
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"
)

// Main runs a package's tests and exits, failing the package if goroutines
// of this module are still running 5 s after the tests passed (Leaked). A
// package's TestMain calls it:
//
//	func TestMain(m *testing.M) { bustest.Main(m) }
func Main(m *testing.M) {
	code := m.Run()
	if code == 0 {
		if leaked := Leaked(5 * time.Second); leaked != "" {
			fmt.Fprintf(os.Stderr, "goroutines leaked by the tests:\n%s\n", leaked)
			code = 1
		}
	}
	os.Exit(code)
}

// Leaked waits up to wait for every goroutine running code of this module
// (other than the caller's TestMain) to end, and returns the stacks of
// those still running then; "" when none is. Main calls it once the tests
// have run: a closed bus, transport or discovery source owns no goroutine,
// so any left is a leak.
func Leaked(wait time.Duration) string {
	deadline := time.Now().Add(wait)
	for {
		buf := make([]byte, 1<<20)
		stacks := string(buf[:runtime.Stack(buf, true)])
		var ours []string
		for g := range strings.SplitSeq(stacks, "\n\n") {
			if strings.Contains(g, "xbus-dev/xbus/") && !strings.Contains(g, "TestMain") && !strings.Contains(g, "bustest.Leaked") && !strings.Contains(g, "bustest.Main") {
				ours = append(ours, g)
			}
		}
		if len(ours) == 0 {
			return ""
		}
		if time.Now().After(deadline) {
			return strings.Join(ours, "\n\n")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
