package bus_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/xbus-dev/xbus/bus"
	"github.com/xbus-dev/xbus/codec"
	"github.com/xbus-dev/xbus/internal/race"
	"github.com/xbus-dev/xbus/mailbox"
)

// batchLink is a link whose envelopes the test hands the bus itself, with
// DeliverBatch; what the bus sends back on it (refusals, replies) is kept.
type batchLink struct {
	peer bus.NodeID
	mu   sync.Mutex
	sent []bus.Envelope // header fields and Msg of each envelope the bus sent
	shut error          // the error the bus closed l with, if it did
}

func (l *batchLink) Peer() bus.NodeID       { return l.peer }
func (l *batchLink) Locality() bus.Locality { return bus.SameHost }
func (l *batchLink) Scheme() string         { return "mem" }
func (l *batchLink) Codec() bus.Codec       { return codec.Binary() }

func (l *batchLink) Close(err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.shut == nil {
		l.shut = err
	}
}

func (l *batchLink) closed() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.shut
}

func (l *batchLink) Send(_ context.Context, env *bus.Envelope) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	e := *env
	e.Body = nil
	l.sent = append(l.sent, e)
	return nil
}

// answers returns the replies and errors sent on l, by correlation id.
func (l *batchLink) answers() map[uint64]bus.Envelope {
	l.mu.Lock()
	defer l.mu.Unlock()
	m := map[uint64]bus.Envelope{}
	for _, e := range l.sent {
		if e.Kind == bus.KindReply || e.Kind == bus.KindError {
			m[e.Corr] = e
		}
	}
	return m
}

// wire encodes env's Msg as a peer would, into Type and Body.
func wire(t *testing.T, b *bus.Bus, env bus.Envelope) bus.Envelope {
	t.Helper()
	body, err := b.Types().EncodeBody(codec.Binary(), &env, nil)
	if err != nil {
		t.Fatal(err)
	}
	env.Body, env.Msg = body, nil
	return env
}

// logActor keeps every string it receives, in order, and answers asks
// with "ok".
type logActor struct {
	mu   sync.Mutex
	got  []string
	in   chan struct{} // if set: told of each message, and Receive waits on gate
	gate chan struct{}
}

func (a *logActor) Receive(c *bus.Context, msg any) error {
	s, ok := msg.(string)
	if !ok {
		return nil
	}
	a.mu.Lock()
	a.got = append(a.got, s)
	a.mu.Unlock()
	if a.in != nil {
		a.in <- struct{}{}
		<-a.gate
	}
	if c.IsAsk() {
		return c.Reply("ok")
	}
	return nil
}

func (a *logActor) log() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.got)
}

// TestDeliverBatch hands the bus one batch mixing tells and asks to two
// actors, a name nobody serves, a body that does not decode and a reply
// nobody waits for: each actor receives its messages in order, each one
// that cannot be delivered is a dead letter with its reason, and each ask
// is answered on the link.
func TestDeliverBatch(t *testing.T) {
	b := newTestBus(t)
	a1, a2 := &logActor{}, &logActor{}
	if _, err := b.Register("a1", a1); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Register("a2", a2); err != nil {
		t.Fatal(err)
	}
	l := &batchLink{peer: bus.NewNodeID()}
	from := bus.Ref{Node: l.peer, Name: "sender", ID: 1}
	tell := func(to, msg string) bus.Envelope {
		return wire(t, b, bus.Envelope{Kind: bus.KindTell, From: from, To: bus.Ref{Name: to}, Msg: msg})
	}
	ask := func(to, msg string, corr uint64) bus.Envelope {
		return wire(t, b, bus.Envelope{Kind: bus.KindAsk, From: from, To: bus.Ref{Name: to}, Msg: msg, Corr: corr, Timeout: time.Minute})
	}
	bad := tell("a1", "x")
	bad.Body = []byte{0xff, 0xfe} // not a string in the binary codec
	envs := []bus.Envelope{
		tell("a1", "1"), tell("a1", "2"), ask("a1", "3", 7), tell("a2", "1"),
		tell("nobody", "lost"), tell("a1", "4"), bad,
		wire(t, b, bus.Envelope{Kind: bus.KindReply, Corr: 99, Msg: "late"}), // no ask waits for it
		tell("a2", "2"), ask("nobody", "?", 8), tell("a1", "5"),
	}
	b.DeliverBatch(l, envs)
	for i, e := range envs {
		if e.Msg != nil || e.Body != nil {
			t.Fatalf("envelope %d left with Msg %v, Body %v", i, e.Msg, e.Body)
		}
	}
	eventually(t, "every message handled", func() error {
		if got, want := a1.log(), []string{"1", "2", "3", "4", "5"}; !slices.Equal(got, want) {
			return errors.New("a1 has " + join(got))
		}
		if got, want := a2.log(), []string{"1", "2"}; !slices.Equal(got, want) {
			return errors.New("a2 has " + join(got))
		}
		if len(l.answers()) != 2 {
			return errors.New("not every ask answered")
		}
		return nil
	})
	ans := l.answers()
	if r := ans[7]; r.Kind != bus.KindReply || r.Msg != "ok" {
		t.Fatalf("answer to the ask of a1: %v %v", r.Kind, r.Msg)
	}
	if r := ans[8]; r.Kind != bus.KindError {
		t.Fatalf("answer to the ask of nobody: %v %v, want an error", r.Kind, r.Msg)
	}
	// "lost", the ask of nobody and the body that does not decode.
	if n := b.DeadLetterCount(bus.ErrNoRoute); n != 2 {
		t.Fatalf("%d dead letters for want of a route, want 2", n)
	}
	if n := b.DeadLetters(); n != 3 {
		t.Fatalf("%d dead letters, want 3", n)
	}
}

