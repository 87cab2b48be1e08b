package netbus

import (
	"context"
	"testing"
	"time"

	"github.com/xbus-dev/xbus/bus"
)

// TestUnwrittenFramesHandedBack: a peer that handshakes and then reads
// nothing lets the socket and then the writer's queue fill; when it dies,
// every tell still queued, and the one the socket took in part, is handed
// back to the host with Undelivered: none vanishes, and none the socket took
// whole is counted.
func TestUnwrittenFramesHandedBack(t *testing.T) {
	srv := newTestHost(t)
	srvT := startTransport(t, srv, Config{Listen: []string{"tcp://127.0.0.1:0"}, MaxQueued: 64 << 10})
	nc, _, err := rawDial(t, srvT.Addrs()[0], hsConfig{})
	if err != nil {
		t.Fatal(err)
	}
	l := srv.link(t)
	from := bus.Ref{Node: srv.id, Name: "sender", ID: 1}
	var accepted int64
	for i := 0; ; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		env := encoded(l, &bus.Envelope{Kind: bus.KindTell, From: from, To: bus.Ref{Name: "sink"}, Msg: Payload{Seq: i, Data: make([]byte, 1000)}})
		err := l.Send(ctx, env)
		cancel()
		if err != nil {
			break // the socket and the queue are full
		}
		accepted++
	}
	nc.Close() // the peer dies with everything unread
	select {
	case <-srv.downCh:
	case <-time.After(30 * time.Second):
		t.Fatal("the link did not go down")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	srvT.Close(ctx) // waits for the writer, which hands back
	handed := srv.undeliv.Load()
	t.Logf("accepted %d, handed back %d", accepted, handed)
	if handed == 0 || handed > accepted {
		t.Fatalf("accepted %d tells, handed back %d: want at least the queue's worth and at most all", accepted, handed)
	}
	if min := int64(64<<10) / 1100; handed < min {
		t.Fatalf("handed back %d tells, fewer than the %d a full queue holds", handed, min)
	}
}
