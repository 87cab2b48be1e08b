package mailbox

import (
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/xbus-dev/xbus/internal/benchkit"
)

// Each benchmark moves b.N messages through mailboxes and, with the timer
// stopped, the same number through the plain-Go baseline: a buffered channel
// of the same capacity feeding one goroutine. ns/op and allocs/op are the
// mailbox's; msgs/s is the mailbox's rate, chan-msgs/s the baseline's and
// x-chan their ratio (above 1: the mailbox is faster), each the median over
// rounds of 100,000 messages; x-chan-total is the ratio of the total times,
// which counts the rounds that load from elsewhere on the machine slowed.
//
//	go test -run '^$' -bench BenchmarkSend -count 5 ./mailbox

// payload is what travels: a pointer to a 64-byte message, as the bus
// hands a pointer to an envelope to a mailbox.
type payload struct{ _ [64]byte }

var msg = &payload{}

// counter is an Invoker that counts user messages and says when it has
// seen want of them. Invoke runs on one goroutine at a time, so n needs
// no atomic.
type counter struct {
	n, want int
	done    chan struct{}
}

func (c *counter) InvokeSystem(*payload)   {}
func (c *counter) Dropped(*payload, error) { panic("dropped under Block") }
func (c *counter) Invoke(*payload) {
	c.n++
	if c.n == c.want {
		close(c.done)
	}
}

const benchCap = 1024

// runMailboxes sends total messages, split evenly over senders, to
// mailboxes (sender i to mailbox i%mailboxes), and waits until all are
// processed.
func runMailboxes(b *testing.B, total, senders, mailboxes int) time.Duration {
	per, want := benchkit.Shares(total, senders, mailboxes)
	mbs := make([]*Mailbox[*payload], mailboxes)
	var done []chan struct{}
	for i := range mailboxes {
		inv := &counter{want: want[i], done: make(chan struct{})}
		mb, err := New[*payload](inv, Options{Capacity: benchCap, Policy: Block})
		if err != nil {
			b.Fatal(err)
		}
		mbs[i] = mb
		if inv.want > 0 {
			done = append(done, inv.done)
		}
	}
	ctx := context.Background()
	d, err := benchkit.Fanout(ctx, senders, per, func(i, n int) error {
		mb := mbs[i%mailboxes]
		for range n {
			if err := mb.Send(ctx, msg, Default); err != nil {
				return err
			}
		}
		return nil
	}, done)
	if err != nil {
		b.Fatal(err)
	}
	for _, mb := range mbs {
		mb.Close()
	}
	return d
}

// benchSend alternates rounds of mailbox and channel traffic and reports
// the medians of the per-round rates and ratios, so a burst of load from
// elsewhere on the machine skews neither side.
func benchSend(b *testing.B, senders, mailboxes int) {
	b.ReportAllocs()
	var rates, baseRates, ratios []float64
	var sum, baseSum time.Duration
	for n := range benchkit.Rounds(b.N, 100_000, senders) {
		b.StartTimer()
		d := runMailboxes(b, n, senders, mailboxes)
		b.StopTimer()
		base := benchkit.ChanPipeline(msg, n, senders, mailboxes, benchCap)
		rates = append(rates, float64(n)/d.Seconds())
		baseRates = append(baseRates, float64(n)/base.Seconds())
		ratios = append(ratios, base.Seconds()/d.Seconds())
		sum, baseSum = sum+d, baseSum+base
	}
	b.ReportMetric(benchkit.Median(rates), "msgs/s")
	b.ReportMetric(benchkit.Median(baseRates), "chan-msgs/s")
	b.ReportMetric(benchkit.Median(ratios), "x-chan")
	b.ReportMetric(baseSum.Seconds()/sum.Seconds(), "x-chan-total")
}

func BenchmarkSend(b *testing.B) {
	n := runtime.GOMAXPROCS(0)
	b.Run("1to1", func(b *testing.B) { benchSend(b, 1, 1) })
	b.Run("2to1", func(b *testing.B) { benchSend(b, 2, 1) })
	b.Run("NtoN", func(b *testing.B) { benchSend(b, n, n) })
}

// replier is an Invoker that answers every message on a channel: an Ask's
// round trip without the bus.
type replier struct{ reply chan *payload }

