package runtime

import (
	"context"
	"fmt"
	"math"
	goruntime "runtime"
	"sync/atomic"
	"unsafe"
)

// never is the clock of a finished actor: infinitely far ahead.
const never = math.MaxInt64

// Actor states seen by wakers and the watchdog, in the low two bits of
// actor.state; the bits above count parks, so that one atomic add both parks
// and tells the watchdog that something happened.
const (
	running uint64 = iota
	parked
	finished
	stateBits = 3
	onePark   = 4
)

// actor is the shared part of an actor: what other goroutines may touch.
type actor struct {
	name     string
	index    int
	body     func(*Ctx) error
	inputs   []*fifoBase
	outputs  []*fifoBase
	wake     chan struct{} // one token: "something you wait for may have changed"
	parkedOn waitFor       // the current wait; the watchdog reads it while state says parked
	co       *component    // non-nil when run as a coroutine of a component
	coPos    int           // a's place in co.ctxs

	_         [64]byte
	cancelled atomic.Bool   // the run is over: waits return ErrCancelled
	state     atomic.Uint64 // park count << 2 | running, parked or finished
	clock     atomic.Int64  // published local clock: a lower bound of the real one
	watchers  atomic.Int32  // readers waiting for this actor's clock to pass a threshold
}

// wakeup unparks a if it is parked. Spurious wakeups are harmless: waits
// re-check their condition.
func (a *actor) wakeup() {
	if a.unpark() {
		if a.co != nil {
			a.co.pushRemote(a)
		} else {
			a.signal()
		}
	}
}

// wakeLocal is wakeup by an actor of a's own group of coroutines, on its
// goroutine.
func (a *actor) wakeLocal() {
	if a.unpark() {
		a.co.push(a)
	}
}

// unpark moves a from parked to running and reports whether it did (a
// parked actor is woken once). The load first: a waker often calls this
// many times before the woken actor runs, and a failing CAS still costs a
// locked op.
func (a *actor) unpark() bool {
	s := a.state.Load()
	return s&stateBits == parked && a.state.CompareAndSwap(s, s&^stateBits)
}

// wakeReader and wakeWriter wake f's reader or writer from the other end.
func (f *fifoBase) wakeReader() {
	if f.lazy {
		f.reader.wakeLocal()
	} else {
		f.reader.wakeup()
	}
}

func (f *fifoBase) wakeWriter() {
	if f.lazy {
		f.writer.wakeLocal()
	} else {
		f.writer.wakeup()
	}
}

// signal leaves a's wake token, unless one is already there; for a
// coroutine, its group's.
func (a *actor) signal() {
	if a.co != nil {
		a.co.poke()
		return
	}
	select {
	case a.wake <- struct{}{}:
	default:
	}
}

// publish makes now visible to readers waiting on a's clock and wakes those
// whose threshold it reaches.
func (a *actor) publish(now int64) {
	a.clock.Store(now)
	for _, f := range a.outputs {
		if f.watch.Load() <= now {
			f.wakeReader()
		}
	}
}

// Ctx is an actor's handle on simulated time. It belongs to the actor's
// goroutine and must not be shared.
type Ctx struct {
	_       [isolation]byte
	a       *actor
	now     int64
	starved []int64 // per input, in Reads order
	blocked []int64 // per output, in Writes order
	labels  []LabelCycles
	labelAt map[string]int // index in labels
	last    int            // index in labels of the last Work label, a cache for loops
	runCtx  context.Context
	trace   *track // nil when not tracing
	rec     *tape  // nil when not recording
	// suspend hands the thread back to the component's driver; nil unless
	// the actor runs as a coroutine. It returns false once the run is over.
	suspend func(struct{}) bool
	_       [isolation]byte
}

// Name returns the actor's name.
func (c *Ctx) Name() string { return c.a.name }

// Context returns the run's context, done when the run is cancelled. FIFO
// operations watch it themselves; an actor that waits for something else in
// wall time (I/O, a long computation) can watch it too.
func (c *Ctx) Context() context.Context { return c.runCtx }

// Now returns the actor's local clock in cycles.
func (c *Ctx) Now() int64 { return c.now }

// Work advances the local clock by n busy cycles attributed to label (for
// per-label statistics and trace slices). n must not be negative.
func (c *Ctx) Work(n int64, label string) {
	if n < 0 {
		panic(fmt.Sprintf("runtime: Work(%d, %q): negative cycles", n, label))
	}
	if n == 0 {
		return
	}
	i := c.last
	if i >= len(c.labels) || !sameString(c.labels[i].Label, label) {
		i = c.labelIndex(label)
		c.last = i
	}
	c.labels[i].Cycles += n // busy cycles are the labels' sum
	if c.trace != nil {
		c.trace.slice(label, c.now, n)
	}
	c.now += n
	if c.a.watchers.Load() != 0 { // setNow, written out: Work is the hottest call
		c.a.publish(c.now)
	}
}

// sameString is a == b without a call to compare the bytes when a and b
// are one string, as they are when an actor passes Work a constant.
func sameString(a, b string) bool {
	return len(a) == len(b) && (unsafe.StringData(a) == unsafe.StringData(b) || a == b)
}

func (c *Ctx) labelIndex(label string) int {
	if i, ok := c.labelAt[label]; ok {
		return i
	}
	if c.labelAt == nil {
		c.labelAt = make(map[string]int)
	}
	c.labelAt[label] = len(c.labels)
	if len(c.labels) == cap(c.labels) {
		l := isolated[LabelCycles](max(2*len(c.labels), 4))
		c.labels = l[:copy(l, c.labels)]
	}
	c.labels = append(c.labels, LabelCycles{Label: label})
	return len(c.labels) - 1
}

