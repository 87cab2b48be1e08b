package netbus

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/xbus-dev/xbus/bus"
)

// arrivals is a testHost that also keeps the sender name of every tell in
// the order the link delivered them, across senders.
type arrivals struct {
	*testHost
	mu    sync.Mutex
	names []string
}

func (a *arrivals) Deliver(l bus.Link, env *bus.Envelope) {
	if env.Kind == bus.KindTell {
		a.mu.Lock()
		a.names = append(a.names, env.From.Name)
		a.mu.Unlock()
	}
	a.testHost.Deliver(l, env)
}

// waitArrived waits until n tells have arrived and returns their senders'
// names in arrival order.
func (a *arrivals) waitArrived(t *testing.T, n int) []string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		a.mu.Lock()
		got := append([]string(nil), a.names...)
		a.mu.Unlock()
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d tells arrived", len(got), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Senders stream tells with SendUnfenced while the link is fenced: the
// fence arrives after every tell a SendUnfenced took and before none of
// them; each one refused (bus.ErrLinkFenced) never arrives; a plain Send
// still goes out after the fence (a reply on a retired link). On a link of
// four connections the senders' tells take several of them and the fence
// one: it still arrives after all of them (each connection's fence frame
// holds its reader until every one has arrived), round after round.
func TestFenceFollowsUnfencedSends(t *testing.T) {
	for _, pool := range []int{1, 4} {
		rounds := 1
		if pool > 1 {
			rounds = 5
		}
		for round := range rounds {
			t.Run(fmt.Sprintf("pool%d/%d", pool, round), func(t *testing.T) { fenceFollowsUnfencedSends(t, pool) })
		}
	}
}

func fenceFollowsUnfencedSends(t *testing.T, pool int) {
	network(t, func(t *testing.T, listen string) {
		srv := &arrivals{testHost: newTestHost(t)}
		cli := newTestHost(t)
		srvT := startTransport(t, srv, Config{Listen: []string{listen}})
		cliT := startTransport(t, cli, Config{PoolSize: pool})
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := cliT.Dial(ctx, srvT.Addrs()[0]); err != nil {
			t.Fatal(err)
		}
		l := cli.link(t).(bus.FencingLink)
		srv.link(t)
		tell := func(name string, seq int) *bus.Envelope {
			from := bus.Ref{Node: cli.id, Name: name, ID: 1}
			return encoded(l, &bus.Envelope{Kind: bus.KindTell, From: from, To: bus.Ref{Name: "sink"}, Msg: Payload{Seq: seq}})
		}
		const senders = 8
		if pool > 1 { // the test means something only if the tells take connections the fence does not
			fc := l.(*link).pick(tell("fence", 0))
			other := false
			for s := range senders {
				other = other || l.(*link).pick(tell(fmt.Sprintf("sender-%d", s), 0)) != fc
			}
			if !other {
				t.Fatal("every sender takes the fence's connection")
			}
		}
		var accepted, refused atomic.Int64
		started := make(chan struct{}, senders)
		var wg sync.WaitGroup
		for s := range senders {
			wg.Go(func() {
				name := fmt.Sprintf("sender-%d", s)
				for i := 0; ; i++ {
					err := l.SendUnfenced(context.Background(), tell(name, i))
					switch {
					case err == nil:
						accepted.Add(1)
					case errors.Is(err, bus.ErrLinkFenced):
						refused.Add(1)
						return
					default:
						t.Errorf("%s, tell %d: %v", name, i, err)
						return
					}
					if i == 100 {
						started <- struct{}{}
					}
				}
			})
		}
		for range senders {
			<-started
		}
		if err := l.Fence(ctx, tell("fence", 0)); err != nil {
			t.Fatal(err)
		}
		wg.Wait()
		if err := l.SendUnfenced(ctx, tell("late", 0)); !errors.Is(err, bus.ErrLinkFenced) {
			t.Fatalf("SendUnfenced after the fence: %v, want bus.ErrLinkFenced", err)
		}
		if err := l.Send(ctx, tell("after", 0)); err != nil {
			t.Fatalf("Send after the fence: %v", err)
		}
		n := int(accepted.Load())
		names := srv.waitArrived(t, n+2)
		if len(names) != n+2 || refused.Load() != senders {
			t.Fatalf("%d tells arrived; %d were taken, %d refused", len(names), n, refused.Load())
		}
		// With one connection "after" follows the fence; on a pool it may
		// take another connection, whose reader the fence released too.
		if f := indexOf(names, "fence"); f != n && (pool == 1 || f != n+1 || names[n] != "after") {
			t.Fatalf("the fence arrived as tell %d of %d taken before it (%q before it)", f, n, names[max(f-1, 0)])
		}
		if pool == 1 && names[n+1] != "after" {
			t.Fatalf("%q arrived after the fence, want \"after\"", names[n+1])
		}
	})
}

