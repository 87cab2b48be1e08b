package bustest_test

import (
	"testing"

	"github.com/xbus-dev/xbus/bus/bustest"
)

// TestMain fails the package if goroutines of ours are still running once
// every test (and its buses' Close) has finished: a closed transport, like
// an idle bus, owns none.
func TestMain(m *testing.M) { bustest.Main(m) }
