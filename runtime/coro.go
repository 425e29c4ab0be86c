package runtime

import (
	"context"
	"errors"
	"fmt"
	"iter"
	goruntime "runtime"
	"slices"
	"sync"
	"sync/atomic"
)

// Scheduler chooses how Run maps actors onto goroutines. It changes wall
// time only: outputs, statistics, traces and records are the same for every
// scheduler.
type Scheduler int

const (
	// SchedulerAuto, the default, runs a small component (at most
	// autoGroupActors actors) as coroutines of one goroutine and splits a
	// large one (more than autoSplitActors) into GOMAXPROCS groups of
	// coroutines, joined by FIFOs that wake across goroutines as with
	// SchedulerGoroutines; it runs a component in between on goroutines,
	// and every component as coroutines of one goroutine at GOMAXPROCS 1.
	// Measured on 2 cores: a short pipeline of light actors (the merge
	// benchmark) gains most from cheap switches; a wide graph of many
	// similar actors (the adder tree) splits evenly; a few heavy, unequal
	// actors (the DeiT-S accelerator's 15 units, whose numerics overlap)
	// are balanced best by Go's scheduler (slower on one or two groups,
	// though only measured under load).
	SchedulerAuto Scheduler = iota
	// SchedulerGoroutines runs every actor on a goroutine of its own.
	SchedulerGoroutines
	// SchedulerCoroutines runs each weakly connected component of the
	// graph (actors joined by FIFOs) on one goroutine, its actors as
	// coroutines: a wait hands the thread to another actor of the
	// component whose wait is over, without the Go scheduler.
	SchedulerCoroutines
)

// errGoexit fails a run in which an actor called runtime.Goexit (t.FailNow,
// say), which no recover sees.
var errGoexit = errors.New("runtime.Goexit called by an actor")

// Component sizes (actors) at which SchedulerAuto changes its mind.
const (
	autoGroupActors = 8
	autoSplitActors = 64
)

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

// component is a group of actors run as coroutines on one goroutine: a
// whole weakly connected component of the graph, or a part of a large one.
// Its queue is touched by that goroutine only; an actor of another group
// wakes one of k's through remote.
type component struct {
	_    [isolation]byte
	ctxs []*Ctx
	// queue is a ring of the actors whose wait may be over, in the order
	// woken. A wakeup queues an actor when it moves it from parked to
	// running, so it is there once, but for a remote wakeup that raced
	// with the actor finding its wait over by itself.
	queue []*actor
	qhead int
	qlen  int
	next  *actor // runs before the queue

	// cross: some FIFO joins k to another group, so an empty queue waits
	// for a remote wakeup (or the watchdog) instead of meaning deadlock.
	cross   bool
	mu      sync.Mutex
	remote  []*actor // woken by other goroutines, under mu
	pending atomic.Bool
	wake    chan struct{} // a token: remote is not empty, or the run is over
	_       [isolation]byte
}

// pushRemote queues a from another goroutine.
func (k *component) pushRemote(a *actor) {
	k.mu.Lock()
	k.remote = append(k.remote, a)
	k.pending.Store(true)
	k.mu.Unlock()
	k.poke()
}

// poke leaves k's wake token.
func (k *component) poke() {
	select {
	case k.wake <- struct{}{}:
	default:
	}
}