// doneAsked is a context that closes asked when Done is first called: a
// sender asks for it only as it begins to wait.
type doneAsked struct {
	context.Context
	once  sync.Once
	asked chan struct{}
}

func (d *doneAsked) Done() <-chan struct{} {
	d.once.Do(func() { close(d.asked) })
	return d.Context.Done()
}

func indexOf(names []string, name string) int {
	for i, n := range names {
		if n == name {
			return i
		}
	}
	return -1
}

// A peer that handshakes and then reads nothing, with the connection's
// writer held as if in a write that never ends, lets the queue fill: a
// sender waiting for room with SendUnfenced is refused as soon as the link
// is fenced, not at the end of its context, and a fence that cannot be
// queued fails at its own context without stalling. No refused tell is
// counted as sent: when the peer dies, the link hands back exactly the
// tells it took.
func TestFenceReleasesSendersOfAFrozenPeer(t *testing.T) {
	srv := newTestHost(t)
	srvT := startTransport(t, srv, Config{Listen: []string{"tcp://127.0.0.1:0"}, MaxQueued: 64 << 10})
	nc, _, err := rawDial(t, srvT.Addrs()[0], hsConfig{})
	if err != nil {
		t.Fatal(err)
	}
	l := srv.link(t).(bus.FencingLink)
	c := l.(*link).conns[0]
	c.mu.Lock()
	for c.writing { // the writer's first ping
		c.mu.Unlock()
		time.Sleep(time.Millisecond)
		c.mu.Lock()
	}
	c.writing = true // the writer takes nothing more from the queue
	c.mu.Unlock()
	from := bus.Ref{Node: srv.id, Name: "sender", ID: 1}
	tell := func(i int) *bus.Envelope {
		return encoded(l, &bus.Envelope{Kind: bus.KindTell, From: from, To: bus.Ref{Name: "sink"}, Msg: Payload{Seq: i, Data: make([]byte, 1000)}})
	}
	var accepted int64
	for i := 0; ; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		err := l.SendUnfenced(ctx, tell(i))
		cancel()
		if err != nil {
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("tell %d: %v", i, err)
			}
			break // the queue is full
		}
		accepted++
	}
	waiting := make(chan error, 1)
	wctx, wcancel := context.WithTimeout(context.Background(), time.Hour)
	defer wcancel()
	waits := &doneAsked{Context: wctx, asked: make(chan struct{})}
	go func() { waiting <- l.SendUnfenced(waits, tell(-1)) }()
	<-waits.asked // the sender waits for room
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	err = l.Fence(ctx, tell(-2))
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a fence with no room: %v, want its context's end", err)
	}
	if err := <-waiting; !errors.Is(err, bus.ErrLinkFenced) {
		t.Fatalf("the waiting sender: %v, want bus.ErrLinkFenced", err)
	}
	c.mu.Lock()
	c.writing = false
	c.mu.Unlock()
	nc.Close() // the peer dies with everything unread
	select {
	case <-srv.downCh:
	case <-time.After(30 * time.Second):
		t.Fatal("the link did not go down")
	}
	ctx, cancel = context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	srvT.Close(ctx) // waits for the writer, which hands back
	if handed := srv.undeliv.Load(); handed != accepted {
		t.Fatalf("took %d tells, handed back %d: want exactly those taken", accepted, handed)
	}
}