// TestDeliverBatchFullMailbox hands a batch to an actor whose mailbox has
// room for part of it: the bus queues what fits, in order, refuses the rest
// at once (a dead letter each, an error answer to each ask) and does not
// wait for the actor, which is blocked in a message meanwhile.
func TestDeliverBatchFullMailbox(t *testing.T) {
	b := newTestBus(t)
	a := &logActor{in: make(chan struct{}, 64), gate: make(chan struct{})}
	if _, err := b.Register("slow", a, bus.WithMailbox(mailbox.Options{Capacity: 4})); err != nil {
		t.Fatal(err)
	}
	l := &batchLink{peer: bus.NewNodeID()}
	to := bus.Ref{Name: "slow"}
	env := func(kind bus.Kind, msg string, corr uint64) bus.Envelope {
		return wire(t, b, bus.Envelope{Kind: kind, To: to, Msg: msg, Corr: corr})
	}
	b.DeliverBatch(l, []bus.Envelope{env(bus.KindTell, "0", 0)})
	<-a.in // the actor is in its first message; its mailbox is empty
	var envs []bus.Envelope
	for i := 1; i <= 10; i++ {
		kind, corr := bus.KindTell, uint64(0)
		if i%3 == 0 {
			kind, corr = bus.KindAsk, uint64(i)
		}
		envs = append(envs, env(kind, string(rune('0'+i%10)), corr))
	}
	b.DeliverBatch(l, envs) // returns although the actor is blocked
	if n := b.DeadLetterCount(bus.ErrMailboxFull); n != 6 {
		t.Fatalf("%d dead letters for a full mailbox, want 6", n)
	}
	ans := l.answers()
	for _, corr := range []uint64{6, 9} {
		if r := ans[corr]; r.Kind != bus.KindError {
			t.Fatalf("ask %d, refused: answer %v, want an error", corr, r.Kind)
		}
	}
	close(a.gate)
	eventually(t, "what was queued handled", func() error {
		if got, want := a.log(), []string{"0", "1", "2", "3", "4"}; !slices.Equal(got, want) {
			return errors.New("the actor has " + join(got))
		}
		if r := l.answers()[3]; r.Kind != bus.KindReply {
			return errors.New("the queued ask is not answered")
		}
		return nil
	})
}

func join(s []string) string { return "[" + strings.Join(s, " ") + "]" }

// TestDeliverBatchAllocations: a batch of tells costs no allocation beyond
// what decoding their bodies does ([]byte bodies: one each), as many as
// delivering them one at a time.
func TestDeliverBatchAllocations(t *testing.T) {
	if race.Enabled {
		t.Skip("the race detector allocates")
	}
	b := newTestBus(t)
	var got atomic.Int64
	if _, err := b.Register("sink", bus.ActorFunc(func(*bus.Context, any) error { got.Add(1); return nil })); err != nil {
		t.Fatal(err)
	}
	l := &batchLink{peer: bus.NewNodeID()}
	one := wire(t, b, bus.Envelope{Kind: bus.KindTell, To: bus.Ref{Name: "sink"}, Msg: make([]byte, 64)})
	envs := make([]bus.Envelope, 16)
	var want int64
	deliver := func(batch bool) {
		for i := range envs {
			envs[i] = one
		}
		want += int64(len(envs))
		if batch {
			b.DeliverBatch(l, envs)
		} else {
			for i := range envs {
				b.Deliver(l, &envs[i])
			}
		}
		for got.Load() < want { // so that the mailbox never fills
			runtime.Gosched()
		}
	}
	for range 100 { // steady state: the ring exists, goroutines are pooled
		deliver(true)
	}
	batched := testing.AllocsPerRun(1000, func() { deliver(true) })
	single := testing.AllocsPerRun(1000, func() { deliver(false) })
	t.Logf("%v allocations per batch of %d, %v one at a time", batched, len(envs), single)
	if batched > single || batched > float64(len(envs)) {
		t.Fatalf("%v allocations per batch of %d tells, %v delivered one at a time; want at most %d", batched, len(envs), single, len(envs))
	}
}

