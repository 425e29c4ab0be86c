package runtime

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"
)

// Run runs every actor to completion and returns the statistics, or the
// first failure (see the package doc). A graph runs once.
func (g *Graph) Run(ctx context.Context, opt Options) (*Stats, error) {
	if err := g.check(); err != nil {
		return nil, fmt.Errorf("run: %w", err)
	}
	g.ran = true
	if opt.ClockMHz == 0 {
		opt.ClockMHz = 1000
	}
	if opt.ClockMHz < 0 {
		return nil, fmt.Errorf("run: clock %g MHz must be positive", opt.ClockMHz)
	}
	if opt.Scheduler < SchedulerAuto || opt.Scheduler > SchedulerCoroutines {
		return nil, fmt.Errorf("run: unknown scheduler %d", int(opt.Scheduler))
	}
	if opt.MaxTraceEvents == 0 {
		opt.MaxTraceEvents = DefaultTraceEvents
	}
	if opt.MaxTraceEvents < 0 {
		return nil, fmt.Errorf("run: MaxTraceEvents %d must be positive", opt.MaxTraceEvents)
	}

	// The first failure is the run's cause; errgroup only collects the
	// goroutines, since an actor's neighbours may fail (ErrClosed,
	// ErrReaderDone) before errgroup sees the failing actor return.
	runCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var eg errgroup.Group

	if opt.RecordOccupancy < 0 {
		return nil, fmt.Errorf("run: RecordOccupancy %d must not be negative", opt.RecordOccupancy)
	}
	var actorTracks, fifoTracks []*track
	if opt.Trace != nil || opt.RecordOccupancy > 0 {
		limit := 0
		if opt.Trace != nil {
			limit = max(opt.MaxTraceEvents/(len(g.actors)+len(g.fifos)), 16)
			for range g.actors {
				actorTracks = append(actorTracks, &track{limit: limit})
			}
			// Stalls name the FIFO and the actor at its other end; built
			// here, once, since only a trace shows them.
			for _, f := range g.fifos {
				f.starvedBy = "starved on " + f.name + " waiting for " + f.writer.name
				f.blockedBy = "blocked on " + f.name + " by " + f.reader.name
			}
		}
		for _, f := range g.fifos {
			t := &track{limit: max(limit, opt.RecordOccupancy)}
			fifoTracks = append(fifoTracks, t)
			f.trace = t
		}
	}
	ctxs := make([]*Ctx, len(g.actors))
	for i, a := range g.actors {
		ctxs[i] = &Ctx{
			a:       a,
			starved: isolated[int64](len(a.inputs)),
			blocked: isolated[int64](len(a.outputs)),
			runCtx:  runCtx,
		}
		if actorTracks != nil {
			ctxs[i].trace = actorTracks[i]
		}
		if opt.Record {
			ctxs[i].rec = newTape()
		}
	}

	allDone := make(chan struct{})
	var running atomic.Int64
	running.Store(int64(len(g.actors)))
	finished := func() {
		if running.Add(-1) == 0 {
			close(allDone)
		}
	}
	groups, threads := g.groups(ctxs, opt)
	for _, k := range groups {
		eg.Go(func() error { return g.runComponent(k, cancel, finished) })
	}
	for _, c := range threads {
		eg.Go(func() error {
			goexit := true
			defer func() {
				if goexit {
					// As a coroutine group says it: runActor cannot recover a Goexit.
					cancel(errGoexit)
				}
				finished()
			}()
			err := runActor(c, cancel)
			goexit = false
			return err
		})
	}
	eg.Go(func() error { return g.watchdog(runCtx, cancel, allDone) })
	err := eg.Wait()
	if ctx.Err() != nil {
		// The caller gave up (maybe after every actor finished anyway).
		return nil, fmt.Errorf("%w: %w", ErrCancelled, context.Cause(ctx))
	}
	if cause := context.Cause(runCtx); cause != nil {
		return nil, cause
	}
	if err != nil {
		return nil, err
	}
	stats := g.collect(ctxs)
	if opt.Record {
		stats.Record = g.record(ctxs, stats.Makespan)
	}
	if opt.RecordOccupancy > 0 {
		for i, t := range fifoTracks {
			stats.FIFOs[i].Levels = t.levels()
			if t.lost {
				stats.FIFOs[i].LevelsCut = t.lostAt
			}
		}
	}
	if opt.Trace != nil {
		cut, err := g.writeTrace(opt.Trace, opt, actorTracks, fifoTracks)
		if err != nil {
			return stats, fmt.Errorf("write trace: %w", err)
		}
		stats.TraceCut = cut
	}
	return stats, nil
}

// runActor runs one actor's body, turning a panic into an error. A failure
// cancels the run before the actor's neighbours are told it has finished,
// so that it, not their reaction to it, is the run's error.
func runActor(c *Ctx, cancel context.CancelCauseFunc) (err error) {
	a := c.a
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("actor %q panicked at cycle %d: %v\n%s", a.name, c.now, r, debug.Stack())
		}
		if err != nil {
			cancel(err)
		}
		// Order matters: credits before readerDone (a writer must not miss
		// one), and writerDone before the clock says never (see PeekAt).
		a.publishCredits()
		a.publishTails()
		for _, f := range a.outputs {
			f.writerDoneAt = c.now
			f.writerDone.Store(true)
		}
		for _, f := range a.inputs {
			f.readerDone.Store(true)
		}
		a.state.Store(finished)
		a.clock.Store(never)
		for _, f := range a.outputs {
			f.wakeReader()
		}
		for _, f := range a.inputs {
			f.wakeWriter()
		}
	}()
	if err := a.body(c); err != nil {
		return fmt.Errorf("actor %q: %w", a.name, err)
	}
	return nil
}

