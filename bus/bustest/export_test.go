package bustest

import "testing"

// RunInProcess runs the cases that apply in process; mk returns one bus as
// both A and B.
var RunInProcess = func(t *testing.T, mk Maker) { run(t, mk, true) }