// TestDeliverBatchNamedCodec: a body in a codec its envelope names decodes
// with that codec in a batch too, and one in a codec the bus lacks is
// refused with ErrUnknownCodec, alone.
func TestDeliverBatchNamedCodec(t *testing.T) {
	b := newTestBus(t)
	a := &logActor{}
	if _, err := b.Register("a", a); err != nil {
		t.Fatal(err)
	}
	l := &batchLink{peer: bus.NewNodeID()}
	from := bus.Ref{Node: l.peer, Name: "sender", ID: 1}
	in := func(c bus.Codec, msg string, corr uint64) bus.Envelope {
		env := bus.Envelope{Kind: bus.KindAsk, From: from, To: bus.Ref{Name: "a"}, Msg: msg, Corr: corr, Timeout: time.Minute}
		body, err := b.Types().EncodeBody(c, &env, nil)
		if err != nil {
			t.Fatal(err)
		}
		env.Body, env.Msg, env.Codec = body, nil, c.Name()
		return env
	}
	unknown := in(bus.JSON, "?", 3)
	unknown.Codec = "nobody-has-it"
	b.DeliverBatch(l, []bus.Envelope{in(bus.JSON, "json", 1), in(bus.Raw, "raw", 2), unknown, in(codec.Binary(), "cbor", 4)})
	eventually(t, "every ask answered", func() error {
		if n := len(l.answers()); n != 4 {
			return fmt.Errorf("%d answers", n)
		}
		return nil
	})
	if got := join(a.log()); got != "[json raw cbor]" {
		t.Fatalf("the actor received %s", got)
	}
	if e := l.answers()[3]; e.Kind != bus.KindError || !errors.Is(e.Msg.(error), bus.ErrUnknownCodec) {
		t.Fatalf("the ask in an unknown codec was answered %v %v", e.Kind, e.Msg)
	}
	if n := b.DeadLetterCount(bus.ErrUnknownCodec); n != 1 {
		t.Fatalf("%d dead letters for the unknown codec, want 1", n)
	}
}

// TestTellsFromPeersKeepTheirSenders: tells from many senders on two links
// (more senders than the bus keeps shared records for, so that they evict
// each other), some with headers, in a shuffled order: every message's
// Context shows its own sender and headers, and the record of each link's
// senders goes with the link.
func TestTellsFromPeersKeepTheirSenders(t *testing.T) {
	b := newTestBus(t)
	type seen struct {
		msg     string
		from    bus.Ref
		headers []bus.Header
	}
	var mu sync.Mutex
	var got []seen
	if _, err := b.Register("sink", bus.ActorFunc(func(c *bus.Context, msg any) error {
		s, ok := msg.(string)
		if !ok {
			return nil // Started
		}
		mu.Lock()
		got = append(got, seen{s, c.Sender(), slices.Clone(c.Headers())})
		mu.Unlock()
		return nil
	}), bus.WithMailbox(mailbox.Options{Capacity: 4096})); err != nil {
		t.Fatal(err)
	}
	links := []*batchLink{{peer: bus.NewNodeID()}, {peer: bus.NewNodeID()}}
	type sent struct {
		l   *batchLink
		env bus.Envelope
	}
	var all []sent
	for i := range 1000 {
		l := links[i%2]
		from := bus.Ref{Node: l.peer, Name: "s", ID: uint64(i/2 + 1)}
		for j := range 3 {
			env := bus.Envelope{Kind: bus.KindTell, From: from, To: bus.Ref{Name: "sink"}, Msg: fmt.Sprint(i, "/", j)}
			if (i+j)%7 == 0 {
				env.Headers = []bus.Header{{Key: "k", Value: fmt.Sprint(i, "/", j)}}
			}
			all = append(all, sent{l, wire(t, b, env)})
		}
	}
	rand.Shuffle(len(all), func(i, j int) { all[i], all[j] = all[j], all[i] })
	want := map[string]seen{}
	for i := 0; i < len(all); { // batches of up to 8, each from one link
		l := all[i].l
		var batch []bus.Envelope
		for ; i < len(all) && all[i].l == l && len(batch) < 8; i++ {
			env := all[i].env
			batch = append(batch, env)
			if err := b.Types().DecodeBody(codec.Binary(), &env); err != nil {
				t.Fatal(err)
			}
			want[env.Msg.(string)] = seen{env.Msg.(string), env.From, env.Headers}
		}
		b.DeliverBatch(l, batch)
	}
	eventually(t, "every tell handled", func() error {
		mu.Lock()
		defer mu.Unlock()
		if len(got) < len(want) {
			return fmt.Errorf("%d of %d handled", len(got), len(want))
		}
		return nil
	})
	for _, g := range got {
		w := want[g.msg]
		if g.from != w.from || !slices.Equal(g.headers, w.headers) {
			t.Fatalf("message %s: sender %v, headers %v; want %v, %v", g.msg, g.from, g.headers, w.from, w.headers)
		}
	}
	for _, l := range links {
		if bus.TellSourcesOf(b, l) == 0 {
			t.Fatal("no tell shares its sender's record")
		}
		b.LinkDown(l, nil)
		if n := bus.TellSourcesOf(b, l); n != 0 {
			t.Fatalf("%d shared records of a link that is down", n)
		}
	}
}