// setNow moves the clock forward, publishing it only when some reader waits
// on it: an atomic store per Work would cost more than the rest of Work.
func (c *Ctx) setNow(t int64) {
	c.now = t
	if c.a.watchers.Load() != 0 {
		c.a.publish(t)
	}
}

// stall accounts a jump of the clock from c.now to t spent waiting on f.
func (c *Ctx) stall(f *fifoBase, t int64, blocked bool) {
	d := t - c.now
	if blocked {
		c.blocked[f.writerPort] += d
	} else {
		c.starved[f.readerPort] += d
	}
	if c.trace != nil {
		name := f.starvedBy
		if blocked {
			name = f.blockedBy
		}
		c.trace.stall(name, c.now, d)
	}
	c.setNow(t)
}

// Wait kinds.
const (
	waitSpace  = iota // writer needs the credit of element index
	waitData          // reader needs element index
	waitPeekAt        // reader needs element index or the writer's clock past a time
	waitSelect        // reader needs a Select decision to become final
)

// waitFor describes a blocking wait, evaluated by its waiter and read by the
// watchdog for deadlock reports.
type waitFor struct {
	kind   int
	f      *fifoBase
	index  int64
	inputs []Port // waitSelect
	at     int64  // reader clock for waitPeekAt and waitSelect
}

// ready reports whether the wait is over (including because of an ending
// such as a closed FIFO, which the caller then detects itself).
func (w *waitFor) ready(c *Ctx) bool {
	switch w.kind {
	case waitSpace:
		return w.f.head.Load() > w.index || w.f.readerDone.Load()
	case waitData:
		return w.f.tail.Load() > w.index || w.f.writerDone.Load()
	case waitPeekAt:
		// The clock first: see selectDecide.
		clock := w.f.writer.clock.Load()
		return w.f.tail.Load() > w.index || clock > w.at-w.f.latency
	default:
		_, final, _ := selectDecide(c, w.inputs)
		return final
	}
}

// arm asks the other side(s) to wake the waiter; disarm withdraws that.
func (w *waitFor) arm(c *Ctx, on bool) {
	switch w.kind {
	case waitSpace:
		w.f.sendWaiting.Store(on)
	case waitData:
		w.f.recvWaiting.Store(on)
	case waitPeekAt:
		w.f.recvWaiting.Store(on)
		w.f.watchClock(on, w.at-w.f.latency+1)
	default:
		for _, p := range w.inputs {
			f := p.port()
			f.recvWaiting.Store(on)
			// A strictly later clock than c.now-L settles any input; asking
			// for that much is simpler than the exact per-input bound and
			// wakes at most once more.
			f.watchClock(on, w.at-f.latency+1)
		}
	}
}

// wait blocks until w is ready or the run is cancelled. An actor on a
// goroutine first yields to a runnable peer (see yield), then parks; an
// actor run as a coroutine suspends instead, until its component's driver
// resumes it, after a neighbour has woken it (see actor.wakeup) or to
// cancel it. It never spins: on this 2-core machine spinning (10 to 10,000
// re-checks) only made the merge benchmark slower, as the other side is
// rarely running on the other core.
func (c *Ctx) wait(w *waitFor) error {
	a := c.a
	a.parkedOn = *w
	pw := &a.parkedOn // w itself must not escape: it lives on the caller's stack
	a.publishCredits()
	if c.suspend != nil {
		a.publishTails() // a coroutine's sends are published lazily (see lazy)
	} else if c.yield(pw) {
		return nil
	}
	for {
		// Parked (and the park counted) before armed: a neighbour that
		// sees the arm sees this park (see Recv).
		a.state.Add(onePark + parked)
		pw.arm(c, true)
		if a.clock.Load() != c.now {
			a.publish(c.now) // readers may be waiting for this clock
		}
		ok := true // false: the driver ended the coroutine's run
		ready := pw.ready(c)
		if !ready && !a.cancelled.Load() {
			if c.suspend != nil {
				ok = c.suspend(struct{}{})
			} else {
				<-a.wake // from a neighbour, or from cancel
			}
		}
		// Back to running, unless a waker has done it already.
		if s := a.state.Load(); s&stateBits == parked {
			a.state.CompareAndSwap(s, s&^stateBits)
		}
		pw.arm(c, false)
		if ready || pw.ready(c) {
			return nil
		}
		if !ok || a.cancelled.Load() {
			return fmt.Errorf("%w: %w", ErrCancelled, context.Cause(c.runCtx))
		}
	}
}

// maxYields bounds how often a wait yields the processor to a runnable peer
// before parking.
const maxYields = 4

// yield gives the processor to the actor that w waits for while that actor
// is runnable, and reports whether w became ready meanwhile. With fewer
// processors than actors (always so at GOMAXPROCS=1) the peer is usually
// runnable but not running; letting it run is much cheaper than a park and
// the wakeup that ends it.
func (c *Ctx) yield(w *waitFor) bool {
	var peer *actor
	switch w.kind {
	case waitSpace:
		peer = w.f.reader
	case waitData:
		peer = w.f.writer
	default:
		return false
	}
	if c.a.clock.Load() != c.now {
		c.a.publish(c.now) // readers may be waiting for this clock
	}
	for range maxYields {
		if peer.state.Load()&stateBits != running || c.a.cancelled.Load() {
			return false
		}
		goruntime.Gosched()
		if w.ready(c) {
			return true
		}
	}
	return false
}
