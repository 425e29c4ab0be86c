package runtime

import (
	"context"
	"fmt"
	"iter"
)

// Scheduler chooses how Run maps actors onto goroutines. It changes wall
// time only: outputs, statistics, traces and records are the same for every
// scheduler.
type Scheduler int

const (
	// SchedulerAuto, the default, runs a component of at most
	// autoCoroutineActors actors as coroutines and a larger one as
	// goroutines: a short pipeline of light actors gains most from cheap
	// switches, a wide graph (an adder tree) or one of heavy actors (the
	// accelerator's 15 units, whose numerics overlap) from the cores.
	SchedulerAuto Scheduler = iota
	// SchedulerGoroutines runs every actor on a goroutine of its own.
	SchedulerGoroutines
	// SchedulerCoroutines runs each weakly connected component of the
	// graph (actors joined by FIFOs) on one goroutine, its actors as
	// coroutines: a wait hands the thread to another actor of the
	// component whose wait is over, without the Go scheduler.
	SchedulerCoroutines
)

// autoCoroutineActors is the largest component SchedulerAuto runs as
// coroutines. Measured on 2 cores: the merge benchmark's 4-actor
// pipelines gain 1.3x to 3x as coroutines, the 2047-actor adder tree and
// the 15-actor DeiT-S accelerator lose 7% to 40% on one goroutine.
const autoCoroutineActors = 8

// coroutines reports whether s runs a component of n actors as coroutines.
func (s Scheduler) coroutines(n int) bool {
	switch s {
	case SchedulerGoroutines:
		return false
	case SchedulerCoroutines:
		return true
	}
	return n <= autoCoroutineActors
}

func (s Scheduler) String() string {
	switch s {
	case SchedulerAuto:
		return "auto"
	case SchedulerGoroutines:
		return "goroutines"
	case SchedulerCoroutines:
		return "coroutines"
	}
	return fmt.Sprintf("Scheduler(%d)", int(s))
}

// component is one weakly connected component of a graph run as
// coroutines on one goroutine. Everything in it is touched by that
// goroutine only (the actors' atomics aside, which the watchdog reads).
type component struct {
	ctxs []*Ctx
	// queue is a ring of the actors whose wait may be over, in the order
	// woken. An actor is queued only when a wakeup moves it from parked to
	// running, so it is there at most once and len(ctxs) slots suffice.
	queue []*actor
	qhead int
	qlen  int
	next  *actor // runs before the queue
}

// push queues a, which a wakeup has just marked running. The actor woken
// last runs first (its FIFO is still in cache), as with Go's runnext: the
// one it displaces goes to the back of the queue.
func (k *component) push(a *actor) {
	if k.next != nil {
		k.enqueue(k.next)
	}
	k.next = a
}

func (k *component) enqueue(a *actor) {
	i := k.qhead + k.qlen
	if i >= len(k.queue) {
		i -= len(k.queue)
	}
	k.queue[i] = a
	k.qlen++
}

// pop returns the next queued actor, or nil.
func (k *component) pop() *actor {
	if a := k.next; a != nil {
		k.next = nil
		return a
	}
	if k.qlen == 0 {
		return nil
	}
	a := k.queue[k.qhead]
	k.queue[k.qhead] = nil
	if k.qhead++; k.qhead == len(k.queue) {
		k.qhead = 0
	}
	k.qlen--
	return a
}

// components returns the weakly connected components of g, each listing
// its actors' contexts in graph order, the components ordered by their
// first actor.
func (g *Graph) components(ctxs []*Ctx) [][]*Ctx {
	parent := make([]int, len(g.actors))
	for i := range parent {
		parent[i] = i
	}
	var find func(int) int
	find = func(i int) int {
		for parent[i] != i {
			parent[i] = parent[parent[i]]
			i = parent[i]
		}
		return i
	}
	for _, f := range g.fifos {
		r, w := find(f.reader.index), find(f.writer.index)
		if r != w {
			parent[max(r, w)] = min(r, w)
		}
	}
	var comps [][]*Ctx
	at := make(map[int]int) // root -> index in comps
	for i, c := range ctxs {
		r := find(i)
		k, ok := at[r]
		if !ok {
			k = len(comps)
			at[r] = k
			comps = append(comps, nil)
		}
		comps[k] = append(comps[k], c)
	}
	return comps
}

// coroutine is one actor of a component.
type coroutine struct {
	next    func() (struct{}, bool)
	stop    func()
	err     error
	started bool
	done    bool
}

// runComponent runs the actors of k as coroutines on the calling goroutine
// until they all finish, one fails, the run is cancelled, or no actor of k
// can move: a deadlock, reported at once with the error the watchdog would
// build. finished is called once per actor that ends.
func (g *Graph) runComponent(k *component, cancel context.CancelCauseFunc, finished func()) error {
	cos := make([]coroutine, len(k.ctxs))
	k.queue = make([]*actor, len(k.ctxs))
	actors := make([]*actor, len(k.ctxs))
	for i, c := range k.ctxs {
		co := &cos[i]
		c.a.coPos = i
		actors[i] = c.a
		c.a.co = k
		co.next, co.stop = iter.Pull(func(yield func(struct{}) bool) {
			c.suspend = yield
			co.err = runActor(c, cancel)
		})
		k.enqueue(c.a) // every actor starts runnable, in graph order
		for _, f := range c.a.outputs {
			f.lazy = true // its reader is in k too
		}
	}
	var first error
	live := len(cos)
	for live > 0 {
		a := k.pop()
		if a == nil {
			if !k.ctxs[0].a.cancelled.Load() {
				first = deadlockAmong(actors)
				cancel(first)
			}
			break
		}
		if a.cancelled.Load() {
			break
		}
		co := &cos[a.coPos]
		co.started = true
		if _, ok := co.next(); !ok {
			co.done = true
			live--
			finished()
			if co.err != nil {
				first = co.err
				break
			}
		}
	}
	if live > 0 {
		// Unwind every suspended actor: its wait returns ErrCancelled.
		for _, c := range k.ctxs {
			c.a.cancelled.Store(true)
		}
		for i := range cos {
			if co := &cos[i]; !co.done {
				if co.started {
					co.stop()
				} else {
					// Run it, so that its body sees the cancellation
					// like every other actor's.
					co.next()
					co.stop()
				}
				co.done = true
				finished()
			}
		}
	}
	return first
}

// coWait is wait for an actor run as a coroutine: instead of parking, it
// suspends until its component's driver resumes it, after a neighbour has
// woken it (see actor.wakeup) or to cancel it.
func (c *Ctx) coWait(w *waitFor) error {
	a := c.a
	a.parkedOn = *w
	pw := &a.parkedOn
	a.publishCredits()
	a.publishTails()
	for {
		// As in wait: parked before armed, the clock published for
		// readers that wait on it, then the condition checked again.
		a.state.Add(onePark + parked)
		pw.arm(c, true)
		if a.clock.Load() != c.now {
			a.publish(c.now)
		}
		ok := true
		ready := pw.ready(c)
		if !ready && !a.cancelled.Load() {
			ok = c.suspend(struct{}{})
		}
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
