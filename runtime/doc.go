// Package runtime is vitflow's timed dataflow engine: actors with local
// cycle clocks, joined by bounded timed FIFOs, run to completion on
// goroutines. It knows nothing about neural networks; any dataflow model can
// be built on it.
//
// # Building and running a graph
//
//	g := runtime.NewGraph()
//	ab, err := runtime.NewFIFO[int](g, "ab", 2, 1) // capacity 2, latency 1
//	g.AddActor("producer", func(ctx *runtime.Ctx) error {
//		for i := range 10 {
//			if err := ab.Send(ctx, i); err != nil {
//				return err
//			}
//			ctx.Work(3, "produce")
//		}
//		return nil
//	}, runtime.Writes(ab))
//	g.AddActor("consumer", func(ctx *runtime.Ctx) error {
//		for {
//			v, err := ab.Recv(ctx)
//			if errors.Is(err, runtime.ErrClosed) {
//				return nil // the producer finished and ab is drained
//			}
//			if err != nil {
//				return err
//			}
//			ctx.Work(5, "consume")
//			_ = v
//		}
//	}, runtime.Reads(ab))
//	stats, err := g.Run(context.Background(), runtime.Options{})
//
// An actor reaches its FIFOs by closure capture, but must declare them with
// [Reads] and [Writes]: every FIFO has exactly one writer and one reader, and
// the declarations let Run check the wiring before starting, attribute
// starved and blocked cycles to ports, and name the wait cycle of a deadlock.
// Using an undeclared FIFO end returns an error.
//
// # Time rules
//
// Simulated time is an integer number of clock cycles, never wall time.
//
//   - Each actor has a local clock starting at 0. [Ctx.Work](n, label)
//     advances it by n busy cycles attributed to label; the waits below also
//     advance it.
//   - A FIFO has capacity C >= 1 and latency L >= 1. The credit latency (from
//     a dequeue until the freed slot can be used by the writer) is 1 cycle.
//   - [FIFO.Send] at local time t: if the element C places back was dequeued
//     at time d with d+1 > t, or has not been dequeued yet, the writer blocks
//     (in wall time) until it is, and its clock jumps to d+1. The jump counts
//     as blocked cycles of that output. The element becomes visible at
//     clock+L.
//   - [FIFO.Recv] waits for an element; the clock becomes max(clock, visible
//     time); the jump counts as starved cycles of that input. The dequeue
//     time (the new clock) returns to the writer as the credit. Recv does not
//     itself take a cycle: charge the work with Work.
//   - [FIFO.Peek] is Recv without the dequeue. [FIFO.PeekAt] and [Select]
//     decide on the absence of data; they first wait (in wall time) until
//     the writer's clock guarantees that no element can still become visible
//     at or before the reader's clock, then decide by a fixed rule, ties by
//     input order. Go's select never decides anything that simulated time
//     depends on.
//   - A finished actor counts as infinitely far ahead. When a writer has
//     finished and its FIFO is drained, Recv, Peek and Select return
//     [ErrClosed]; PeekAt, which must not block, does so once the reader's
//     clock is L cycles past the writer's finish time. When a reader has
//     finished, a Send that would need its credit returns [ErrReaderDone].
//
// Consequently outputs, cycle counts and every statistic are identical from
// run to run and for any GOMAXPROCS.
//
// # Failures
//
// The first actor to return an error or panic fails the run: the error names
// the actor (with the stack for a panic) and all other actors are cancelled;
// their blocking calls return an error wrapping [ErrCancelled]. If every
// unfinished actor is blocked, a watchdog fails the run within a second of
// wall time with a [*DeadlockError] naming each blocked actor, its local time,
// the FIFO it waits on and that FIFO's occupancy, and the wait cycle; a
// group of coroutines (see below) joined to no other reports its own at
// once. No goroutine outlives Run.
//
// # Results
//
// Run returns [Stats]: per actor busy cycles (also per Work label), starved
// cycles per input, blocked cycles per output, finish time and utilisation
// (busy / makespan); per FIFO the elements sent, maximum occupancy, a
// time-weighted occupancy histogram in simulated time and the fractions of
// time full and empty. With [Options].Trace set, Run also writes a
// Chrome/Perfetto trace-event JSON on simulated time, 1 cycle shown as
// 1 us (open it in ui.perfetto.dev); [TraceFile] builds such a file from a
// model's own records, and [Options].RecordOccupancy keeps the FIFO levels
// for it.
//
// # Re-timing a recorded run
//
// With [Options].Record, Run keeps in [Stats].Record every actor's events
// and how their times depend on each other: a receive on its element's
// send plus the latency, a send on the dequeue of the element C places
// back plus the credit latency, each after the actor's previous event plus
// its work. [Record.Retime] evaluates those events again for other FIFO
// capacities in one pass, giving the makespan the run would have had, or
// a [*DeadlockError] with its wait cycle, without running the actors. An
// actor with clocks of its own computes its times as [Tick]s with
// [Ctx.Max], [Ctx.Min] and [Ctx.IfBefore], and tells the record where its
// clock came from with [Ctx.Rebase]; where it decides what to do next by
// time it asks [Ctx.Before], and Retime returns [ErrChoiceChanged] when
// such a decision would go the other way: the run would not be the
// recorded one. Select and PeekAt decide by arrival, which a record
// cannot follow: a run that uses them cannot be re-timed.
//
// # Scheduling
//
// [Options].Scheduler maps actors onto goroutines. By default a weakly
// connected component of the graph (actors joined by FIFOs) of up to 8
// actors runs as one group of coroutines ([iter.Pull]) on one goroutine: an
// actor that must wait hands the thread to an actor of its group whose wait
// is over, much more cheaply than a goroutine parks, and independent
// components run side by side on the cores. A component of more than 64
// actors is split into GOMAXPROCS such groups, joined by FIFOs that wake
// across goroutines; one in between runs an actor per goroutine, which
// balances a few heavy actors best. An actor that blocks in wall time
// (not in a FIFO operation) holds up the rest of its group.
//
// The hot path (Send, Recv, Work) takes no lock and allocates nothing: each
// FIFO is a single-producer single-consumer ring whose reader returns
// credits in batches of up to 8; within a group, where the two ends never
// run at once, an end publishes its progress only when it waits or
// finishes. An actor on its own goroutine that blocks first yields the
// processor a few times while the actor it waits for is runnable, then
// parks until the other side signals it. Batching and yielding change when
// things happen in wall time, never the simulated times.
package runtime
