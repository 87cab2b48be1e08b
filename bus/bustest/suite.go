package bustest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/xbus-dev/xbus/bus"
	"github.com/xbus-dev/xbus/mailbox"
)

// Pair is two buses linked through the transport under test, and the means
// to break and heal the link between them.
type Pair struct {
	A, B *bus.Bus
	// Break partitions A from B: it ends every link between them, as the
	// death of B's process or of the network between them would, and keeps
	// them from linking again until Heal. When it returns, both buses have
	// seen the links go down (Host.LinkDown).
	Break func()
	// Heal ends the partition; A links to B again (by itself or through
	// Heal), and the suite waits until A reaches B's actors.
	Heal func()
}

// Maker builds the Pair for one test. It creates A with the options in a
// and B with those in b, adding its transport (bus.WithTransport), makes A
// link to B, and closes both when t ends (t.Cleanup). The suite waits for
// the link itself.
type Maker func(t *testing.T, a, b []bus.Option) Pair

// NewBus is a Maker's helper: it creates a bus with opts on tr
// (bus.WithTransport) and closes it, within ten seconds, when t ends.
func NewBus(t testing.TB, tr bus.Transport, opts ...bus.Option) *bus.Bus {
	t.Helper()
	b, err := bus.New(append(opts, bus.WithTransport(tr))...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		b.Close(ctx)
	})
	return b
}

// WaitLinks polls b.Links until ok holds for them, failing t with what after
// ten seconds.
func WaitLinks(t testing.TB, b *bus.Bus, what string, ok func([]bus.LinkInfo) bool) {
	t.Helper()
	for range 2000 {
		if ok(b.Links()) {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("%s: links %+v", what, b.Links())
}

// Kept reports whether links include addr: a link up to it, or a kept
// address that has none. WaitLinks takes it, or its negation.
func Kept(links []bus.LinkInfo, addr string) bool {
	return slices.ContainsFunc(links, func(l bus.LinkInfo) bool { return l.Addr == addr })
}

// Message types the suite sends between its buses. Both register Msg; only
// A registers Unregistered.
type (
	// Msg is a struct body that must survive the link's codec.
	Msg struct {
		Seq  int
		Text string
	}
	// Unregistered is a body type B has not registered.
	Unregistered struct{ X int }
	// Shape is registered on A; B registers shapeB, whose field does not
	// take what A sends, under the same name.
	Shape  struct{ X string }
	shapeB struct{ X int }
)

// ErrInsufficientFunds is an application error both buses register
// (Types.RegisterError), so that it keeps its identity across a link.
var ErrInsufficientFunds = errors.New("bustest: insufficient funds")

// suiteTimeout bounds every wait of the suite: a failure, never a pass,
// costs this much.
const suiteTimeout = 20 * time.Second

// TestTransport runs the conformance suite over the transport mk links A and
// B with. Each case is a subtest with a fresh Pair.
func TestTransport(t *testing.T, mk Maker) {
	run(t, mk, false)
}

type suiteCase struct {
	name  string
	local bool // applies in process, to two actors of one bus
	f     func(t *testing.T, s *suite)
}

var cases = []suiteCase{
	{name: "Order", local: true, f: testOrder},
	{name: "AskReply", local: true, f: testAskReply},
	{name: "LargeBody", local: true, f: testLargeBody},
	{name: "ErrorsCross", local: true, f: testErrorsCross},
	{name: "Deadline", local: true, f: testDeadline},
	{name: "UnknownType", f: testUnknownType},
	{name: "FullMailbox", f: testFullMailbox},
	{name: "SlowSubscriber", f: testSlowSubscriber},
	{name: "CloseDrains", f: testCloseDrains},
	{name: "LinkDeathAndRelink", f: testLinkDeath},
	{name: "WatchPeerDeath", f: testWatchPeerDeath},
	{name: "WatchStop", local: true, f: testWatchStop},
}

// run runs the cases; in process (A == B) only those marked local.
func run(t *testing.T, mk Maker, inProcess bool) {
	for _, c := range cases {
		if inProcess && !c.local {
			continue
		}
		t.Run(c.name, func(t *testing.T) {
			c.f(t, newSuite(t, mk))
		})
	}
}

// suite is one case's pair with helpers.
type suite struct {
	Pair
	t       *testing.T
	release chan struct{} // closed at the end of the case: blocked actors return
}

func newSuite(t *testing.T, mk Maker) *suite {
	ta, tb := bus.NewTypes(), bus.NewTypes()
	for _, ts := range []*bus.Types{ta, tb} {
		if err := bus.RegisterType[Msg](ts, "bustest.msg"); err != nil {
			t.Fatal(err)
		}
	}
	for _, ts := range []*bus.Types{ta, tb} {
		if err := ts.RegisterError("bustest.insufficient-funds", ErrInsufficientFunds); err != nil {
			t.Fatal(err)
		}
	}
	if err := bus.RegisterType[Unregistered](ta, "bustest.unregistered"); err != nil {
		t.Fatal(err)
	}
	if err := bus.RegisterType[Shape](ta, "bustest.shape"); err != nil {
		t.Fatal(err)
	}
	if err := bus.RegisterType[shapeB](tb, "bustest.shape"); err != nil {
		t.Fatal(err)
	}
	p := mk(t, []bus.Option{bus.WithName("a"), bus.WithTypes(ta)}, []bus.Option{bus.WithName("b"), bus.WithTypes(tb)})
	if p.A == nil || p.B == nil {
		t.Fatal("bustest: the Maker returned a Pair without both buses")
	}
	if p.A != p.B && (p.Break == nil || p.Heal == nil) {
		t.Fatal("bustest: the Maker returned a Pair without Break and Heal")
	}
	s := &suite{Pair: p, t: t, release: make(chan struct{})}
	t.Cleanup(func() { close(s.release) }) // before the Maker's cleanups close the buses
	return s
}

func (s *suite) ctx() context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), suiteTimeout)
	s.t.Cleanup(cancel)
	return ctx
}

