package runtime

import (
	"fmt"
	"sync/atomic"
)

// fifoBase is the untyped part of a FIFO: indices, times and statistics.
// Fields are grouped by the goroutine that writes them, each group on its own
// cache lines, so that writer and reader do not slow each other down.
type fifoBase struct {
	graph       *Graph
	name        string
	index       int // in graph.fifos
	capacity    int64
	latency     int64
	creditBatch int64 // the reader publishes head every creditBatch reads
	// lazy: both ends run as coroutines of one group, so neither can
	// look while the other runs; tail and head are published only when an
	// end suspends or finishes (publishTails, publishCredits), which
	// spares the hot path two locked stores.
	lazy       bool
	writer     *actor
	reader     *actor
	writerPort int
	readerPort int
	sent       []int64 // send time of the element in each slot
	blockedBy  string  // trace names of stalls on this FIFO, set by Run when tracing
	starvedBy  string
	deq        []int64 // dequeue time of the last element read from each slot

	// Written by the writer.
	_          [isolation]byte
	tail       atomic.Int64 // elements sent
	writerDone atomic.Bool
	// writerDoneAt is the writer's finish time, set before writerDone.
	writerDoneAt int64
	wcount       int64 // == tail, without the atomic load
	wpos         int64 // wcount % capacity
	whead        int64 // cached head

	// Written by the reader.
	_          [isolation]byte
	head       atomic.Int64 // elements read
	readerDone atomic.Bool
	rcount     int64  // elements read; head lags it by less than creditBatch
	rpub       int64  // rcount when last stored to head
	rwoke      uint64 // the writer's park count when last given credits
	rpos       int64  // rcount % capacity
	rtail      int64  // cached tail
	occ        occupancy
	trace      *track // occupancy counter track; nil when not tracing

	// Written rarely (around a park) by one side, read on every operation by
	// the other: on their own line, so that the reads stay cache hits.
	_           [isolation]byte
	sendWaiting atomic.Bool
	recvWaiting atomic.Bool
	watch       atomic.Int64 // clock the reader waits for the writer to reach
	_           [isolation]byte
}

// maxCreditBatch bounds how many credits a reader holds back.
const maxCreditBatch = 8

// FIFO is a bounded, timed, single-writer single-reader queue of T.
type FIFO[T any] struct {
	fifoBase
	vals []T
}

func (f *FIFO[T]) port() *fifoBase { return &f.fifoBase }

// NewFIFO adds a FIFO to g with the given capacity (elements, 1 to 2^24) and
// latency (cycles from send to visibility, >= 1).
func NewFIFO[T any](g *Graph, name string, capacity, latency int) (*FIFO[T], error) {
	if err := checkCapacity(name, capacity); err != nil {
		return nil, err
	}
	if latency < 1 {
		return nil, fmt.Errorf("fifo %q: latency %d must be >= 1", name, latency)
	}
	if err := g.claimName(name, "fifo"); err != nil {
		return nil, err
	}
	f := newObject[FIFO[T]](len(g.fifos))
	f.vals = isolated[T](capacity)
	f.fifoBase = fifoBase{
		graph:    g,
		name:     name,
		index:    len(g.fifos),
		capacity: int64(capacity),
		latency:  int64(latency),
		// Credits in batches of C/4, at most maxCreditBatch: the writer
		// still finds most of the FIFO free when it next looks.
		creditBatch: min(max(int64(capacity)/4, 1), maxCreditBatch),
		sent:        isolated[int64](capacity),
		deq:         isolated[int64](capacity),
	}
	f.watch.Store(never)
	f.occ.hist = isolated[int64](capacity + 1)
	g.fifos = append(g.fifos, &f.fifoBase)
	return f, nil
}

// checkCapacity refuses a capacity outside 1..maxCapacity.
func checkCapacity(name string, capacity int) error {
	if capacity < 1 || capacity > maxCapacity {
		return fmt.Errorf("fifo %q: capacity %d out of range [1, %d]", name, capacity, maxCapacity)
	}
	return nil
}

