package runtime

import (
	"errors"
	"fmt"
	"math"
)

// The record of a run and its re-timing: see "Re-timing a recorded run"
// in the package doc. Each actor's tape holds its events in program order;
// an event's time is the latest (for opMin the earliest) of its edges,
// each an earlier event of the same actor plus a constant, and for a FIFO
// operation of the other end's event too, which Retime finds by element.

// Tick is a simulated time; in a recorded run it also names the event it
// was computed from, so that the record knows how the time depends on
// others. A Tick belongs to the actor whose Ctx made it. Outside a recorded
// run a Tick is only its time.
type Tick struct {
	At   int64
	node int32 // 1 + index of the event in the actor's tape; 0: a constant
}

// TickAt is the constant time t.
func TickAt(t int64) Tick { return Tick{At: t} }

// Add is t plus d cycles.
func (t Tick) Add(d int64) Tick {
	t.At += d
	return t
}

// ErrChoiceChanged is returned by Record.Retime when an actor's recorded
// decision by time (Ctx.Before) would go the other way at the capacities
// asked for: the run would not do the same operations, and only running it
// again says what it does.
var ErrChoiceChanged = errors.New("a decision by time changes")

// Event kinds.
const (
	opMax  uint8 = iota // the latest of the edges
	opMin               // the earliest of the edges
	opIf                // edges a, b, x, y: x if a < b, else y
	opSend              // the latest of the edges and element elem's credit
	opRecv              // the latest of the edges and element elem's visible time: its dequeue
	opPeek              // the same without the dequeue
	opVis               // element elem's visible time
)

// event is one recorded time: the combination op of its edges (for FIFO
// operations, and of the other end's time).
type event struct {
	op   uint8
	fifo int32
	elem int64
	e0   int32 // its edges are tape.edges[e0:] up to the next event's
	at   int64 // the recorded time
}

// edge is a dependency on an event of the same actor plus d cycles, or the
// constant d (from < 0).
type edge struct {
	from int32
	d    int64
}

// guard is a recorded comparison a < b and its outcome, made once the
// actor had after events.
type guard struct {
	a, b  edge
	less  bool
	after int32
}

// tape is one actor's record.
type tape struct {
	events []event
	edges  []edge
	guards []guard
	clock  int32 // the event the clock counts from (-1: from 0)
	final  edge  // the clock when the actor finished
	err    string
}

func newTape() *tape { return &tape{clock: -1} }

// edgeOf is the dependency that gives t.
func (tp *tape) edgeOf(t Tick) edge {
	n := t.node - 1
	if n < 0 {
		return edge{from: -1, d: t.At}
	}
	return edge{from: n, d: t.At - tp.events[n].at}
}

// clockEdge is the dependency that gives now on the actor's own clock.
func (tp *tape) clockEdge(now int64) edge { return tp.edgeOf(Tick{At: now, node: tp.clock + 1}) }

// add appends an event with the edges appended since e0.
func (tp *tape) add(op uint8, fifo int32, elem int64, e0 int, at int64) int32 {
	tp.events = append(tp.events, event{op: op, fifo: fifo, elem: elem, e0: int32(e0), at: at})
	return int32(len(tp.events) - 1)
}

// fifoOp records a FIFO operation that started at t0 and left the clock at
// now, and moves the clock to it.
func (tp *tape) fifoOp(op uint8, f *fifoBase, elem, t0, now int64) {
	e0 := len(tp.edges)
	tp.edges = append(tp.edges, tp.clockEdge(t0))
	tp.clock = tp.add(op, int32(f.index), elem, e0, now)
}

// fail keeps the first misuse, which Retime reports.
func (tp *tape) fail(format string, args ...any) {
	if tp.err == "" {
		tp.err = fmt.Sprintf(format, args...)
	}
}