// A peer's fence frames on a pooled link of version 5: what follows one on
// a connection waits until every connection's has arrived, while what
// comes on the others before theirs is handed over. A peer that lies and
// sends a fence frame on a connection of version 4 is told ErrBadFrame and
// its link closes.
func TestFenceFrameWaitsForEveryConnection(t *testing.T) {
	srv := newTestHost(t)
	srvT := startTransport(t, srv, Config{Listen: []string{"tcp://127.0.0.1:0"}})
	node := bus.NewNodeID()
	data := func(name string, seq int) []byte {
		p, err := encoded(fakeLink{}, &bus.Envelope{Kind: bus.KindTell, From: bus.Ref{Node: node, Name: name, ID: 1}, To: bus.Ref{Name: "sink"}, Msg: Payload{Seq: seq}}).AppendBinary(nil)
		if err != nil {
			t.Fatal(err)
		}
		return append(appendFrameHeader(nil, frameData, 0, len(p)), p...)
	}
	fenceFrame := appendFrameHeader(nil, frameFence, 0, 0)
	tells := func(name string) []int {
		srv.mu.Lock()
		defer srv.mu.Unlock()
		return append([]int(nil), srv.tells[name]...)
	}
	waitTells := func(name string, want []int) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for !reflect.DeepEqual(tells(name), want) {
			if time.Now().After(deadline) {
				t.Fatalf("%s's tells %v, want %v", name, tells(name), want)
			}
			time.Sleep(time.Millisecond)
		}
	}
	var ncs [2]net.Conn
	for i := range ncs {
		nc, _, err := rawDial(t, srvT.Addrs()[0], hsConfig{Node: node, LinkID: 5, Conn: uint8(i), Pool: 2, Version: versionFence})
		if err != nil {
			t.Fatal(err)
		}
		ncs[i] = nc
	}
	l := srv.link(t).(*link)
	for i, c := range l.conns {
		if c.res.Version != versionFence {
			t.Fatalf("connection %d speaks version %d", i, c.res.Version)
		}
	}
	ncs[0].Write(append(append(data("a", 0), fenceFrame...), data("a", 1)...))
	ncs[1].Write(data("b", 0))
	waitTells("b", []int{0})
	waitTells("a", []int{0})
	ncs[1].Write(data("b", 1)) // before b's fence frame: handed over while a's waits
	waitTells("b", []int{0, 1})
	if got := tells("a"); len(got) != 1 {
		t.Fatalf("a's tells %v: the one after the fence frame came before the fence frame of the other connection", got)
	}
	ncs[1].Write(append(fenceFrame, data("b", 2)...))
	waitTells("a", []int{0, 1})
	waitTells("b", []int{0, 1, 2})
	for _, nc := range ncs {
		nc.Close()
	}

	t.Run("version 4", func(t *testing.T) {
		srv := newTestHost(t)
		srvT := startTransport(t, srv, Config{Listen: []string{"tcp://127.0.0.1:0"}})
		nc, rest, err := rawDial(t, srvT.Addrs()[0], hsConfig{Node: bus.NewNodeID(), LinkID: 6, Pool: 1, Version: versionRepeat})
		if err != nil {
			t.Fatal(err)
		}
		srv.link(t)
		nc.Write(fenceFrame)
		if err := readClose(t, nc, rest); !errors.Is(err, ErrBadFrame) {
			t.Fatalf("the peer was told %v, want ErrBadFrame", err)
		}
		nc.Close()
		srv.wantLinkDown(t, ErrBadFrame)
	})
}

