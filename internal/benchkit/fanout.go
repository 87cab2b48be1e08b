package benchkit

import (
	"context"
	"sync"
	"time"
)

// Shares splits total messages evenly over senders, sender i sending to
// receiver i%receivers: per is what each sender sends, want[r] what receiver
// r gets. When total is not a multiple of senders the remainder is not sent.
func Shares(total, senders, receivers int) (per int, want []int) {
	per = total / senders
	want = make([]int, receivers)
	for i := range senders {
		want[i%receivers] += per
	}
	return per, want
}

// Fanout starts senders goroutines, the i-th calling send(i, per), and
// returns the time from their start until every channel in done is closed.
// It waits for the senders to return before it returns. The first error a
// sender returns, or ctx's error, ends the wait: Fanout then returns that
// error at once, leaving the senders to the caller's clean-up.
func Fanout(ctx context.Context, senders, per int, send func(sender, n int) error, done []chan struct{}) (time.Duration, error) {
	failed := make(chan error, senders)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range senders {
		wg.Go(func() {
			if err := send(i, per); err != nil {
				failed <- err
			}
		})
	}
	for _, ch := range done {
		select {
		case <-ch:
		case err := <-failed:
			return 0, err
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
	d := time.Since(start)
	wg.Wait()
	return d, nil
}

// ChanPipeline is the baseline of Fanout: it moves total copies of msg from
// senders goroutines through receivers buffered channels of the given
// capacity (sender i to channel i%receivers), each drained by a goroutine of
// its own, and returns the time until every receiver has had its share.
func ChanPipeline[T any](msg T, total, senders, receivers, capacity int) time.Duration {
	per, want := Shares(total, senders, receivers)
	chans := make([]chan T, receivers)
	done := make([]chan struct{}, receivers)
	for r := range receivers {
		ch, w, d := make(chan T, capacity), want[r], make(chan struct{})
		chans[r], done[r] = ch, d
		go func() {
			for range w {
				<-ch
			}
			close(d)
		}()
	}
	d, _ := Fanout(context.Background(), senders, per, func(i, n int) error {
		ch := chans[i%receivers]
		for range n {
			ch <- msg
		}
		return nil
	}, done)
	return d
}