func (r *replier) InvokeSystem(*payload)   {}
func (r *replier) Dropped(*payload, error) { panic("dropped") }
func (r *replier) Invoke(m *payload)       { r.reply <- m }

// BenchmarkPingPong measures a round trip: send to an idle mailbox, which
// replies on a channel, and wait for the reply. The baseline is a channel
// ping-pong between two goroutines. x-chan above 1: the mailbox is faster.
//
//	go test -run '^$' -bench BenchmarkPingPong -count 5 ./mailbox
func BenchmarkPingPong(b *testing.B) {
	b.ReportAllocs()
	const round = 20_000
	ctx := context.Background()
	rep := &replier{reply: make(chan *payload)}
	mb, err := New[*payload](rep, Options{Capacity: benchCap})
	if err != nil {
		b.Fatal(err)
	}
	defer mb.Close()
	echo := benchkit.NewEcho[*payload]()
	defer echo.Close()
	var rtts, baseRTTs, ratios []float64
	for n := range benchkit.Rounds(b.N, round, 1) {
		b.StartTimer()
		start := time.Now()
		for range n {
			if err := mb.Send(ctx, msg, Default); err != nil {
				b.Fatal(err)
			}
			<-rep.reply
		}
		d := time.Since(start)
		b.StopTimer()
		start = time.Now()
		for range n {
			echo.RoundTrip(msg)
		}
		base := time.Since(start)
		rtts = append(rtts, float64(d.Nanoseconds())/float64(n))
		baseRTTs = append(baseRTTs, float64(base.Nanoseconds())/float64(n))
		ratios = append(ratios, float64(base)/float64(d))
	}
	b.ReportMetric(benchkit.Median(rtts), "ns/rtt")
	b.ReportMetric(benchkit.Median(baseRTTs), "chan-ns/rtt")
	b.ReportMetric(benchkit.Median(ratios), "x-chan")
}

// wide is a value of the bus's size (the message and where it came from,
// 32 bytes) stored by value in the ring, as the bus's delivery is.
type wide struct {
	msg  any
	from *payload
	tag  uint64
}

// wideCounter is counter for wide values.
type wideCounter struct {
	n, want int
	done    chan struct{}
}

func (c *wideCounter) InvokeSystem(wide)   {}
func (c *wideCounter) Dropped(wide, error) { panic("dropped under Block") }
func (c *wideCounter) Invoke(wide) {
	if c.n++; c.n == c.want {
		close(c.done)
	}
}

// BenchmarkSendWide is BenchmarkSend/1to1 and 2to1 with the bus's 32-byte
// values, reporting CPU time per message (cpu-ns/msg, both sides
// together) beside the channel's: the mailbox's share of a bus Tell.
//
//	go test -run '^$' -bench SendWide -benchtime 4000000x -cpu 1,2 ./mailbox
func BenchmarkSendWide(b *testing.B) {
	for _, senders := range []int{1, 2} {
		b.Run(fmt.Sprintf("%dto1", senders), func(b *testing.B) {
			b.ReportAllocs()
			total := max(b.N-b.N%senders, senders)
			per, want := benchkit.Shares(total, senders, 1)
			inv := &wideCounter{want: want[0], done: make(chan struct{})}
			mb, err := New[wide](inv, Options{Capacity: benchCap, Policy: Block})
			if err != nil {
				b.Fatal(err)
			}
			defer mb.Close()
			ctx := context.Background()
			var m any = msg
			c0 := benchkit.CPUTime()
			d, err := benchkit.Fanout(ctx, senders, per, func(_, n int) error {
				for range n {
					if err := mb.Send(ctx, wide{msg: m}, Default); err != nil {
						return err
					}
				}
				return nil
			}, []chan struct{}{inv.done})
			if err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			c1 := benchkit.CPUTime()
			base := benchkit.ChanPipeline(m, total, senders, 1, benchCap)
			c2 := benchkit.CPUTime()
			b.ReportMetric(base.Seconds()/d.Seconds(), "x-chan")
			if c2 > 0 {
				cpu, baseCPU := float64(c1-c0)/float64(total), float64(c2-c1)/float64(total)
				b.ReportMetric(cpu, "cpu-ns/msg")
				b.ReportMetric(baseCPU, "chan-cpu-ns/msg")
				b.ReportMetric(cpu/baseCPU, "x-chan-cpu")
			}
		})
	}
}
