package bus

import (
	"runtime"
	"sync"
	"testing"
	"unsafe"
)

// TestProcTableKeepsChunkOfLiveProcess races the last id of a chunk being
// stored against the removal of the chunk's only other live process: the
// chunk is complete and empty for an instant only if it counts the new id
// as issued before it counts it as live, and must never be freed under it.
func TestProcTableKeepsChunkOfLiveProcess(t *testing.T) {
	trials := 8000
	if testing.Short() {
		trials = 1000
	}
	p, q := &process{}, &process{}
	const last = chunkSize - 1
	for n := range trials {
		var tab procTable
		for id := range uint64(last) {
			tab.put(id, q)
		}
		for id := range uint64(last - 1) {
			tab.delete(id)
		}
		var wg sync.WaitGroup
		var start sync.WaitGroup
		start.Add(1)
		wg.Go(func() { start.Wait(); tab.put(last, p) })
		wg.Go(func() {
			start.Wait()
			if n%2 == 0 {
				runtime.Gosched()
			}
			tab.delete(last - 1)
		})
		start.Done()
		wg.Wait()
		if tab.get(last) != p {
			t.Fatalf("trial %d: the chunk of a live process was freed", n)
		}
	}
}

// TestProcessSizeClass: an idle actor is its process (with its mailbox
// inside), so a field that takes it past the 256-byte size class costs a
// million actors 32 MB more to allocate, touch and mark. A process that has
// to grow says so here.
func TestProcessSizeClass(t *testing.T) {
	if n := unsafe.Sizeof(process{}); n > 256 {
		t.Fatalf("a process is %d bytes, past the 256-byte size class", n)
	}
}