// TestDeliverBatchKeepsStepWithDeliver: the two ways a link hands the bus
// what it received must judge every envelope alike. One list, from a peer
// that also lies (tells and asks in another node's name, and in a name with
// no node), a body that does not decode and a name nobody serves, goes once
// through Deliver, one at a time, and once through DeliverBatch, each to a
// bus of its own: the actor receives the same messages, every ask gets the
// same answer (a refusal marked as one), the dead letters count the same
// by reason, and the lying peer's link is closed both times.
func TestDeliverBatchKeepsStepWithDeliver(t *testing.T) {
	type outcome struct {
		got     string
		answers map[uint64]string // kind and headers (a refusal's marks it never ran)
		dead    map[string]uint64
		closed  bool
	}
	run := func(batch bool) outcome {
		b := newTestBus(t)
		a := &logActor{}
		if _, err := b.Register("a", a); err != nil {
			t.Fatal(err)
		}
		l := &batchLink{peer: bus.NewNodeID()}
		own := bus.Ref{Node: l.peer, Name: "sender", ID: 1}
		other := bus.Ref{Node: bus.NewNodeID(), Name: "victim", ID: 2}
		msg := func(kind bus.Kind, from bus.Ref, to, s string, corr uint64) bus.Envelope {
			return wire(t, b, bus.Envelope{Kind: kind, From: from, To: bus.Ref{Name: to}, Msg: s, Corr: corr, Timeout: time.Minute})
		}
		bad := msg(bus.KindAsk, own, "a", "x", 5)
		bad.Body = []byte{0xff, 0xfe}
		envs := []bus.Envelope{
			msg(bus.KindTell, own, "a", "1", 0),
			msg(bus.KindTell, other, "a", "forged tell", 0),
			msg(bus.KindAsk, own, "a", "2", 1),
			msg(bus.KindAsk, other, "a", "forged ask", 2),
			msg(bus.KindAsk, bus.Ref{Name: "victim"}, "a", "nameless ask", 3),
			msg(bus.KindTell, own, "nobody", "lost", 0),
			bad,
			msg(bus.KindAsk, own, "nobody", "?", 4),
			msg(bus.KindTell, own, "a", "3", 0),
		}
		if batch {
			b.DeliverBatch(l, envs)
		} else {
			for i := range envs {
				b.Deliver(l, &envs[i])
			}
		}
		eventually(t, "every message handled", func() error {
			if n := len(l.answers()); n != 5 {
				return fmt.Errorf("%d asks answered, want 5", n)
			}
			if got := a.log(); len(got) != 3 {
				return errors.New("the actor has " + join(got))
			}
			return nil
		})
		o := outcome{got: join(a.log()), answers: map[uint64]string{}, dead: map[string]uint64{}, closed: l.closed() != nil}
		for corr, e := range l.answers() {
			o.answers[corr] = fmt.Sprint(e.Kind, e.Headers)
		}
		for _, reason := range []error{bus.ErrBadEnvelope, bus.ErrNoRoute, bus.ErrMailboxFull} {
			o.dead[reason.Error()] = b.DeadLetterCount(reason)
		}
		o.dead["all"] = b.DeadLetters()
		return o
	}
	one, batched := run(false), run(true)
	if one.got != "[1 2 3]" || !one.closed || one.dead["all"] != 6 {
		t.Fatalf("Deliver: the actor has %s, link closed %v, dead letters %v", one.got, one.closed, one.dead)
	}
	if strings.HasSuffix(one.answers[4], "[]") {
		t.Fatalf("Deliver: the refused ask was answered %s, not marked as never run", one.answers[4])
	}
	if batched.got != one.got || batched.closed != one.closed || fmt.Sprint(batched.answers) != fmt.Sprint(one.answers) || fmt.Sprint(batched.dead) != fmt.Sprint(one.dead) {
		t.Fatalf("DeliverBatch judged the envelopes otherwise than Deliver:\nbatch:   %+v\ndeliver: %+v", batched, one)
	}
}

// batchTick is a flat struct, which the default codec encodes and decodes
// by a plan of its own rather than by reflection.
type batchTick struct {
	Seq    uint64
	Qty    int64
	Symbol string
}

