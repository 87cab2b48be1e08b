// Package benchkit holds the measuring code that the xbus benchmarks and the
// xbus bench command share: the harness that drives senders and times them,
// the plain-Go baselines every figure is compared with in the same run, the
// statistics taken over the samples, the Row every suite of `xbus bench`
// reports, and the child process that benchmarks between two processes run
// (StartPeer in the parent, ServePeer in the child).
//
// It uses only the standard library, so that any package's tests may import
// it, mailbox's included, without an import cycle. The thing measured comes
// in as a function; the baselines run the same harness over channels:
//
//	per, want := benchkit.Shares(total, senders, actors)
//	// ... start actors, actor i closing done[i] after want[i] messages ...
//	d, err := benchkit.Fanout(ctx, senders, per, func(i, n int) error {
//		for range n {
//			if err := b.Tell(refs[i%actors], msg); err != nil {
//				return err
//			}
//		}
//		return nil
//	}, done)
//	base := benchkit.ChanPipeline(msg, total, senders, actors, 1024)
package benchkit