// Name returns the FIFO's name.
func (f *FIFO[T]) Name() string { return f.name }

// Send enqueues v at the actor's clock, blocking while the FIFO is full in
// simulated time (see the package doc). It returns an error wrapping
// [ErrReaderDone] if the reader finished before freeing the slot needed, or
// [ErrCancelled] if the run was cancelled.
func (f *FIFO[T]) Send(c *Ctx, v T) error {
	if f.writer != c.a {
		return f.misuse(c, "send on", "Writes")
	}
	i, t0 := f.wcount, c.now
	if i >= f.capacity {
		// The slot is the one of element i-C; its deq holds that element's
		// dequeue time once the reader has published head > i-C.
		if f.whead <= i-f.capacity {
			f.whead = f.head.Load()
			if f.whead <= i-f.capacity {
				w := waitFor{kind: waitSpace, f: &f.fifoBase, index: i - f.capacity}
				if err := c.wait(&w); err != nil {
					return fmt.Errorf("send on fifo %q: %w", f.name, err)
				}
				f.whead = f.head.Load()
				if f.whead <= i-f.capacity {
					return fmt.Errorf("send on fifo %q: %w", f.name, ErrReaderDone)
				}
			}
		}
		if free := f.deq[f.wpos] + 1; free > c.now {
			c.stall(&f.fifoBase, free, true)
		}
	}
	f.vals[f.wpos] = v
	f.sent[f.wpos] = c.now
	if c.rec != nil {
		c.rec.fifoOp(opSend, &f.fifoBase, i, t0, c.now)
	}
	if f.wpos++; f.wpos == f.capacity {
		f.wpos = 0
	}
	f.wcount = i + 1
	if !f.lazy {
		f.tail.Store(f.wcount)
		if f.recvWaiting.Load() {
			f.reader.wakeup()
		}
	}
	return nil
}

// Recv dequeues the next element, advancing the clock to its visible time
// if needed. It returns an error wrapping [ErrClosed] once the writer has
// finished and the FIFO is drained.
func (f *FIFO[T]) Recv(c *Ctx) (T, error) {
	t0 := c.now
	if err := f.arrive(c, "receive on"); err != nil {
		var zero T
		return zero, err
	}
	if c.rec != nil {
		c.rec.fifoOp(opRecv, &f.fifoBase, f.rcount, t0, c.now)
	}
	return f.take(c), nil
}

// take dequeues the head, which arrive has made visible, at c's clock.
func (f *FIFO[T]) take(c *Ctx) T {
	var zero T
	p := f.rpos
	v := f.vals[p]
	f.vals[p] = zero // drop the reference for the garbage collector
	f.sweepSend(f.sent[p])
	f.deq[p] = c.now
	if f.rpos++; f.rpos == f.capacity {
		f.rpos = 0
	}
	f.rcount++
	// Credits go back in batches: a store to head costs a locked
	// instruction, and the writer only needs them when it runs out. A
	// blocked writer gets them at once, but once per park: until it runs,
	// more would not wake it sooner.
	if f.lazy {
		return v
	}
	if f.rcount-f.rpub >= f.creditBatch {
		f.publishHead()
	} else if f.sendWaiting.Load() {
		if park := f.writer.state.Load() &^ stateBits; park != f.rwoke {
			f.rwoke = park
			f.publishHead()
		}
	}
	return v
}

// RecvAt is Recv that also returns the element's visible time (its send time
// plus the latency), which is at or before the new clock. An actor that
// models parallel resources of its own (say, PEs with their own clocks) may
// dequeue an element later than one of those resources could have used it;
// the visible time lets it start that resource on time. The time rules are
// Recv's: the dequeue, and so the writer's credit, happens at the clock.
func (f *FIFO[T]) RecvAt(c *Ctx) (T, int64, error) {
	v, vis, err := f.RecvTick(c)
	return v, vis.At, err
}