// combine records at = op(ts) (opMax or opMin), dropping operands that
// cannot decide it: of several offsets of one event (or constants), all
// but the latest for max, the earliest for min; and for max, constants of
// at most 0, since no time is negative. An operation left with one operand
// is that operand, without an event.
func (tp *tape) combine(op uint8, at int64, ts []Tick) Tick {
	e0 := len(tp.edges)
	better := func(x, y int64) bool { return x > y }
	if op == opMin {
		better = func(x, y int64) bool { return x < y }
	}
	for _, t := range ts {
		e := tp.edgeOf(t)
		if op == opMax && e.from < 0 && e.d <= 0 {
			continue
		}
		dup := false
		for k := e0; k < len(tp.edges); k++ {
			if tp.edges[k].from == e.from {
				if better(e.d, tp.edges[k].d) {
					tp.edges[k].d = e.d
				}
				dup = true
				break
			}
		}
		if !dup {
			tp.edges = append(tp.edges, e)
		}
	}
	switch n := len(tp.edges) - e0; {
	case n == 0:
		return Tick{At: at}
	case n == 1:
		e := tp.edges[e0]
		tp.edges = tp.edges[:e0]
		if e.from < 0 {
			return Tick{At: at}
		}
		return Tick{At: at, node: e.from + 1}
	}
	return Tick{At: at, node: tp.add(op, -1, 0, e0, at) + 1}
}

// Clock is the actor's clock as a Tick.
func (c *Ctx) Clock() Tick {
	if c.rec == nil {
		return Tick{At: c.now}
	}
	return Tick{At: c.now, node: c.rec.clock + 1}
}

// Max is the latest of ts (at least one).
func (c *Ctx) Max(ts ...Tick) Tick {
	at := ts[0].At
	for _, t := range ts[1:] {
		at = max(at, t.At)
	}
	if c.rec == nil {
		return Tick{At: at}
	}
	return c.rec.combine(opMax, at, ts)
}

// Min is the earlier of a and b.
func (c *Ctx) Min(a, b Tick) Tick {
	at := min(a.At, b.At)
	if c.rec == nil {
		return Tick{At: at}
	}
	return c.rec.combine(opMin, at, []Tick{a, b})
}

// IfBefore is x if a is before b, else y: a choice by time that changes
// no operation, only a time, which a record can therefore follow.
func (c *Ctx) IfBefore(a, b, x, y Tick) Tick {
	t := y
	if a.At < b.At {
		t = x
	}
	if c.rec == nil || a.node|b.node == 0 {
		return t // no record, or a choice between constants
	}
	tp := c.rec
	e0 := len(tp.edges)
	tp.edges = append(tp.edges, tp.edgeOf(a), tp.edgeOf(b), tp.edgeOf(x), tp.edgeOf(y))
	return Tick{At: t.At, node: tp.add(opIf, -1, 0, e0, t.At) + 1}
}

// Before reports whether a is before b. An actor that decides what to do
// next by time asks Before, so that a record of the run knows the decision
// (see Record.Retime).
func (c *Ctx) Before(a, b Tick) bool {
	less := a.At < b.At
	if c.rec != nil && a.node|b.node != 0 {
		tp := c.rec
		tp.guards = append(tp.guards, guard{a: tp.edgeOf(a), b: tp.edgeOf(b), less: less, after: int32(len(tp.events))})
	}
	return less
}

// Rebase tells a recorded run that the clock, which the actor has moved to
// t.At with Work, is t: it moved there because of t, not by a fixed number
// of cycles. An actor that works until a time it computed calls it after
// the Work.
func (c *Ctx) Rebase(t Tick) {
	if c.rec == nil {
		return
	}
	if t.At != c.now {
		c.rec.fail("actor %q rebased its clock at cycle %d to cycle %d", c.a.name, c.now, t.At)
		return
	}
	c.rec.clock = t.node - 1
}

// Record is the dependency record of a run (Options.Record), which
// Retime evaluates for other FIFO capacities.
type Record struct {
	actors   []string
	tapes    []*tape
	fifos    []recFIFO
	makespan int64
}

// recFIFO is one FIFO of a record: where each element's send and dequeue are.
type recFIFO struct {
	name           string
	capacity       int64
	latency        int64
	writer, reader int
	sends, deqs    []int32 // events in the writer's and the reader's tapes
}

