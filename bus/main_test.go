package bus

import (
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"
)

// TestMain fails the package if goroutines started by its tests are still
// running once every test (and its bus's Close) has finished: an idle bus
// owns no goroutine, so any left over is a leak. It is bustest.Main's
// check, written again because bus's own tests cannot import bustest,
// which imports bus.
func TestMain(m *testing.M) {
	code := m.Run()
	if code == 0 {
		if leaked := leakedGoroutines(5 * time.Second); leaked != "" {
			fmt.Fprintf(os.Stderr, "goroutines leaked by the tests:\n%s\n", leaked)
			code = 1
		}
	}
	os.Exit(code)
}

func leakedGoroutines(wait time.Duration) string {
	deadline := time.Now().Add(wait)
	for {
		buf := make([]byte, 1<<20)
		stacks := string(buf[:runtime.Stack(buf, true)])
		var ours []string
		for g := range strings.SplitSeq(stacks, "\n\n") {
			if strings.Contains(g, "xbus-dev/xbus/") && !strings.Contains(g, "TestMain") && !strings.Contains(g, "leakedGoroutines") {
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