// RecvTick is RecvAt with the visible time as a Tick, for an actor that
// computes its resources' times with the Tick methods of Ctx.
func (f *FIFO[T]) RecvTick(c *Ctx) (T, Tick, error) {
	t0 := c.now
	if err := f.arrive(c, "receive on"); err != nil {
		var zero T
		return zero, Tick{}, err
	}
	vis := Tick{At: f.sent[f.rpos] + f.latency}
	if c.rec != nil {
		e0 := len(c.rec.edges)
		vis.node = c.rec.add(opVis, int32(f.index), f.rcount, e0, vis.At) + 1
		c.rec.fifoOp(opRecv, &f.fifoBase, f.rcount, t0, c.now)
	}
	return f.take(c), vis, nil
}

// publishHead returns the reader's credits and wakes a blocked writer.
func (f *fifoBase) publishHead() {
	f.rpub = f.rcount
	f.head.Store(f.rcount)
	if f.sendWaiting.Load() {
		f.wakeWriter()
	}
}

// publishCredits publishes the credits a holds back, before it parks or
// finishes: nothing may wait on an actor that cannot move.
func (a *actor) publishCredits() {
	for _, f := range a.inputs {
		if f.rpub != f.rcount {
			f.publishHead()
		}
	}
}

// publishTails publishes the sends a has not published yet (see lazy),
// before it suspends or finishes, and wakes their waiting readers.
func (a *actor) publishTails() {
	for _, f := range a.outputs {
		if f.tail.Load() != f.wcount {
			f.tail.Store(f.wcount)
			if f.recvWaiting.Load() {
				f.wakeReader()
			}
		}
	}
}

// Peek returns the next element without dequeuing it, advancing the clock to
// its visible time like Recv.
func (f *FIFO[T]) Peek(c *Ctx) (T, error) {
	t0 := c.now
	if err := f.arrive(c, "peek on"); err != nil {
		var zero T
		return zero, err
	}
	if c.rec != nil {
		c.rec.fifoOp(opPeek, &f.fifoBase, f.rcount, t0, c.now)
	}
	return f.vals[f.rpos], nil
}

// arrive waits until the next element exists and the clock has reached its
// visible time.
func (f *FIFO[T]) arrive(c *Ctx, op string) error {
	if f.reader != c.a {
		return f.misuse(c, op, "Reads")
	}
	j := f.rcount
	if f.rtail <= j {
		f.rtail = f.tail.Load()
		if f.rtail <= j {
			if err := f.waitData(c, j, op); err != nil {
				return err
			}
		}
	}
	if vis := f.sent[f.rpos] + f.latency; vis > c.now {
		c.stall(&f.fifoBase, vis, false)
	}
	return nil
}

func (f *fifoBase) waitData(c *Ctx, j int64, op string) error {
	w := waitFor{kind: waitData, f: f, index: j}
	if err := c.wait(&w); err != nil {
		return fmt.Errorf("%s fifo %q: %w", op, f.name, err)
	}
	// writerDone is set after the last tail store, so this load sees it all.
	f.rtail = f.tail.Load()
	if f.rtail <= j {
		return fmt.Errorf("%s fifo %q: %w", op, f.name, ErrClosed)
	}
	return nil
}