// record assembles the actors' tapes once every actor has returned.
func (g *Graph) record(ctxs []*Ctx, makespan int64) *Record {
	r := &Record{makespan: makespan, fifos: make([]recFIFO, len(g.fifos))}
	for i, f := range g.fifos {
		r.fifos[i] = recFIFO{name: f.name, capacity: f.capacity, latency: f.latency, writer: f.writer.index, reader: f.reader.index}
	}
	for _, c := range ctxs {
		tp := c.rec
		tp.final = tp.clockEdge(c.now)
		r.actors = append(r.actors, c.a.name)
		r.tapes = append(r.tapes, tp)
		for k, e := range tp.events {
			switch e.op {
			case opSend:
				r.fifos[e.fifo].sends = append(r.fifos[e.fifo].sends, int32(k))
			case opRecv:
				r.fifos[e.fifo].deqs = append(r.fifos[e.fifo].deqs, int32(k))
			}
		}
	}
	return r
}

// Makespan is the recorded run's makespan.
func (r *Record) Makespan() int64 { return r.makespan }

// Capacities are the FIFOs' capacities in the recorded run, in the order
// they were created.
func (r *Record) Capacities() []int {
	c := make([]int, len(r.fifos))
	for i, f := range r.fifos {
		c[i] = int(f.capacity)
	}
	return c
}

// Events is the number of events recorded.
func (r *Record) Events() int {
	n := 0
	for _, tp := range r.tapes {
		n += len(tp.events)
	}
	return n
}

// NoWaitCapacities are, per FIFO, the smallest capacity at which no send
// of the recorded run would wait for a credit, the other events at their
// recorded times. For a run in which no send waited (say, with every FIFO
// as deep as the elements it carries), the run at these capacities or more
// is the recorded one, event for event.
func (r *Record) NoWaitCapacities() []int {
	caps := make([]int, len(r.fifos))
	for i, f := range r.fifos {
		w, rd := r.tapes[f.writer], r.tapes[f.reader]
		c, taken := int64(1), 0
		for k, s := range f.sends {
			e := &w.events[s]
			t0 := w.value(w.edges[e.e0], nil) // the clock when the send began
			for taken < len(f.deqs) && rd.events[f.deqs[taken]].at+1 <= t0 {
				taken++
			}
			c = max(c, int64(k-taken+1))
		}
		caps[i] = int(c)
	}
	return caps
}

// value is e's time with the tape's events at vals (nil: as recorded).
func (tp *tape) value(e edge, vals []int64) int64 {
	if e.from < 0 {
		return e.d
	}
	if vals == nil {
		return tp.events[e.from].at + e.d
	}
	return vals[e.from] + e.d
}

// Retime returns the makespan the recorded run would have had with the
// FIFO capacities caps (in creation order), evaluating its events in
// dependency order. It returns a *DeadlockError if the capacities make the
// run wait in a cycle, an error wrapping ErrReaderDone if a send would need
// the credit of an element that is never read, and one wrapping
// ErrChoiceChanged if a decision an actor made by time (Ctx.Before) would
// go the other way, so that the run would not be the recorded one. The
// makespan is exact otherwise: the run would do the same operations, and
// every time is the recorded function of the others. Retime may be called
// concurrently.
func (r *Record) Retime(caps []int) (int64, error) {
	if len(caps) != len(r.fifos) {
		return 0, fmt.Errorf("retime: %d capacities for %d fifos", len(caps), len(r.fifos))
	}
	for i, c := range caps {
		if err := checkCapacity(r.fifos[i].name, c); err != nil {
			return 0, fmt.Errorf("retime: %w", err)
		}
	}
	for _, tp := range r.tapes {
		if tp.err != "" {
			return 0, fmt.Errorf("retime: %s", tp.err)
		}
	}
	ev := evaluation{r: r, caps: caps, vals: make([][]int64, len(r.tapes)), pos: make([]int, len(r.tapes)),
		checked: make([]int, len(r.tapes)), sent: make([]int64, len(r.fifos)), taken: make([]int64, len(r.fifos))}
	for a, tp := range r.tapes {
		ev.vals[a] = make([]int64, len(tp.events))
	}
	stuck, err := ev.run()
	if err != nil {
		return 0, err
	}
	if stuck {
		return 0, ev.deadlock()
	}
	var makespan int64
	for a, tp := range r.tapes {
		makespan = max(makespan, tp.value(tp.final, ev.vals[a]))
	}
	return makespan, nil
}

// evaluation is one Retime in progress: each actor's next event and
// next guard, the values so far, and per FIFO the sends and dequeues
// evaluated.
type evaluation struct {
	r            *Record
	caps         []int
	vals         [][]int64
	pos, checked []int
	sent, taken  []int64
}