// TestDeliverBatchStructBodies hands the bus a batch of flat struct bodies
// as a peer might write them: well formed, with keys in another case or
// order, with a field of the wrong type, cut short, or with bytes after
// the value. Each well-formed one reaches the actor with the value sent;
// each other one is a dead letter with its reason (its ask answered with
// an error), and the link stays up.
func TestDeliverBatchStructBodies(t *testing.T) {
	b := newTestBus(t)
	if err := bus.RegisterType[batchTick](b.Types(), "test.tick"); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var got []batchTick
	if _, err := b.Register("a", bus.ActorFunc(func(c *bus.Context, msg any) error {
		if tk, ok := msg.(batchTick); ok {
			mu.Lock()
			got = append(got, tk)
			mu.Unlock()
		}
		return nil
	})); err != nil {
		t.Fatal(err)
	}
	l := &batchLink{peer: bus.NewNodeID()}
	from := bus.Ref{Node: l.peer, Name: "sender", ID: 1}
	body := func(kind bus.Kind, corr uint64, p []byte) bus.Envelope {
		return bus.Envelope{Kind: kind, From: from, To: bus.Ref{Name: "a"}, Type: "test.tick", Body: p, Corr: corr, Timeout: time.Minute}
	}
	good := wire(t, b, bus.Envelope{Kind: bus.KindTell, From: from, To: bus.Ref{Name: "a"}, Msg: batchTick{Seq: 1 << 40, Qty: -3, Symbol: "EURUSD"}})
	envs := []bus.Envelope{
		good,
		// keys in another case and order: the general decoder takes them
		body(bus.KindTell, 0, []byte{0xa2, 0x66, 's', 'y', 'm', 'b', 'o', 'l', 0x61, 'x', 0x63, 'q', 't', 'y', 0x05}),
		body(bus.KindTell, 0, []byte{0xa1, 0x63, 'Q', 't', 'y', 0x61, 'x'}),                // a string into an int64
		body(bus.KindAsk, 7, []byte{0xa1, 0x66, 'S', 'y', 'm', 'b', 'o', 'l', 0x78, 0x40}), // cut short
		body(bus.KindTell, 0, append(slices.Clone(good.Body), 0x00)),                       // a byte after the value
		good,
	}
	b.DeliverBatch(l, envs)
	want := []batchTick{{Seq: 1 << 40, Qty: -3, Symbol: "EURUSD"}, {Qty: 5, Symbol: "x"}, {Seq: 1 << 40, Qty: -3, Symbol: "EURUSD"}}
	eventually(t, "every body handled", func() error {
		mu.Lock()
		defer mu.Unlock()
		if len(got) != len(want) || b.DeadLetterCount(bus.ErrBadEnvelope) != 3 || len(l.answers()) != 1 {
			return fmt.Errorf("the actor has %v, %d bad bodies counted, %d asks answered", got, b.DeadLetterCount(bus.ErrBadEnvelope), len(l.answers()))
		}
		return nil
	})
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(got, want) {
		t.Fatalf("the actor has %+v, want %+v", got, want)
	}
	if a := l.answers()[7]; a.Kind != bus.KindError {
		t.Fatalf("the ask with a short body was answered %v, want an error", a.Kind)
	}
	if err := l.closed(); err != nil {
		t.Fatalf("a bad body closed the link: %v", err)
	}
}

// TestDeliverBatchChecksEachHeader: a peer's tells that share a header
// skip the work done for the first of them, but a tell that differs from
// the one before it in any field is judged on its own: a sender that is
// not the peer's closes the link and reaches nobody, a codec the node
// does not know is a dead letter with the link up, another type decodes
// as that type, and an actor that stops between two tells of one batch
// takes no more.
func TestDeliverBatchChecksEachHeader(t *testing.T) {
	for _, inline := range []bool{false, true} {
		t.Run(fmt.Sprintf("inline=%v", inline), func(t *testing.T) {
			b := newTestBus(t)
			opts := []bus.ActorOption{bus.WithBorrowedBytes()}
			if inline {
				opts = append(opts, bus.WithInline())
			}
			var mu sync.Mutex
			var got []string
			ref, err := b.Register("x", bus.ActorFunc(func(c *bus.Context, msg any) error {
				mu.Lock()
				defer mu.Unlock()
				switch m := msg.(type) {
				case []byte:
					got = append(got, "bytes:"+string(m))
				case string:
					got = append(got, "string:"+m)
					if m == "stop" {
						c.Stop()
					}
				}
				return nil
			}), opts...)
			if err != nil {
				t.Fatal(err)
			}
			received := func() []string {
				mu.Lock()
				defer mu.Unlock()
				return slices.Clone(got)
			}
			l := &batchLink{peer: bus.NewNodeID()}
			from := bus.Ref{Node: l.peer, Name: "src", ID: 7}
			tell := func(msg any) bus.Envelope {
				return wire(t, b, bus.Envelope{Kind: bus.KindTell, From: from, To: ref, Msg: msg})
			}
			unknown := tell([]byte("b"))
			unknown.Codec = "no-such-codec"
			asString := tell("s")
			b.DeliverBatch(l, []bus.Envelope{tell([]byte("1")), tell([]byte("2")), unknown, tell([]byte("3")), asString, tell([]byte("4"))})
			want := []string{"bytes:1", "bytes:2", "bytes:3", "string:s", "bytes:4"}
			eventually(t, "the tells", func() error {
				if g := received(); !slices.Equal(g, want) {
					return fmt.Errorf("received %v, want %v", g, want)
				}
				return nil
			})
			if n := b.DeadLetterCount(bus.ErrUnknownCodec); n != 1 {
				t.Fatalf("%d dead letters for the unknown codec, want 1", n)
			}
			if err := l.closed(); err != nil {
				t.Fatalf("the link closed: %v", err)
			}

			// The same tell, but in another node's name.
			forged := tell([]byte("forged"))
			forged.From.Node = bus.NewNodeID()
			b.DeliverBatch(l, []bus.Envelope{tell([]byte("5")), forged, tell([]byte("6"))})
			if err := l.closed(); !errors.Is(err, bus.ErrBadEnvelope) {
				t.Fatalf("a tell in another node's name left the link with %v, want it closed with ErrBadEnvelope", err)
			}
			eventually(t, "the tells", func() error {
				if g := received(); !slices.Equal(g, append(want, "bytes:5", "bytes:6")) {
					return fmt.Errorf("received %v, want %v", g, append(want, "bytes:5", "bytes:6"))
				}
				return nil
			})
			want = received()
			if slices.Contains(want, "bytes:forged") {
				t.Fatal("the forged tell was received")
			}

			// The actor stops on its first tell: the next ones of the batch
			// are dead letters.
			l2 := &batchLink{peer: bus.NewNodeID()}
			from = bus.Ref{Node: l2.peer, Name: "src", ID: 7}
			dead := b.DeadLetters()
			b.DeliverBatch(l2, []bus.Envelope{tell("stop"), tell([]byte("7")), tell([]byte("8"))})
			eventually(t, "the dead letters", func() error {
				if n := b.DeadLetters() - dead; n != 2 {
					return fmt.Errorf("%d dead letters, want 2", n)
				}
				return nil
			})
			if g := received(); !slices.Equal(g, append(want, "string:stop")) {
				t.Fatalf("received %v, want %v", g, append(want, "string:stop"))
			}
		})
	}
}

