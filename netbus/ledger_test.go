package netbus

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/xbus-dev/xbus/bus"
)

// TestUnwrittenFramesHandedBack: a peer that handshakes and then reads
// nothing lets the socket and then the writer's queue fill; when it dies,
// every tell is handed back to the host with Undelivered: those still
// queued and the one the socket took in part (exact), and those the socket
// took whole, which the peer never acknowledged (in doubt).
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
	if handed != accepted {
		t.Fatalf("accepted %d tells, handed back %d: want all, as the peer acknowledged none", accepted, handed)
	}
}

// TestBrokenLinkAccountsEveryTell: tells stream over TCP to a peer whose
// socket is reset under it (SO_LINGER 0) while it reads. Every tell the peer
// did not process is counted: refused by Send, handed back unwritten, or
// handed back in doubt, written but never acknowledged. The peer never
// links again: what is in doubt is handed back once SettleTimeout is up,
// before the transports close. A tell in doubt may also have been
// processed, so the sum may exceed what was sent.
func TestBrokenLinkAccountsEveryTell(t *testing.T) {
	// No idle timeout on a loaded machine.
	cfg := Config{HeartbeatInterval: 200 * time.Millisecond, IdleTimeout: time.Minute, SettleTimeout: 100 * time.Millisecond}
	srv, cli, _, _, l := pair(t, "tcp://127.0.0.1:0", cfg, cfg)
	srv.mu.Lock()
	sl := srv.links[0].(*link)
	srv.mu.Unlock()
	from := bus.Ref{Node: cli.id, Name: "sender", ID: 1}
	const total = 30000
	var refused int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range total {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			env := encoded(l, &bus.Envelope{Kind: bus.KindTell, From: from, To: bus.Ref{Name: "sink"}, Msg: Payload{Seq: i, Data: make([]byte, 200)}})
			if l.Send(ctx, env) != nil {
				refused++
			}
			cancel()
		}
	}()
	for srv.deliver.Load() < total/6 {
		select {
		case <-done:
			t.Fatalf("the stream ended with %d delivered, before the test broke the link", srv.deliver.Load())
		case <-time.After(time.Millisecond):
		}
	}
	tc := sl.conns[0].nc.(*net.TCPConn)
	tc.SetLinger(0) // close resets the connection: what it holds unread is lost
	tc.Close()
	<-done
	for _, h := range []*testHost{cli, srv} {
		select {
		case <-h.downCh:
		case <-time.After(30 * time.Second):
			t.Fatal("the link did not go down")
		}
	}
	processed := srv.deliver.Load()
	for range 2000 {
		if processed+refused+cli.undeliv.Load()+srv.undeliv.Load() >= total {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	dead := cli.undeliv.Load() + srv.undeliv.Load()
	t.Logf("sent %d: processed %d, refused %d, dead letters %d", total, processed, refused, dead)
	if lost := total - processed - refused - dead; lost > 0 {
		t.Fatalf("%d of %d tells neither processed nor counted", lost, total)
	}
}