// On a link of four connections, the connection of a Lead is backed up
// with tells when it leads; tells sent after Lead returned, by senders on
// the other connections, still arrive after the led envelope.
func TestLeadPrecedesLaterSends(t *testing.T) {
	srv := &arrivals{testHost: newTestHost(t)}
	cli := newTestHost(t)
	srvT := startTransport(t, srv, Config{Listen: []string{"tcp://127.0.0.1:0"}})
	cliT := startTransport(t, cli, Config{PoolSize: 4})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := cliT.Dial(ctx, srvT.Addrs()[0]); err != nil {
		t.Fatal(err)
	}
	l := cli.link(t).(*link)
	srv.link(t)
	tell := func(name string, seq int, size int) *bus.Envelope {
		from := bus.Ref{Node: cli.id, Name: name, ID: 1}
		return encoded(l, &bus.Envelope{Kind: bus.KindTell, From: from, To: bus.Ref{Name: "sink"}, Msg: Payload{Seq: seq, Data: make([]byte, size)}})
	}
	lc := l.pick(tell("lead", 0, 0))
	var bulk string
	var others []string
	for i := 0; bulk == "" || len(others) < 8; i++ {
		name := fmt.Sprintf("s%d", i)
		if l.pick(tell(name, 0, 0)) == lc {
			bulk = cmp.Or(bulk, name)
		} else if len(others) < 8 {
			others = append(others, name)
		}
	}
	const backlog = 2000
	for i := range backlog {
		if err := l.Send(ctx, tell(bulk, i, 4096)); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Lead(ctx, tell("lead", 0, 0)); err != nil {
		t.Fatal(err)
	}
	for _, name := range others {
		if err := l.Send(ctx, tell(name, 0, 0)); err != nil {
			t.Fatal(err)
		}
	}
	names := srv.waitArrived(t, backlog+1+len(others))
	lead := indexOf(names, "lead")
	for _, name := range others {
		if i := indexOf(names, name); i < lead {
			t.Fatalf("%s's tell arrived as number %d, before the led one (%d)", name, i, lead)
		}
	}
}

// A reader that waits at a fence frame for the other connections' reads
// nothing, the peer's heartbeats included, however long the others take
// to reach theirs (a backlog of tells behind them on a loaded machine):
// its connection is not idle. The link stays up through several idle
// timeouts, its other connection kept alive by the peer's pings, and the
// tell behind the fence frame arrives once the other fence frame does.
func TestReaderAtAFenceIsNotIdle(t *testing.T) {
	srv := newTestHost(t)
	// Many heartbeats to the idle timeout: the peer's pings keep the other
	// connection alive with room to spare on a loaded machine.
	cfg := Config{Listen: []string{"tcp://127.0.0.1:0"}, HeartbeatInterval: 50 * time.Millisecond, IdleTimeout: time.Second}
	srvT := startTransport(t, srv, cfg)
	node := bus.NewNodeID()
	data := func(seq int) []byte {
		p, err := encoded(fakeLink{}, &bus.Envelope{Kind: bus.KindTell, From: bus.Ref{Node: node, Name: "a", ID: 1}, To: bus.Ref{Name: "sink"}, Msg: Payload{Seq: seq}}).AppendBinary(nil)
		if err != nil {
			t.Fatal(err)
		}
		return append(appendFrameHeader(nil, frameData, 0, len(p)), p...)
	}
	fenceFrame := appendFrameHeader(nil, frameFence, 0, 0)
	var ncs [2]net.Conn
	var rest0 []byte
	for i := range ncs {
		nc, rest, err := rawDial(t, srvT.Addrs()[0], hsConfig{Node: node, LinkID: 7, Conn: uint8(i), Pool: 2, Version: versionFence})
		if err != nil {
			t.Fatal(err)
		}
		ncs[i] = nc
		if i == 0 {
			rest0 = rest
		}
	}
	srv.link(t)
	// The peer's heartbeats on the other connection.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	defer wg.Wait()
	defer close(stop)
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(10 * time.Millisecond):
			}
			if _, err := ncs[1].Write(appendPing(nil, 0)); err != nil {
				return
			}
		}
	})
	go io.Copy(io.Discard, ncs[1])

	ncs[0].Write(append(append(data(0), fenceFrame...), data(1)...))
	// Each heartbeat the writer of the waiting connection sends follows an
	// idle check of it: more of them than the idle timeout's ticks.
	ticks := int((cfg.IdleTimeout+cfg.HeartbeatInterval-1)/cfg.HeartbeatInterval) + 3
	ncs[0].SetReadDeadline(time.Now().Add(30 * time.Second))
	fr := frameReader{r: ioMulti(rest0, ncs[0]), max: 1 << 20}
	for pings := 0; pings < ticks; {
		typ, flags, p, err := fr.next()
		if err != nil {
			t.Fatal(err)
		}
		switch typ {
		case framePing:
			pings++
		case frameClose:
			_, _, reason := parseClose(flags, p)
			t.Fatalf("the link closed while a reader waited at a fence frame: %v", reason)
		}
	}
	select {
	case err := <-srv.downCh:
		t.Fatalf("the link went down while a reader waited at a fence frame: %v", err)
	default:
	}
	srv.mu.Lock()
	got := append([]int(nil), srv.tells["a"]...)
	srv.mu.Unlock()
	if !reflect.DeepEqual(got, []int{0}) {
		t.Fatalf("a's tells %v before the other fence frame, want [0]", got)
	}
	ncs[1].Write(fenceFrame)
	deadline := time.Now().Add(30 * time.Second)
	for {
		srv.mu.Lock()
		got = append([]int(nil), srv.tells["a"]...)
		srv.mu.Unlock()
		if reflect.DeepEqual(got, []int{0, 1}) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a's tells %v after the other fence frame, want [0 1]", got)
		}
		time.Sleep(time.Millisecond)
	}
}