// TestDeliverBatchInlineRunsOnTheReader: the tells and asks of a batch to
// an idle actor WithInline run before DeliverBatch returns, in order, the
// asks answered by then; tells to it that find it busy queue and run after
// it, in order.
func TestDeliverBatchInlineRunsOnTheReader(t *testing.T) {
	b := newTestBus(t)
	a := &logActor{}
	if _, err := b.Register("inline", a, bus.WithInline()); err != nil {
		t.Fatal(err)
	}
	l := &batchLink{peer: bus.NewNodeID()}
	var envs []bus.Envelope
	var want []string
	for i := range 20 {
		s := strconv.Itoa(i)
		want = append(want, s)
		env := bus.Envelope{Kind: bus.KindTell, To: bus.Ref{Name: "inline"}, Msg: s}
		if i%7 == 3 {
			env.Kind, env.Corr = bus.KindAsk, uint64(i)
		}
		envs = append(envs, wire(t, b, env))
	}
	b.DeliverBatch(l, envs)
	// The actor may not have run its Started yet: then they queued.
	eventually(t, "every message", func() error {
		if got := a.log(); !slices.Equal(got, want) {
			return fmt.Errorf("received %v, want %v", got, want)
		}
		return nil
	})
	if n := len(l.answers()); n != 3 {
		t.Fatalf("%d asks answered, want 3", n)
	}
	envs, want = envs[:0], nil
	for i := range 10 {
		s := strconv.Itoa(100 + i)
		want = append(want, s)
		env := bus.Envelope{Kind: bus.KindTell, To: bus.Ref{Name: "inline"}, Msg: s}
		if i%4 == 1 {
			env.Kind, env.Corr = bus.KindAsk, uint64(100+i)
		}
		envs = append(envs, wire(t, b, env))
	}
	b.DeliverBatch(l, envs)
	if got := a.log()[20:]; !slices.Equal(got, want) { // no waiting: they ran here
		t.Fatalf("after DeliverBatch returned the actor had received %v, want %v", got, want)
	}
	if n := len(l.answers()); n != 6 {
		t.Fatalf("%d asks answered when DeliverBatch returned, want 6", n)
	}

	// Busy: the tells queue behind the message it is handling.
	a.in, a.gate = make(chan struct{}, 100), make(chan struct{})
	go b.Tell("inline", "busy")
	<-a.in
	want = append(want, "busy")
	for i := range 10 {
		s := strconv.Itoa(200 + i)
		want = append(want, s)
		envs[i] = wire(t, b, bus.Envelope{Kind: bus.KindTell, To: bus.Ref{Name: "inline"}, Msg: s})
	}
	b.DeliverBatch(l, envs)
	close(a.gate)
	eventually(t, "every message", func() error {
		if got := a.log()[20:]; !slices.Equal(got, want) {
			return fmt.Errorf("received %v, want %v", got, want)
		}
		return nil
	})
}