// register starts an actor on B and waits until A can reach its name.
func (s *suite) register(name string, a bus.Actor, opts ...bus.ActorOption) bus.Ref {
	s.t.Helper()
	ref, err := s.B.Register(name, a, opts...)
	if err != nil {
		s.t.Fatalf("register %s: %v", name, err)
	}
	s.waitFor(name)
	return ref
}

func (s *suite) waitFor(name string) {
	s.t.Helper()
	if err := s.A.WaitFor(s.ctx(), name); err != nil {
		s.t.Fatalf("%s never reachable from A: %v", name, err)
	}
}

// echo answers every ask with its message.
func echo(c *bus.Context, msg any) error {
	if !c.IsAsk() {
		return nil
	}
	return c.Reply(msg)
}

// testOrder: the tells of one sender to one actor arrive in the order sent,
// for two senders interleaved on one link (a goroutine and an actor of A),
// none lost. The sink's mailbox holds them all: a node refuses, rather than
// waits for, what a full mailbox cannot take (see FullMailbox).
func testOrder(t *testing.T, s *suite) {
	const n = 2000 // per sender; the sink holds 8192
	var mu sync.Mutex
	got := map[string][]int{}
	s.register("sink", bus.ActorFunc(func(c *bus.Context, msg any) error {
		switch m := msg.(type) {
		case Msg:
			mu.Lock()
			got[m.Text] = append(got[m.Text], m.Seq)
			mu.Unlock()
		case string: // "count"
			mu.Lock()
			defer mu.Unlock()
			return c.Reply(len(got["outside"]) + len(got["actor"]))
		}
		return nil
	}), bus.WithMailbox(mailbox.Options{Capacity: 8192}))
	actorDone := make(chan error, 1)
	sender, err := s.A.Spawn(bus.ActorFunc(func(c *bus.Context, msg any) error {
		if msg == "go" {
			for i := range n {
				if err := c.Tell("sink", Msg{Seq: i, Text: "actor"}); err != nil {
					actorDone <- err
					return nil
				}
			}
			actorDone <- nil
		}
		return nil
	}))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.A.Tell(sender, "go"); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if err := s.A.Tell("sink", Msg{Seq: i, Text: "outside"}); err != nil {
			t.Fatalf("tell %d: %v", i, err)
		}
	}
	if err := <-actorDone; err != nil {
		t.Fatalf("tell from an actor: %v", err)
	}
	ctx := s.ctx()
	for {
		c, err := bus.AskAs[int](ctx, s.A, "sink", "count")
		if err != nil {
			t.Fatalf("count: %v", err)
		}
		if c == 2*n {
			break
		}
		time.Sleep(time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	for who, seqs := range got {
		for i, v := range seqs {
			if v != i {
				t.Fatalf("%s's tells: #%d is %d, want %d (out of order or lost)", who, i, v, i)
			}
		}
	}
}

// testAskReply: asks by name and by Ref get their own replies, many at once.
func testAskReply(t *testing.T, s *suite) {
	ref := s.register("echo", bus.ActorFunc(echo))
	ctx := s.ctx()
	if r, err := bus.AskAs[Msg](ctx, s.A, "echo", Msg{Seq: 7, Text: "by name"}); err != nil || r != (Msg{7, "by name"}) {
		t.Fatalf("ask by name: %v, %v", r, err)
	}
	if r, err := bus.AskAs[string](ctx, s.A, ref, "by ref"); err != nil || r != "by ref" {
		t.Fatalf("ask by Ref: %q, %v", r, err)
	}
	const asks = 200
	errs := make(chan error, asks)
	for i := range asks {
		go func() {
			r, err := bus.AskAs[Msg](ctx, s.A, "echo", Msg{Seq: i})
			if err == nil && r.Seq != i {
				err = fmt.Errorf("ask %d got the reply to %d", i, r.Seq)
			}
			errs <- err
		}()
	}
	for range asks {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}

// testLargeBody: bodies far larger than a frame, a ring record or a
// socket buffer cross intact, both ways, several at once.
func testLargeBody(t *testing.T, s *suite) {
	s.register("echo", bus.ActorFunc(echo))
	ctx := s.ctx()
	errs := make(chan error, 4)
	for i := range 4 {
		go func() {
			body := make([]byte, 1<<20+i*4099)
			for j := range body {
				body[j] = byte(j*7 + i)
			}
			r, err := bus.AskAs[[]byte](ctx, s.A, "echo", body)
			if err == nil && !bytes.Equal(r, body) {
				err = fmt.Errorf("a %d-byte body came back altered (%d bytes)", len(body), len(r))
			}
			errs <- err
		}()
	}
	for range 4 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}

// testErrorsCross: an error an actor answers with reaches the asker and
// matches with errors.Is: the bus's sentinels, and an application error
// both sides registered, wrapped or not; an application error nobody
// registered arrives with its text and CodeApplication; a failing actor is
// ErrActorFailed; an ask to a Ref that is gone is ErrNoRoute.
func testErrorsCross(t *testing.T, s *suite) {
	unregistered := errors.New("bustest: an error nobody registered")
	s.register("errs", bus.ActorFunc(func(c *bus.Context, msg any) error {
		switch msg {
		case "sentinel":
			c.ReplyError(fmt.Errorf("no such account: %w", bus.ErrUnsupported))
		case "app":
			c.ReplyError(ErrInsufficientFunds)
		case "wrapped":
			c.ReplyError(fmt.Errorf("paying 12: %w", ErrInsufficientFunds))
		case "unregistered":
			c.ReplyError(unregistered)
		case "fail":
			return errors.New("broken")
		}
		return nil
	}))
	ctx := s.ctx()
	if _, err := s.A.Ask(ctx, "errs", "sentinel"); !errors.Is(err, bus.ErrUnsupported) {
		t.Fatalf("sentinel: %v, want ErrUnsupported", err)
	}
	for _, m := range []string{"app", "wrapped"} {
		_, err := s.A.Ask(ctx, "errs", m)
		if !errors.Is(err, ErrInsufficientFunds) {
			t.Fatalf("%s application error: %v, want ErrInsufficientFunds", m, err)
		}
		if errors.Is(err, bus.ErrUnsupported) || bus.CodeOf(err) != bus.CodeApplication {
			t.Fatalf("%s application error %v matches a bus sentinel (code %d)", m, err, bus.CodeOf(err))
		}
	}
	_, err := s.A.Ask(ctx, "errs", "unregistered")
	if err == nil || bus.CodeOf(err) != bus.CodeApplication || errors.Is(err, ErrInsufficientFunds) {
		t.Fatalf("unregistered application error: %v (code %d), want CodeApplication", err, bus.CodeOf(err))
	}
	if !strings.Contains(err.Error(), unregistered.Error()) {
		t.Fatalf("unregistered application error %q lost its text %q", err, unregistered)
	}
	if _, err := s.A.Ask(ctx, "errs", "fail"); !errors.Is(err, bus.ErrActorFailed) {
		t.Fatalf("failing actor: %v, want ErrActorFailed", err)
	}
	gone := s.register("gone", bus.ActorFunc(echo))
	if err := s.B.Stop(gone); err != nil {
		t.Fatal(err)
	}
	if _, err := s.A.Ask(ctx, gone, "hi"); !errors.Is(err, bus.ErrNoRoute) {
		t.Fatalf("ask to a stopped actor's Ref: %v, want ErrNoRoute", err)
	}
}

// testDeadline: an ask that gets no reply within its deadline fails with
// ErrDeadline, and the actor working on it sees that the asker gave up;
// across a link it also sees the deadline. An ask whose deadline passes
// before the actor's turn (a loaded machine) never runs the actor and is a
// dead letter, on A if it never left, on B if it did: the case then asks
// again with a longer deadline.
func testDeadline(t *testing.T, s *suite) {
	for try, d := 0, 100*time.Millisecond; ; try, d = try+1, 4*d {
		sawDeadline := make(chan bool, 1)
		canceled := make(chan struct{})
		name := fmt.Sprintf("slow%d", try)
		s.register(name, bus.ActorFunc(func(c *bus.Context, msg any) error {
			if msg != "work" {
				return nil
			}
			_, ok := c.Deadline()
			sawDeadline <- ok
			for !c.Canceled() {
				select {
				case <-s.release:
					return nil
				case <-time.After(time.Millisecond):
				}
			}
			close(canceled)
			return nil
		}))
		expired := s.A.DeadLetterCount(bus.ErrDeadline) + s.B.DeadLetterCount(bus.ErrDeadline)
		ctx, cancel := context.WithTimeout(context.Background(), d)
		_, err := s.A.Ask(ctx, name, "work")
		cancel()
		if !errors.Is(err, bus.ErrDeadline) {
			t.Fatalf("ask past its deadline: %v, want ErrDeadline", err)
		}
		ran, ok := false, false
		s.eventually("the slow actor ran or its ask expired unrun", func() bool {
			select {
			case ok = <-sawDeadline:
				ran = true
				return true
			default:
				return s.A.DeadLetterCount(bus.ErrDeadline)+s.B.DeadLetterCount(bus.ErrDeadline) > expired
			}
		})
		if !ran {
			continue // expired before the actor's turn
		}
		if !ok && s.A != s.B {
			t.Fatal("the ask's deadline did not cross the link")
		}
		select {
		case <-canceled:
		case <-s.ctx().Done():
			t.Fatal("the actor never saw its asker give up")
		}
		return
	}
}

// eventually waits until cond holds, polling; it fails the case after
// suiteTimeout.
func (s *suite) eventually(what string, cond func() bool) {
	s.t.Helper()
	ctx := s.ctx()
	for !cond() {
		select {
		case <-ctx.Done():
			s.t.Fatalf("never: %s", what)
		case <-time.After(time.Millisecond):
		}
	}
}

// testUnknownType: a body B cannot decode (a type it has not registered, or
// bytes its type does not take) fails its ask at once with ErrUnknownType or
// ErrBadEnvelope, is a dead letter on B, tell or ask, and the link stays up.
func testUnknownType(t *testing.T, s *suite) {
	s.register("echo", bus.ActorFunc(echo))
	ctx := s.ctx()
	if _, err := s.A.Ask(ctx, "echo", Unregistered{X: 1}); !errors.Is(err, bus.ErrUnknownType) {
		t.Fatalf("ask with an unregistered body: %v, want ErrUnknownType", err)
	}
	if _, err := s.A.Ask(ctx, "echo", Shape{X: "not a number"}); !errors.Is(err, bus.ErrBadEnvelope) {
		t.Fatalf("ask with a body that does not decode: %v, want ErrBadEnvelope", err)
	}
	if err := s.A.Tell("echo", Unregistered{X: 2}); err != nil {
		t.Fatalf("tell with an unregistered body: %v", err)
	}
	if err := s.A.Tell("echo", Shape{X: "still not"}); err != nil {
		t.Fatalf("tell with a body that does not decode: %v", err)
	}
	s.eventually("B counts two dead letters of each", func() bool {
		return s.B.DeadLetterCount(bus.ErrUnknownType) == 2 && s.B.DeadLetterCount(bus.ErrBadEnvelope) == 2
	})
	if r, err := s.A.Ask(ctx, "echo", Msg{Seq: 1}); err != nil || r != (Msg{Seq: 1}) {
		t.Fatalf("ask after the undecodable bodies: %v, %v", r, err)
	}
}

// testFullMailbox: with one actor on B stuck in Receive and its mailbox
// full (the default Block policy), a remote ask to it is refused at once
// with ErrMailboxFull and asks to another actor of B keep succeeding. The
// ledger is exact: every tell is processed once the actor moves on, or is a
// dead letter on B, as is the refused ask.
func testFullMailbox(t *testing.T, s *suite) {
	const capacity, over = 4, 3
	stuck := make(chan struct{}, 1)
	unstick := make(chan struct{})
	var processed atomic.Int64
	s.register("busy", bus.ActorFunc(func(c *bus.Context, msg any) error {
		switch msg.(type) {
		case string:
			stuck <- struct{}{}
			select {
			case <-unstick:
			case <-s.release:
			}
		case int:
			processed.Add(1)
		}
		return nil
	}), bus.WithMailbox(mailbox.Options{Capacity: capacity}))
	s.register("echo", bus.ActorFunc(echo))
	ctx := s.ctx()
	if err := s.A.Tell("busy", "block"); err != nil {
		t.Fatal(err)
	}
	select {
	case <-stuck:
	case <-ctx.Done():
		t.Fatal("busy never received its first tell")
	}
	for i := range capacity + over {
		if err := s.A.Tell("busy", i); err != nil {
			t.Fatalf("tell %d: %v", i, err)
		}
	}
	// Once B has refused the tells its mailbox could not take, it is full
	// (the tells may travel apart from the ask, as over a pool of
	// connections).
	s.eventually("B refuses the tells the mailbox cannot take", func() bool {
		return s.B.DeadLetterCount(bus.ErrMailboxFull) == over
	})
	if _, err := s.A.Ask(ctx, "busy", 99); !errors.Is(err, bus.ErrMailboxFull) {
		t.Fatalf("ask to a full mailbox: %v, want ErrMailboxFull", err)
	}
	for i := range 10 {
		if r, err := s.A.Ask(ctx, "echo", i); err != nil || r != i {
			t.Fatalf("ask %d to another actor of B: %v, %v", i, r, err)
		}
	}
	if n := processed.Load(); n != 0 {
		t.Fatalf("busy processed %d messages while stuck", n)
	}
	close(unstick)
	s.eventually("busy processes what its mailbox held", func() bool { return processed.Load() == capacity })
	if n := s.B.DeadLetterCount(bus.ErrMailboxFull); n != over+1 {
		t.Fatalf("B counts %d dead letters for a full mailbox, want %d: the tells it could not take and the ask", n, over+1)
	}
}

// testSlowSubscriber: a subscriber on B that never reads does not stall the
// link: A's publishes return (SlowDropOldest) or wait up to their ctx
// (SlowBlock), another subscriber on B gets every message in order, and
// asks to B keep succeeding.
func testSlowSubscriber(t *testing.T, s *suite) {
	ctx := s.ctx()
	slow, err := s.B.Subscribe(ctx, "ticks.n", bus.WithWindow(1), bus.WithSlowPolicy(bus.SlowDropOldest))
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	blocked, err := s.B.Subscribe(ctx, "blocked", bus.WithWindow(1)) // SlowBlock, never read
	if err != nil {
		t.Fatal(err)
	}
	defer blocked.Close()
	const n = 500
	fast, err := s.B.Subscribe(ctx, "ticks.>", bus.WithWindow(2*n))
	if err != nil {
		t.Fatal(err)
	}
	s.register("echo", bus.ActorFunc(echo))
	// Until A has heard of B's subscriptions it publishes to nobody.
	s.eventually("A publishes to B's subscribers", func() bool {
		if err := s.A.Publish("ticks.probe", -1); err != nil {
			t.Fatalf("publish: %v", err)
		}
		c, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
		defer cancel()
		_, err := fast.Next(c)
		return err == nil
	})
	s.eventually("A's publisher waiting for the blocked subscriber", func() bool {
		c, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
		defer cancel()
		err := s.A.PublishContext(c, "blocked", 0)
		if err != nil && !errors.Is(err, bus.ErrDeadline) {
			t.Fatalf("publish to the blocked subscriber: %v", err)
		}
		return err != nil
	})
	for i := range n {
		if err := s.A.Publish("ticks.n", i); err != nil {
			t.Fatalf("publish %d: %v", i, err)
		}
	}
	for want := 0; want < n; {
		m, err := fast.Next(ctx)
		if err != nil {
			t.Fatalf("fast subscriber after %d of %d: %v", want, n, err)
		}
		if m.Subject == "ticks.probe" {
			continue
		}
		if m.Msg != want {
			t.Fatalf("fast subscriber: message %v, want %d", m.Msg, want)
		}
		want++
	}
	if r, err := s.A.Ask(ctx, "echo", "through"); err != nil || r != "through" {
		t.Fatalf("ask past a slow subscriber: %v, %v", r, err)
	}
	// Now the slow one reads: it gets messages in order, the newest last,
	// and every other one is a dead letter on A (dropped there, out of
	// credit) or B.
	delivered, last := uint64(0), -1
	for last != n-1 {
		m, err := slow.Next(ctx)
		if err != nil {
			t.Fatalf("slow subscriber after %d: %v", last, err)
		}
		if m.Msg.(int) <= last {
			t.Fatalf("slow subscriber: message %v after %d", m.Msg, last)
		}
		last = m.Msg.(int)
		delivered++
	}
	dropped := s.A.DeadLetterCount(bus.ErrSlowConsumer) + s.B.DeadLetterCount(bus.ErrSlowConsumer)
	if delivered+dropped != n {
		t.Fatalf("the slow subscriber got %d, %d dead letters: %d of %d", delivered, dropped, delivered+dropped, n)
	}
	if blocked.Dropped() != 0 {
		t.Fatalf("the blocked subscriber dropped %d", blocked.Dropped())
	}
}

// testCloseDrains: B's graceful Close finishes what its actors were given
// first: every tell queued on B is processed, and an ask being worked on
// gets its reply.
func testCloseDrains(t *testing.T, s *suite) {
	const tells = 100
	started := make(chan struct{})
	finish := make(chan struct{})
	var processed atomic.Int64
	s.register("worker", bus.ActorFunc(func(c *bus.Context, msg any) error {
		switch msg.(type) {
		case string:
			close(started)
			<-finish
			return c.Reply("done")
		case int:
			processed.Add(1)
		}
		return nil
	}), bus.WithMailbox(mailbox.Options{Capacity: 256}))
	ctx := s.ctx()
	asked := make(chan error, 1)
	go func() {
		r, err := s.A.Ask(ctx, "worker", "work")
		if err == nil && r != "done" {
			err = fmt.Errorf("reply %v", r)
		}
		asked <- err
	}()
	<-started
	// One sender (an actor of A) tells, then asks echo: when echo answers,
	// the tells, sent before on the same path, are queued on B.
	s.register("echo", bus.ActorFunc(echo))
	synced := make(chan error, 1)
	if _, err := s.A.Spawn(bus.ActorFunc(func(c *bus.Context, msg any) error {
		if _, ok := msg.(bus.Started); !ok {
			return nil
		}
		for i := range tells {
			if err := c.Tell("worker", i); err != nil {
				synced <- err
				return nil
			}
		}
		c.Ask(ctx, "echo", "sync", func(_ any, err error) { synced <- err })
		return nil
	})); err != nil {
		t.Fatal(err)
	}
	if err := <-synced; err != nil {
		t.Fatalf("tells, then an ask behind them: %v", err)
	}
	closed := make(chan error, 1)
	go func() { closed <- s.B.Close(ctx) }()
	close(finish)
	// Close finishes the request in flight: its actor replies before the
	// link goes, and the reply, sent before the link's close, arrives.
	if err := <-asked; err != nil {
		t.Fatalf("ask being worked on when B closed: %v, want its reply", err)
	}
	if err := <-closed; err != nil {
		t.Fatalf("close: %v", err)
	}
	if n := processed.Load(); n != tells {
		t.Fatalf("B processed %d of the %d tells queued before Close", n, tells)
	}
}

// testLinkDeath: an ask in flight when the link dies fails with ErrPeerGone;
// once A and B link again, asks work again, by name and by the old Ref.
func testLinkDeath(t *testing.T, s *suite) {
	got := make(chan struct{}, 1)
	s.register("hold", bus.ActorFunc(func(c *bus.Context, msg any) error {
		if msg == "hold" {
			got <- struct{}{}
			<-s.release
		}
		return nil
	}))
	ref := s.register("echo", bus.ActorFunc(echo))
	ctx := s.ctx()
	asked := make(chan error, 1)
	go func() {
		_, err := s.A.Ask(ctx, "hold", "hold")
		asked <- err
	}()
	select {
	case <-got:
	case <-ctx.Done():
		t.Fatal("the held ask never reached B")
	}
	s.Break()
	select {
	case err := <-asked:
		if !errors.Is(err, bus.ErrPeerGone) {
			t.Fatalf("ask in flight when the link died: %v, want ErrPeerGone", err)
		}
	case <-ctx.Done():
		t.Fatal("the ask in flight did not return when the link died")
	}
	s.Heal()
	s.waitFor("echo")
	if r, err := s.A.Ask(ctx, "echo", "again"); err != nil || r != "again" {
		t.Fatalf("ask by name after relink: %v, %v", r, err)
	}
	if r, err := s.A.Ask(ctx, ref, "by ref"); err != nil || r != "by ref" {
		t.Fatalf("ask by Ref after relink: %v, %v", r, err)
	}
}

// watcher spawns an actor on A that watches ref and returns the channel its
// Terminated arrives on.
func (s *suite) watcher(ref bus.Ref) <-chan bus.Terminated {
	s.t.Helper()
	out := make(chan bus.Terminated, 1)
	watching := make(chan struct{})
	_, err := s.A.Spawn(bus.ActorFunc(func(c *bus.Context, msg any) error {
		switch m := msg.(type) {
		case bus.Started:
			c.Watch(ref)
			close(watching)
		case bus.Terminated:
			out <- m
		}
		return nil
	}))
	if err != nil {
		s.t.Fatal(err)
	}
	<-watching
	return out
}

func (s *suite) terminated(ch <-chan bus.Terminated, ref bus.Ref, want error) {
	s.t.Helper()
	select {
	case m := <-ch:
		if m.Ref != ref || !errors.Is(m.Reason, want) {
			s.t.Fatalf("Terminated %+v, want %v with a reason matching %v", m, ref, want)
		}
	case <-s.ctx().Done():
		s.t.Fatalf("no Terminated for %v", ref)
	}
}

// testWatchPeerDeath: a watcher of a remote actor hears when its node
// becomes unreachable.
func testWatchPeerDeath(t *testing.T, s *suite) {
	ref := s.register("target", bus.ActorFunc(echo))
	ch := s.watcher(ref)
	s.Break()
	s.terminated(ch, ref, bus.ErrPeerGone)
}

// testWatchStop: a watcher hears when the actor it watches stops while its
// node lives on; the reason is not the node's death.
func testWatchStop(t *testing.T, s *suite) {
	ref := s.register("target", bus.ActorFunc(echo))
	ch := s.watcher(ref)
	if err := s.B.Stop(ref); err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-ch:
		if m.Ref != ref || errors.Is(m.Reason, bus.ErrPeerGone) {
			t.Fatalf("Terminated %+v, want %v stopped (not its node gone)", m, ref)
		}
	case <-s.ctx().Done():
		t.Fatalf("no Terminated when %v stopped", ref)
	}
}