// PeekAt reports the element visible at the actor's current clock, if any,
// without dequeuing it or advancing the clock. When the FIFO is empty it
// first waits until the writer's clock shows that nothing can still arrive
// by now, so the answer is the same on every run. It returns an error
// wrapping [ErrClosed] if the FIFO is drained and the writer finished at
// least L cycles ago (the end of the stream travels like an element).
func (f *FIFO[T]) PeekAt(c *Ctx) (T, bool, error) {
	var zero T
	if f.reader != c.a {
		return zero, false, f.misuse(c, "peek on", "Reads")
	}
	if c.rec != nil {
		c.rec.fail("actor %q decides by arrival on fifo %q (PeekAt)", c.a.name, f.name)
	}
	j := f.rcount
	if f.rtail <= j {
		f.rtail = f.tail.Load()
	}
	if f.rtail <= j {
		w := waitFor{kind: waitPeekAt, f: &f.fifoBase, index: j, at: c.now}
		if !w.ready(c) {
			if err := c.wait(&w); err != nil {
				return zero, false, fmt.Errorf("peek on fifo %q: %w", f.name, err)
			}
		}
		f.rtail = f.tail.Load()
		if f.rtail <= j {
			// The end of the stream is an event too: visible L cycles
			// after the writer finished. Before that, "nothing now" is the
			// answer on every run, whether or not the writer has finished
			// in wall time.
			if f.writerDone.Load() && f.writerDoneAt+f.latency <= c.now {
				return zero, false, fmt.Errorf("peek on fifo %q: %w", f.name, ErrClosed)
			}
			return zero, false, nil
		}
	}
	if f.sent[f.rpos]+f.latency > c.now {
		return zero, false, nil
	}
	return f.vals[f.rpos], true, nil
}

// Select waits until one of inputs has an element and returns the index of
// the one whose next element is visible first, advancing the clock to that
// time (counted as starved cycles of the chosen input). Elements already
// visible at the current clock count as visible now; ties go to the earlier
// input. It returns an error wrapping [ErrClosed] once every input is closed
// and drained.
//
// Like PeekAt, Select waits for the clocks of writers without data. If such
// a writer is itself waiting, directly or through other actors, for the
// selecting actor (say, a dispatcher that feeds the inputs round-robin and
// is blocked on a full FIFO behind them), that is a deadlock under these
// rules and is reported as one.
func Select(c *Ctx, inputs ...Port) (int, error) {
	for _, p := range inputs {
		if p.port().reader != c.a {
			return -1, p.port().misuse(c, "select on", "Reads")
		}
	}
	if c.rec != nil {
		c.rec.fail("actor %q decides by arrival (Select)", c.a.name)
	}
	best, final, closed := selectDecide(c, inputs)
	for !final {
		w := waitFor{kind: waitSelect, inputs: inputs, at: c.now}
		if err := c.wait(&w); err != nil {
			return -1, fmt.Errorf("select: %w", err)
		}
		best, final, closed = selectDecide(c, inputs)
	}
	if closed {
		return -1, fmt.Errorf("select: %w", ErrClosed)
	}
	f := inputs[best].port()
	f.rtail = f.tail.Load()
	if vis := f.sent[f.rpos] + f.latency; vis > c.now {
		c.stall(f, vis, false)
	}
	return best, nil
}

// selectDecide returns the input whose head is visible first and whether
// that choice is final: no input without an element can still deliver one
// that would win. closed reports that every input is closed and drained.
// Each input's writer clock is read before its tail: the writer publishes
// its sends before its clock, so the pair is consistent.
func selectDecide(c *Ctx, inputs []Port) (best int, final, closed bool) {
	best, bestAt := -1, int64(never)
	for i, p := range inputs {
		f := p.port()
		if f.tail.Load() > f.rcount {
			if at := max(c.now, f.sent[f.rpos]+f.latency); at < bestAt {
				best, bestAt = i, at
			}
		}
	}
	closed = true
	for i, p := range inputs {
		f := p.port()
		clock := f.writer.clock.Load()
		at := clock
		if f.tail.Load() > f.rcount {
			at = max(c.now, f.sent[f.rpos]+f.latency)
		} else if clock == never {
			continue // closed and drained
		} else {
			at += f.latency // the earliest a future element can be visible
		}
		closed = false
		if best < 0 || at < bestAt || (at == bestAt && i < best) {
			return best, false, false
		}
	}
	return best, true, closed
}

