//go:build unix

package supervisor

import (
	"context"
	"os"
	"syscall"
	"testing"
	"time"
)

// TestRunSignal: Run returns nil after its signal, having closed the bus.
// Unix only: a process signals itself with SIGUSR1, which other systems lack.
func TestRunSignal(t *testing.T) {
	b := newBus(t, nil)
	j := &journal{}
	errc := make(chan error, 1)
	go func() {
		errc <- Run(context.Background(), b, Spec{Name: "daemon", Children: []ChildSpec{{Name: "p", New: newProbe("p", j)}}},
			WithSignals(syscall.SIGUSR1), WithDrainTimeout(10*time.Second))
	}()
	eventually(t, "tree started", func() bool { return j.count("p:started") == 1 })
	if err := syscall.Kill(os.Getpid(), syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatalf("Run after its signal: %v", err)
	}
	if !b.Closed() || j.count("p:stopping") != 1 {
		t.Fatalf("bus closed %v, journal %v", b.Closed(), j.all())
	}
}