// run evaluates every actor's events as far as their dependencies allow,
// actor after actor, until all are done or none can move (stuck).
func (ev *evaluation) run() (stuck bool, err error) {
	r := ev.r
	for {
		moved, done := false, true
		for a, tp := range r.tapes {
			vals := ev.vals[a]
			p := ev.pos[a]
		events:
			for ; p < len(tp.events); p++ {
				e := &tp.events[p]
				v := int64(math.MinInt64)
				switch e.op {
				case opSend:
					f := &r.fifos[e.fifo]
					if j := e.elem - int64(ev.caps[e.fifo]); j >= 0 {
						if j >= int64(len(f.deqs)) {
							return false, fmt.Errorf("retime: actor %q: send on fifo %q: %w", r.actors[a], f.name, ErrReaderDone)
						}
						if ev.taken[e.fifo] <= j {
							break events
						}
						v = ev.vals[f.reader][f.deqs[j]] + 1
					}
				case opRecv, opPeek, opVis:
					f := &r.fifos[e.fifo]
					if ev.sent[e.fifo] <= e.elem {
						break events
					}
					v = ev.vals[f.writer][f.sends[e.elem]] + f.latency
				}
				end := len(tp.edges)
				if p+1 < len(tp.events) {
					end = int(tp.events[p+1].e0)
				}
				edges := tp.edges[e.e0:end]
				switch e.op {
				case opMin:
					v = math.MaxInt64
					for _, x := range edges {
						v = min(v, tp.value(x, vals))
					}
				case opIf:
					if tp.value(edges[0], vals) < tp.value(edges[1], vals) {
						v = tp.value(edges[2], vals)
					} else {
						v = tp.value(edges[3], vals)
					}
				default:
					for _, x := range edges {
						v = max(v, tp.value(x, vals))
					}
				}
				vals[p] = v
				switch e.op {
				case opSend:
					ev.sent[e.fifo]++
				case opRecv:
					ev.taken[e.fifo]++
				}
			}
			if p != ev.pos[a] {
				ev.pos[a], moved = p, true
				if err := ev.checkGuards(a); err != nil {
					return false, err
				}
			}
			if p < len(tp.events) {
				done = false
			}
		}
		if done {
			return false, nil
		}
		if !moved {
			return true, nil
		}
	}
}

// checkGuards fails if a decision actor a made by time comes out the
// other way on the events evaluated so far, as soon as they are: a
// re-timing that does not apply stops early.
func (ev *evaluation) checkGuards(a int) error {
	tp, vals := ev.r.tapes[a], ev.vals[a]
	k := ev.checked[a]
	for ; k < len(tp.guards) && int(tp.guards[k].after) <= ev.pos[a]; k++ {
		g := &tp.guards[k]
		if (tp.value(g.a, vals) < tp.value(g.b, vals)) != g.less {
			return fmt.Errorf("retime: actor %q at cycle %d: %w", ev.r.actors[a], tp.value(g.a, vals), ErrChoiceChanged)
		}
	}
	ev.checked[a] = k
	return nil
}

// deadlock describes the actors a stuck evaluation stopped at, as Run
// would have found them.
func (ev *evaluation) deadlock() error {
	r := ev.r
	e := &DeadlockError{}
	byActor := make(map[int]int)
	for a, tp := range r.tapes {
		p := ev.pos[a]
		if p >= len(tp.events) {
			continue
		}
		x := &tp.events[p]
		f := &r.fifos[x.fifo]
		b := BlockedActor{Actor: r.actors[a], Time: tp.value(tp.edges[x.e0], ev.vals[a]), FIFO: f.name,
			Occupancy: ev.sent[x.fifo] - ev.taken[x.fifo], Capacity: int64(ev.caps[x.fifo])}
		switch x.op {
		case opSend:
			b.Op, b.waitsFor = "send on", f.reader
		case opPeek:
			b.Op, b.waitsFor = "peek on", f.writer
		default:
			b.Op, b.waitsFor = "receive on", f.writer
		}
		byActor[a] = len(e.Blocked)
		e.Blocked = append(e.Blocked, b)
	}
	e.Cycle = waitCycle(e.Blocked, byActor)
	return e
}
