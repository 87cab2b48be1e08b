package netbus

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"sync"
	"testing"
	"time"
)

// TestControlFrameFlood: a raw peer floods a node with control frames,
// pings and settle frames full of connection ids it never had, as fast as
// its socket takes them, while another peer asks the node's echo actor over
// its own link. The other peer's asks are all answered during the flood,
// the node keeps at most maxSettleEntries of the liar's counts, and its
// heap returns near its baseline once the flood is over.
func TestControlFrameFlood(t *testing.T) {
	srv := newTestHost(t)
	srvT := startTransport(t, srv, Config{Listen: []string{"tcp://127.0.0.1:0"}})
	cli := newTestHost(t)
	cliT := startTransport(t, cli, Config{})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute) // a hang detector
	defer cancel()
	if _, err := cliT.Dial(ctx, srvT.Addrs()[0]); err != nil {
		t.Fatal(err)
	}
	healthy := cli.link(t)
	srv.link(t)
	nc, _, err := rawDial(t, srvT.Addrs()[0], hsConfig{})
	if err != nil {
		t.Fatal(err)
	}
	liar := srv.link(t)
	base := liveHeap()

	const frames = 1000
	flood := make(chan error, 1)
	go func() {
		es := make([]settleEntry, maxSettleEntries)
		var ids [maxSettleEntries * 8]byte
		for range frames {
			rand.Read(ids[:])
			for i := range es {
				es[i] = settleEntry{id: connID{binary.LittleEndian.Uint64(ids[i*8:]), byte(i)}, read: uint64(i)}
			}
			b := appendPing(nil, 0)
			b = appendFrameHeader(b, framePing, 0, 0)
			b = appendSettle(b, es)
			if _, err := nc.Write(b); err != nil {
				flood <- err
				return
			}
		}
		flood <- nil
	}()
	var wg sync.WaitGroup
	for i := range 100 {
		wg.Go(func() {
			got, err := cli.ask(ctx, healthy, "echo", Payload{Seq: i})
			if err != nil || got.(Payload).Seq != i {
				t.Errorf("ask %d beside the flood: %v, %v", i, got, err)
			}
		})
	}
	wg.Wait()
	if err := <-flood; err != nil {
		t.Fatalf("the flood ended early: %v", err)
	}
	// The node has read the whole flood (the frames the handshake left
	// are counted too, so at least as many).
	for c := liar.(*link).conns[0]; c.recv.Load() < 3*frames; {
		if ctx.Err() != nil {
			t.Fatalf("the node read %d of %d control frames", c.recv.Load(), 3*frames)
		}
		time.Sleep(time.Millisecond)
	}
	srvT.settleMu.Lock()
	told := 0
	for _, ps := range srvT.settle {
		told += len(ps.told)
	}
	srvT.settleMu.Unlock()
	if told > maxSettleEntries {
		t.Errorf("the node keeps %d counts of connections it never had, at most %d", told, maxSettleEntries)
	}
	nc.Close()
	grown := liveHeap() - base
	t.Logf("%d control frames: %d counts kept, heap %+.1f MiB", 3*frames, told, float64(grown)/(1<<20))
	if grown > heapSlack {
		t.Fatalf("heap grew by %d MiB", grown>>20)
	}
}
