package netbus

import (
	"bytes"
	"context"
	"io"
	"testing"
	"time"

	"github.com/xbus-dev/xbus/bus"
)

// TestLyingAcknowledgements: a raw peer reads the tells a node sends it and
// then lies in its ledger: a ping that acknowledges more data frames than
// were sent, a ping whose count goes back, a close frame that says it read
// more than was sent. Each closes the link with ErrBadFrame, and every
// tell the lie would have settled is still handed back (Undelivered), with
// none counted as processed on the liar's word: only a count the peer gave
// truthfully before the lie settles tells as processed.
func TestLyingAcknowledgements(t *testing.T) {
	const tells = 5
	for _, c := range []struct {
		name      string
		lie       []byte
		processed int // acknowledged truthfully before the lie
	}{
		{"ping past what was sent", appendPing(nil, tells+1), 0},
		{"ping that goes back", appendPing(appendPing(nil, 3), 2), 3},
		{"close past what was sent", appendCountedClose(nil, ErrShutdown, tells+7), 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			srv := newTestHost(t)
			srvT := startTransport(t, srv, Config{Listen: []string{"tcp://127.0.0.1:0"}, SettleTimeout: -1})
			nc, rest, err := rawDial(t, srvT.Addrs()[0], hsConfig{})
			if err != nil {
				t.Fatal(err)
			}
			l := srv.link(t)
			for i := range tells {
				env := encoded(l, &bus.Envelope{Kind: bus.KindTell, To: bus.Ref{Name: "sink"}, Msg: Payload{Seq: i}})
				if err := l.Send(context.Background(), env); err != nil {
					t.Fatal(err)
				}
			}
			fr := newFrameReader(io.MultiReader(bytes.NewReader(rest), nc), 1<<20)
			nc.SetReadDeadline(time.Now().Add(30 * time.Second))
			for got := 0; got < tells; {
				typ, _, _, err := fr.next()
				if err != nil {
					t.Fatalf("after %d tells: %v", got, err)
				}
				if typ == frameData || typ == frameRepeat {
					got++
				}
			}
			if _, err := nc.Write(c.lie); err != nil {
				t.Fatal(err)
			}
			srv.wantLinkDown(t, ErrBadFrame)
			want := int64(tells - c.processed)
			for i := 0; srv.undeliv.Load() < want && i < 3000; i++ {
				time.Sleep(10 * time.Millisecond)
			}
			time.Sleep(50 * time.Millisecond) // for an excess to show
			if got := srv.undeliv.Load(); got != want {
				t.Fatalf("%d of %d tells handed back after the lie, want %d: a lie settles none as processed, a truthful count before it does", got, tells, want)
			}
		})
	}
}