// watchClock asks (on) or stops asking (off) the writer to wake the reader
// once its clock reaches at.
func (f *fifoBase) watchClock(on bool, at int64) {
	if on {
		f.watch.Store(at)
		f.writer.watchers.Add(1)
	} else {
		f.watch.Store(never)
		f.writer.watchers.Add(-1)
	}
}

func (f *fifoBase) misuse(c *Ctx, op, decl string) error {
	return fmt.Errorf("%s fifo %q: not declared with %s for actor %q", op, f.name, decl, c.a.name)
}

// occupancy is the state of the sweep that builds a FIFO's time-weighted
// occupancy histogram: send and dequeue events in simulated-time order. The
// reader sweeps at each dequeue: by then every send up to the dequeued
// element is known, and the dequeue times not yet swept (at most C) are
// still in deq, since a slot is reused only after its credit.
type occupancy struct {
	hist  []int64 // cycles spent at each occupancy 0..C
	level int64
	max   int64
	last  int64 // time of the last event swept
	dnext int64 // index of the first dequeue not swept
	dpos  int64 // dnext % capacity
	// series is the occupancy over time, for plots. held is the
	// element-cycles within the bucket that ends at end not yet added to
	// it: a sum of integers, where a sum of floats in the bucket at every
	// event was a chain of dependent adds.
	series series
	held   int64
	end    int64
}

// span accounts the time from the last event to t at the current level.
func (o *occupancy) span(t int64) {
	if t > o.end {
		o.spill(t)
		return
	}
	dt := t - o.last
	o.hist[o.level] += dt
	o.held += o.level * dt
	o.last = t
}

// spill is span for a span that leaves held's bucket: it adds held and the
// span to the series, and starts holding from t in t's bucket. It repeats
// span's two lines so that span stays small.
func (o *occupancy) spill(t int64) {
	o.flush()
	s := &o.series
	s.add(o.last, t, float64(o.level))
	o.hist[o.level] += t - o.last
	o.last = t
	// The series' last bucket ends at width*seriesBuckets; a span beyond
	// it must go through add, which coarsens.
	o.end = min((t>>s.shift+1)<<s.shift, s.width()*seriesBuckets)
}

// flush adds held to its bucket, the one that ends at end (held is not 0
// only after a span of that bucket, so end is past its start).
func (o *occupancy) flush() {
	if o.held != 0 {
		o.series.addAt(o.end-1, float64(o.held))
		o.held = 0
	}
}

// sweepSend sweeps the dequeues at or before a send at time e, then the
// send. Dequeues go first at equal times so that the maximum is not
// overstated.
func (f *fifoBase) sweepSend(e int64) {
	f.sweepDeqs(e)
	o := &f.occ
	o.span(e)
	o.level++
	o.max = max(o.max, o.level)
	if f.trace != nil {
		f.trace.counter(e, o.level)
	}
}

// sweepDeqs sweeps the dequeues done so far at or before time t.
func (f *fifoBase) sweepDeqs(t int64) {
	o := &f.occ
	for o.dnext < f.rcount && f.deq[o.dpos] <= t {
		d := f.deq[o.dpos]
		o.span(d)
		o.level--
		if f.trace != nil {
			f.trace.counter(d, o.level)
		}
		o.dnext++
		if o.dpos++; o.dpos == f.capacity {
			o.dpos = 0
		}
	}
}

// finishOccupancy sweeps the events left when the run is over: sends never
// read and pending dequeues, then the final level up to the makespan.
func (f *fifoBase) finishOccupancy(makespan int64) {
	pos := f.rpos
	for k := f.rcount; k < f.wcount; k++ {
		f.sweepSend(f.sent[pos])
		if pos++; pos == f.capacity {
			pos = 0
		}
	}
	f.sweepDeqs(never)
	f.occ.span(makespan)
	f.occ.flush()
}