// FuzzDeliverBatchHeaders hands the bus a batch of tells and asks whose
// headers a peer chose, each byte of the input choosing one envelope's
// sender (one of the peer's two actors, or another node's), target (two
// actors by Ref, one by name, one that does not exist), body ([]byte,
// string, one that does not decode), codec (the link's, or one the node
// does not know) and kind, so that tells repeat the header before them
// or differ from it in one field: DeliverBatch, which reuses what it
// worked out for a tell with the header of the one before, judges each
// envelope as Deliver does one at a time: the actors receive the same
// messages in the same order, the asks get the same answers, the dead
// letters count the same by reason, and the link is closed alike.
func FuzzDeliverBatchHeaders(f *testing.F) {
	f.Add(false, []byte{0, 0, 0, 1, 1, 0, 0})
	f.Add(true, []byte{0, 0, 0x40, 0, 0, 0x80, 0})
	f.Add(true, []byte{0x04, 0x04, 0x08, 0x08, 0x10, 0x10, 0x20, 0x20, 0, 0})
	f.Add(false, []byte{0x01, 0x02, 0x03, 0x02, 0x01, 0x11, 0x12, 0x13})
	f.Fuzz(func(t *testing.T, inline bool, choices []byte) {
		if len(choices) > 200 {
			choices = choices[:200]
		}
		type outcome struct {
			got     map[string][]string
			answers map[uint64]string
			dead    map[string]uint64
			closed  bool
		}
		run := func(batch bool) outcome {
			b := newTestBus(t)
			var mu sync.Mutex
			got := map[string][]string{}
			actor := func(name string) bus.Actor {
				return bus.ActorFunc(func(c *bus.Context, msg any) error {
					mu.Lock()
					switch m := msg.(type) {
					case []byte:
						got[name] = append(got[name], fmt.Sprintf("%v b:%s", c.Sender(), m))
					case string:
						got[name] = append(got[name], fmt.Sprintf("%v %v", c.Sender(), m))
					}
					mu.Unlock()
					if c.IsAsk() {
						return c.Reply("ok")
					}
					return nil
				})
			}
			opts := []bus.ActorOption{bus.WithBorrowedBytes()}
			if inline {
				opts = append(opts, bus.WithInline())
			}
			x, err := b.Register("x", actor("x"), opts...)
			if err != nil {
				t.Fatal(err)
			}
			y, err := b.Register("y", actor("y"))
			if err != nil {
				t.Fatal(err)
			}
			l := &batchLink{peer: bus.NewNodeID()}
			froms := []bus.Ref{{Node: l.peer, Name: "s1", ID: 1}, {Node: l.peer, Name: "s2", ID: 2}, {Node: bus.NewNodeID(), Name: "s1", ID: 1}, {}}
			tos := []bus.Ref{x, y, {Name: "x"}, {Node: b.NodeID(), Name: "x", ID: x.ID + 1000}}
			var envs []bus.Envelope
			asks := 0
			for i, c := range choices {
				env := bus.Envelope{Kind: bus.KindTell, From: froms[c&3], To: tos[c>>2&3]}
				switch c >> 4 & 3 {
				case 0, 1:
					env.Msg = []byte(strconv.Itoa(i))
				case 2:
					env.Msg = strconv.Itoa(i)
				}
				if c>>7 != 0 {
					env.Kind, env.Corr = bus.KindAsk, uint64(i+1)
					asks++
				}
				if env.Msg == nil {
					env.Msg = "bad"
					env = wire(t, b, env)
					env.Body = []byte{0xff, 0xfe}
				} else {
					env = wire(t, b, env)
				}
				if c>>4&3 == 1 && c&0x40 != 0 {
					env.Codec = "no-such-codec"
				}
				envs = append(envs, env)
			}
			if batch {
				b.DeliverBatch(l, envs)
			} else {
				for i := range envs {
					b.Deliver(l, &envs[i])
				}
			}
			received := func() int {
				mu.Lock()
				defer mu.Unlock()
				n := 0
				for _, g := range got {
					n += len(g)
				}
				return n
			}
			eventually(t, "every envelope handled", func() error {
				if n := received() + int(b.DeadLetters()); n != len(envs) {
					return fmt.Errorf("%d of %d received or dead letters", n, len(envs))
				}
				if n := len(l.answers()); n != asks {
					return fmt.Errorf("%d of %d asks answered", n, asks)
				}
				return nil
			})
			mu.Lock()
			o := outcome{got: got, answers: map[uint64]string{}, dead: map[string]uint64{}, closed: l.closed() != nil}
			mu.Unlock()
			for corr, e := range l.answers() {
				o.answers[corr] = fmt.Sprint(e.Kind, e.Headers)
			}
			for _, reason := range []error{bus.ErrBadEnvelope, bus.ErrNoRoute, bus.ErrMailboxFull, bus.ErrUnknownCodec} {
				o.dead[reason.Error()] = b.DeadLetterCount(reason)
			}
			o.dead["all"] = b.DeadLetters()
			return o
		}
		one, batched := run(false), run(true)
		// The node ids differ between the two buses: compare what the
		// actors received by what follows the sender.
		strip := func(o outcome) string {
			var s strings.Builder
			for _, name := range []string{"x", "y"} {
				for _, g := range o.got[name] {
					_, after, _ := strings.Cut(g, " ")
					fmt.Fprintf(&s, "%s:%s,", name, after)
				}
			}
			return fmt.Sprint(s.String(), o.answers, o.dead, o.closed)
		}
		if a, b := strip(batched), strip(one); a != b {
			t.Fatalf("DeliverBatch judged the envelopes otherwise than Deliver:\nbatch:   %s\ndeliver: %s", a, b)
		}
	})
}