// watchdogPeriod and watchdogRounds set deadlock detection: every unfinished
// actor parked, with no park in between, for watchdogRounds checks in a row
// (300 ms). Checking more than once rules out an actor that has just been
// woken but not yet marked itself running.
const (
	watchdogPeriod = 100 * time.Millisecond
	watchdogRounds = 3
)

// watchdog fails the run when every unfinished actor is blocked.
func (g *Graph) watchdog(ctx context.Context, cancel context.CancelCauseFunc, allDone <-chan struct{}) error {
	tick := time.NewTicker(watchdogPeriod)
	defer tick.Stop()
	states := make([]uint64, len(g.actors))
	stuck := 0
	for {
		select {
		case <-ctx.Done():
			g.cancelAll()
			return nil
		case <-allDone:
			return nil
		case <-tick.C:
		}
		same := true
		for i, a := range g.actors {
			s := a.state.Load()
			if s&stateBits == running || s != states[i] {
				same = false
			}
			states[i] = s
		}
		if !same {
			stuck = 0
			continue
		}
		if stuck++; stuck >= watchdogRounds {
			err := deadlockAmong(g.actors)
			cancel(err)
			g.cancelAll()
			return err
		}
	}
}

// cancelAll wakes every waiter so that it sees the cancellation; parking on
// a bare channel keeps the common path free of select.
func (g *Graph) cancelAll() {
	for _, a := range g.actors {
		a.cancelled.Store(true)
		a.signal()
	}
}

// DeadlockError reports that every unfinished actor was blocked.
type DeadlockError struct {
	// Blocked lists every blocked actor; Cycle lists a wait cycle among
	// them, each waiting for the next and the last for the first.
	Blocked []BlockedActor
	Cycle   []BlockedActor
}

// BlockedActor is one actor in a deadlock.
type BlockedActor struct {
	Actor     string
	Time      int64  // local clock
	Op        string // "send on", "receive on", "peek on" or "select on"
	FIFO      string // the FIFO waited on (the first, for a select)
	Occupancy int64  // elements in that FIFO, sent and not yet read
	Capacity  int64
	waitsFor  int // index of the actor at the other end of FIFO
}

func (b BlockedActor) String() string {
	return fmt.Sprintf("%s (cycle %d) waits to %s fifo %q (%d/%d elements)",
		b.Actor, b.Time, b.Op, b.FIFO, b.Occupancy, b.Capacity)
}

func (e *DeadlockError) Error() string {
	s := "deadlock: every unfinished actor is blocked; wait cycle: "
	list := e.Cycle
	if len(list) == 0 { // not expected: the waits always close a cycle
		s = "deadlock: every unfinished actor is blocked: "
		list = e.Blocked
	}
	for i, b := range list {
		if i > 0 {
			s += " -> "
		}
		s += b.String()
	}
	if len(e.Cycle) > 0 {
		s += " -> " + e.Cycle[0].Actor
	}
	return s
}

// ErrDeadlock is matched by errors.Is for a *DeadlockError.
var ErrDeadlock = errors.New("deadlock")

// Is makes errors.Is(err, ErrDeadlock) true.
func (e *DeadlockError) Is(target error) bool { return target == ErrDeadlock }

// deadlockAmong describes the blocked actors among actors and finds a wait
// cycle among them.
func deadlockAmong(actors []*actor) error {
	e := &DeadlockError{}
	byActor := make(map[int]int)
	for _, a := range actors {
		i := a.index
		if a.state.Load()&stateBits != parked {
			continue
		}
		w := &a.parkedOn
		f, op := w.f, ""
		switch w.kind {
		case waitSpace:
			op = "send on"
		case waitData:
			op = "receive on"
		case waitPeekAt:
			op = "peek on"
		case waitSelect:
			op = "select on"
			// Report the first input whose writer is still unfinished: that
			// is who the select waits for.
			f = w.inputs[0].port()
			for _, p := range w.inputs {
				if p.port().writer.state.Load()&stateBits != finished {
					f = p.port()
					break
				}
			}
		}
		other := f.writer
		if w.kind == waitSpace {
			other = f.reader
		}
		byActor[i] = len(e.Blocked)
		e.Blocked = append(e.Blocked, BlockedActor{
			Actor:     a.name,
			Time:      a.clock.Load(),
			Op:        op,
			FIFO:      f.name,
			Occupancy: f.tail.Load() - f.head.Load(),
			Capacity:  f.capacity,
			waitsFor:  other.index,
		})
	}
	e.Cycle = waitCycle(e.Blocked, byActor)
	return e
}

// waitCycle follows the waits from the first blocked actor to a cycle;
// byActor maps an actor's index to its place in blocked. Every blocked
// actor waits for another unfinished, hence blocked, actor, so the walk
// reaches one.
func waitCycle(blocked []BlockedActor, byActor map[int]int) []BlockedActor {
	if len(blocked) == 0 {
		return nil
	}
	var cycle []BlockedActor
	seen := make(map[int]int) // blocked index -> position in path
	var path []int
	b := 0
	for {
		if at, ok := seen[b]; ok {
			for _, k := range path[at:] {
				cycle = append(cycle, blocked[k])
			}
			return cycle
		}
		seen[b] = len(path)
		path = append(path, b)
		next, ok := byActor[blocked[b].waitsFor]
		if !ok {
			return cycle // the other end is not blocked after all
		}
		b = next
	}
}