// drain moves the remote wakeups to the queue.
func (k *component) drain() {
	k.mu.Lock()
	for i, a := range k.remote {
		k.enqueue(a)
		k.remote[i] = nil
	}
	k.remote = k.remote[:0]
	k.pending.Store(false)
	k.mu.Unlock()
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
	if k.qlen == len(k.queue) {
		q := isolated[*actor](max(2*len(k.queue), 8))
		for j := range k.qlen {
			q[j] = k.queue[(k.qhead+j)%len(k.queue)]
		}
		k.queue, k.qhead = q, 0
	}
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

// groups splits the components of g into the groups Run runs as
// coroutines, each on a goroutine of its own; a component opt does not run
// as coroutines comes back as nil, its actors to run on goroutines.
// SchedulerAuto splits a large component into GOMAXPROCS groups: runs of
// its actors in depth-first order, which keeps a subtree or a stretch of
// pipeline together.
func (g *Graph) groups(ctxs []*Ctx, opt Options) (groups []*component, threads []*Ctx) {
	procs := goruntime.GOMAXPROCS(0)
	for _, comp := range g.components(ctxs) {
		parts := 0 // goroutines
		switch {
		case opt.split > 0:
			parts = opt.split
		case opt.Scheduler == SchedulerGoroutines:
		case opt.Scheduler == SchedulerCoroutines || procs == 1 || len(comp) <= autoGroupActors:
			parts = 1
		case len(comp) > autoSplitActors:
			parts = procs
		}
		switch parts = min(parts, len(comp)); parts {
		case 0:
			threads = append(threads, comp...)
		case 1:
			groups = append(groups, &component{ctxs: comp})
		default:
			order := depthFirst(ctxs, comp)
			for p := range parts {
				part := order[p*len(order)/parts : (p+1)*len(order)/parts]
				slices.SortFunc(part, func(x, y *Ctx) int { return x.a.index - y.a.index })
				groups = append(groups, &component{ctxs: part})
			}
		}
	}
	for _, k := range groups {
		k.queue = isolated[*actor](len(k.ctxs))
		k.wake = make(chan struct{}, 1)
		for i, c := range k.ctxs {
			c.a.co, c.a.coPos = k, i
		}
	}
	for _, f := range g.fifos {
		if f.writer.co != nil && f.writer.co == f.reader.co {
			f.lazy = true
		} else if f.writer.co != nil {
			f.writer.co.cross = true
			f.reader.co.cross = true
		}
	}
	return groups, threads
}

// depthFirst returns comp's actors in depth-first order over the FIFOs in
// either direction (inputs first), from its last actor (often its sink).
func depthFirst(ctxs []*Ctx, comp []*Ctx) []*Ctx {
	seen := make(map[*actor]bool, len(comp))
	order := make([]*Ctx, 0, len(comp))
	stack := []*actor{comp[len(comp)-1].a}
	for len(stack) > 0 {
		a := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if seen[a] {
			continue
		}
		seen[a] = true
		order = append(order, ctxs[a.index])
		// Pushed in reverse, so that the first input is visited first.
		for i := len(a.outputs) - 1; i >= 0; i-- {
			if b := a.outputs[i].reader; !seen[b] {
				stack = append(stack, b)
			}
		}
		for i := len(a.inputs) - 1; i >= 0; i-- {
			if b := a.inputs[i].writer; !seen[b] {
				stack = append(stack, b)
			}
		}
	}
	return order
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
	actors := make([]*actor, len(k.ctxs))
	for i, c := range k.ctxs {
		co := &cos[i]
		actors[i] = c.a
		co.next, co.stop = iter.Pull(func(yield func(struct{}) bool) {
			c.suspend = yield
			co.err = runActor(c, cancel)
		})
		k.enqueue(c.a) // every actor starts runnable, in graph order
	}
	var first error
	live := len(cos)
	cancelled := &k.ctxs[0].a.cancelled
	returned := false
	defer func() {
		if returned {
			return
		}
		// An actor called runtime.Goexit, which next passes on to this
		// goroutine: fail the run and unwind the others all the same.
		cancel(errGoexit)
		for _, c := range k.ctxs {
			c.a.cancelled.Store(true)
		}
		for i := range cos {
			if co := &cos[i]; !co.done {
				co.done = true
				co.stop()
				finished()
			}
		}
	}()
	for live > 0 {
		if k.cross && k.pending.Load() {
			k.drain()
		}
		a := k.pop()
		for a == nil && k.cross && !cancelled.Load() {
			<-k.wake // a remote wakeup, or the watchdog's cancelAll
			k.drain()
			a = k.pop()
		}
		if a == nil {
			if !cancelled.Load() {
				first = deadlockAmong(actors)
				cancel(first)
			}
			break
		}
		if a.cancelled.Load() {
			break
		}
		co := &cos[a.coPos]
		if co.done {
			continue // a remote wakeup that raced with the actor's own check
		}
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
	returned = true
	return first
}