// TestDeliverBatchInlineStopsAtItsStop: tells to an inline actor run on
// the reader, under one claim of its mailbox; one whose Receive stops the
// actor ends the run: the tells after it in the batch reach no Receive,
// as none would behind a stop in its mailbox, and each is refused.
func TestDeliverBatchInlineStopsAtItsStop(t *testing.T) {
	b := newTestBus(t)
	var mu sync.Mutex
	var got []string
	if _, err := b.Register("inline", bus.ActorFunc(func(c *bus.Context, msg any) error {
		s, ok := msg.(string)
		if !ok {
			return nil
		}
		mu.Lock()
		got = append(got, s)
		mu.Unlock()
		if s == "stop" {
			c.Stop()
		}
		return nil
	}), bus.WithInline()); err != nil {
		t.Fatal(err)
	}
	if err := b.Tell("inline", "started"); err != nil { // ran once it started
		t.Fatal(err)
	}
	eventually(t, "the actor's start", func() error {
		mu.Lock()
		defer mu.Unlock()
		if len(got) == 0 {
			return errors.New("not yet")
		}
		got = nil
		return nil
	})
	l := &batchLink{peer: bus.NewNodeID()}
	var envs []bus.Envelope
	for _, s := range []string{"0", "1", "stop", "3", "4"} {
		envs = append(envs, wire(t, b, bus.Envelope{Kind: bus.KindTell, To: bus.Ref{Name: "inline"}, Msg: s}))
	}
	dead := b.DeadLetters()
	b.DeliverBatch(l, envs)
	mu.Lock()
	defer mu.Unlock()
	if want := []string{"0", "1", "stop"}; !slices.Equal(got, want) {
		t.Fatalf("received %v, want %v", got, want)
	}
	if n := b.DeadLetters() - dead; n != 2 {
		t.Fatalf("%d dead letters for the two tells behind the stop, want 2", n)
	}
}

// holdingParent spawns child WithInline and, when it fails, holds it
// suspended until told "resume".
type holdingParent struct {
	child  bus.Actor
	spawn  bus.Ref // on the parent's goroutine
	ref    chan bus.Ref
	failed chan bus.Failure
}

func (p *holdingParent) Receive(c *bus.Context, msg any) error {
	switch msg.(type) {
	case bus.Started:
		r, err := c.Spawn("child", p.child, bus.WithInline())
		if err != nil {
			return err
		}
		p.spawn = r
		p.ref <- r
	case string:
		return c.Resume(p.spawn)
	}
	return nil
}

func (p *holdingParent) ChildFailed(c *bus.Context, f bus.Failure) error {
	p.failed <- f
	return nil
}

// TestDeliverBatchInlineWaitsForItsSupervisor: a tell run on the reader
// that fails an inline actor whose parent supervises it suspends the
// actor: the tells behind it in the batch wait, queued, for the parent's
// decision and then run in their order, none before it.
func TestDeliverBatchInlineWaitsForItsSupervisor(t *testing.T) {
	b := newTestBus(t)
	child := &logActor{}
	failing := bus.ActorFunc(func(c *bus.Context, msg any) error {
		_ = child.Receive(c, msg)
		if msg == "boom" {
			return errors.New("boom")
		}
		return nil
	})
	par := &holdingParent{child: failing, ref: make(chan bus.Ref, 1), failed: make(chan bus.Failure, 1)}
	parent, err := b.Register("parent", par)
	if err != nil {
		t.Fatal(err)
	}
	ref := <-par.ref
	if err := b.Tell(ref, "started"); err != nil { // ran once it started
		t.Fatal(err)
	}
	eventually(t, "the child's start", func() error {
		if len(child.log()) == 0 {
			return errors.New("not yet")
		}
		return nil
	})
	l := &batchLink{peer: bus.NewNodeID()}
	var envs []bus.Envelope
	for _, s := range []string{"0", "boom", "2", "3"} {
		envs = append(envs, wire(t, b, bus.Envelope{Kind: bus.KindTell, To: ref, Msg: s}))
	}
	b.DeliverBatch(l, envs)
	<-par.failed
	if got, want := child.log(), []string{"started", "0", "boom"}; !slices.Equal(got, want) {
		t.Fatalf("before its parent decided the child received %v, want %v", got, want)
	}
	if err := b.Tell(parent, "resume"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the tells behind the failure", func() error {
		if got, want := child.log(), []string{"started", "0", "boom", "2", "3"}; !slices.Equal(got, want) {
			return fmt.Errorf("received %v, want %v", got, want)
		}
		return nil
	})
}
