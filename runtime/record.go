package runtime

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
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

// ErrRecordTooLarge is returned by Record.Retime for a record that does not
// fit the layout it evaluates; only running the actors again gives its
// times.
var ErrRecordTooLarge = errors.New("the record is too large to re-time")

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
	flat     flat
	vals     sync.Pool // *[]int64 of the flat record's size, for Retime
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
	r.compile()
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
			t0 := w.value(w.edges[e.e0]) // the clock when the send began
			for taken < len(f.deqs) && rd.events[f.deqs[taken]].at+1 <= t0 {
				taken++
			}
			c = max(c, int64(k-taken+1))
		}
		caps[i] = int(c)
	}
	return caps
}

// value is e's time in the recorded run.
func (tp *tape) value(e edge) int64 {
	if e.from < 0 {
		return e.d
	}
	return tp.events[e.from].at + e.d
}

// Retime returns the makespan the recorded run would have had with the
// FIFO capacities caps (in creation order), evaluating its events in
// dependency order. It returns a *DeadlockError if the capacities make the
// run wait in a cycle, an error wrapping ErrReaderDone if a send would need
// the credit of an element that is never read, and one wrapping
// ErrChoiceChanged if a decision an actor made by time (Ctx.Before) would
// go the other way, so that the run would not be the recorded one, and
// ErrRecordTooLarge for a record beyond the layout it evaluates (more than
// 65,535 FIFOs or 2^31 events, an element past 2^32, an event of more
// than 255 operands, or an offset of more than 2^31 cycles from the event
// it depends on). The makespan is exact otherwise: the run would do the
// same operations, and every time is the recorded function of the others.
// Retime may be called concurrently.
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
	fl := &r.flat
	if fl.err != nil {
		return 0, fl.err
	}
	vals, _ := r.vals.Get().(*[]int64)
	if vals == nil {
		vals = new(make([]int64, int(fl.zero)+1+len(fl.consts)))
		copy((*vals)[fl.zero+1:], fl.consts)
	}
	defer r.vals.Put(vals)
	ev := evaluation{r: r, caps: make([]int64, len(caps)), vals: *vals,
		pos: slices.Clone(fl.start[:len(r.tapes)]), epos: slices.Clone(fl.estart),
		checked: make([]int, len(r.tapes)), sent: make([]int64, len(r.fifos)), taken: make([]int64, len(r.fifos))}
	for i, c := range caps {
		ev.caps[i] = int64(c)
	}
	stuck, err := ev.run()
	if err != nil {
		return 0, err
	}
	if stuck {
		return 0, ev.deadlock()
	}
	var makespan int64
	for _, e := range fl.final {
		makespan = max(makespan, ev.vals[e.from]+e.d)
	}
	return makespan, nil
}

// flat is a record laid out for Retime in as few bytes as will do, as
// Retime reads all of it each time: every actor's events in one index
// space (actor a's from start[a] to start[a+1]), their edges in one array
// in the same order (actor a's from estart[a]), each FIFO's sends and
// dequeues as indices into that space, and constants as slots after the
// events, zero (whose value is 0) and then consts: an edge reads a value
// without a branch.
type flat struct {
	start       []int32 // per actor, then the end
	estart      []int32 // per actor
	events      []flatEvent
	edges       []flatEdge
	zero        int32
	consts      []int64
	sends, deqs [][]int32 // per FIFO
	latency     []int64   // per FIFO
	final       []flatTime
	guards      [][]flatGuard // per actor
	err         error         // a record too large for the layout
}

// flatEvent is an event of a flat record, with its n edges next in the
// edge array.
type flatEvent struct {
	op   uint8
	n    uint8
	fifo uint16
	elem uint32
}

// flatEdge is the value of event from plus d.
type flatEdge struct {
	from int32
	d    int32
}

// flatTime is a flatEdge with a wide offset, outside the hot loop.
type flatTime struct {
	from int32
	d    int64
}

type flatGuard struct {
	a, b  flatTime
	less  bool
	after int32 // the index of the actor's first event not yet made
}

// compile lays out r's tapes as r.flat, or sets r.flat.err when a field
// does not fit. An element's visible time (opVis) is its send's time plus
// the latency: the edges that use it read the send instead, and the event
// goes (the receive right after it waits for the send).
func (r *Record) compile() {
	fl := &r.flat
	// Each event's index among its actor's kept events; for a visible
	// time, the number kept before it. One more entry counts them all.
	index := make([][]int32, len(r.tapes))
	n, m := 0, 0
	for a, tp := range r.tapes {
		idx := make([]int32, len(tp.events)+1)
		kept := int32(0)
		for k, e := range tp.events {
			idx[k] = kept
			if e.op != opVis {
				kept++
			}
		}
		idx[len(tp.events)] = kept
		index[a] = idx
		fl.start = append(fl.start, int32(n))
		n += int(kept)
		m += len(tp.edges)
	}
	fl.start = append(fl.start, int32(n))
	if len(r.fifos) > math.MaxUint16 || n >= math.MaxInt32-1 || m > math.MaxInt32 {
		fl.err = fmt.Errorf("retime: %d fifos, %d events and %d edges: %w", len(r.fifos), n, m, ErrRecordTooLarge)
		return
	}
	fl.zero = int32(n)
	fl.events, fl.edges = make([]flatEvent, 0, n), make([]flatEdge, 0, m)
	wide := func(a int, e edge) flatTime {
		if e.from < 0 {
			return flatTime{from: fl.zero, d: e.d}
		}
		if x := &r.tapes[a].events[e.from]; x.op == opVis {
			f := &r.fifos[x.fifo]
			return flatTime{from: fl.start[f.writer] + index[f.writer][f.sends[x.elem]], d: e.d + f.latency}
		}
		return flatTime{from: fl.start[a] + index[a][e.from], d: e.d}
	}
	for a, tp := range r.tapes {
		fl.estart = append(fl.estart, int32(len(fl.edges)))
		for k, e := range tp.events {
			end := len(tp.edges)
			if k+1 < len(tp.events) {
				end = int(tp.events[k+1].e0)
			}
			edges := end - int(e.e0)
			if e.op == opVis {
				continue // no edges of its own (RecvTick adds none): its readers read the send
			}
			if edges > math.MaxUint8 || e.elem > math.MaxUint32 {
				fl.err = fmt.Errorf("retime: actor %q: an event of %d edges on element %d: %w", r.actors[a], edges, e.elem, ErrRecordTooLarge)
				return
			}
			fl.events = append(fl.events, flatEvent{op: e.op, n: uint8(edges), fifo: uint16(max(e.fifo, 0)), elem: uint32(e.elem)})
			for _, x := range tp.edges[e.e0:end] {
				w := wide(a, x)
				if w.d < math.MinInt32 || w.d > math.MaxInt32 {
					if x.from >= 0 {
						fl.err = fmt.Errorf("retime: actor %q: a time %d cycles from the event it depends on: %w", r.actors[a], w.d, ErrRecordTooLarge)
						return
					}
					// A constant too large for an offset from zero has a slot.
					if int(fl.zero)+1+len(fl.consts) >= math.MaxInt32 {
						fl.err = fmt.Errorf("retime: %d events and %d wide constants: %w", n, len(fl.consts), ErrRecordTooLarge)
						return
					}
					w = flatTime{from: fl.zero + 1 + int32(len(fl.consts))}
					fl.consts = append(fl.consts, x.d)
				}
				fl.edges = append(fl.edges, flatEdge{from: w.from, d: int32(w.d)})
			}
		}
		fl.final = append(fl.final, wide(a, tp.final))
		var guards []flatGuard
		for _, g := range tp.guards {
			guards = append(guards, flatGuard{a: wide(a, g.a), b: wide(a, g.b), less: g.less, after: fl.start[a] + index[a][g.after]})
		}
		fl.guards = append(fl.guards, guards)
	}
	for _, f := range r.fifos {
		sends, deqs := make([]int32, len(f.sends)), make([]int32, len(f.deqs))
		for i, k := range f.sends {
			sends[i] = fl.start[f.writer] + index[f.writer][k]
		}
		for i, k := range f.deqs {
			deqs[i] = fl.start[f.reader] + index[f.reader][k]
		}
		fl.sends, fl.deqs = append(fl.sends, sends), append(fl.deqs, deqs)
		fl.latency = append(fl.latency, f.latency)
	}
}

// evaluation is one Retime in progress: each actor's next event (an index
// into the flat record) and next guard, the values so far, and per FIFO
// the sends and dequeues evaluated.
type evaluation struct {
	r           *Record
	caps        []int64
	vals        []int64
	pos, epos   []int32 // per actor, its next event and its first edge
	checked     []int
	sent, taken []int64
}

// run evaluates every actor's events as far as their dependencies allow,
// actor after actor, until all are done or none can move (stuck).
func (ev *evaluation) run() (stuck bool, err error) {
	fl := &ev.r.flat
	vals, events, edges := ev.vals, fl.events, fl.edges
	for {
		moved, done := false, true
		for a := range ev.pos {
			p, end, k := ev.pos[a], fl.start[a+1], ev.epos[a]
		events:
			for ; p < end; p++ {
				v := int64(math.MinInt64)
				e := &events[p]
				op := e.op
				switch op {
				case opSend:
					f := e.fifo
					if j := int64(e.elem) - ev.caps[f]; j >= 0 {
						deqs := fl.deqs[f]
						if j >= int64(len(deqs)) {
							r := ev.r
							return false, fmt.Errorf("retime: actor %q: send on fifo %q: %w", r.actors[a], r.fifos[f].name, ErrReaderDone)
						}
						if ev.taken[f] <= j {
							break events
						}
						v = vals[deqs[j]] + 1
					}
				case opRecv, opPeek:
					f := e.fifo
					if ev.sent[f] <= int64(e.elem) {
						break events
					}
					v = vals[fl.sends[f][e.elem]] + fl.latency[f]
				}
				x := edges[k : k+int32(e.n)]
				k += int32(e.n)
				switch op {
				case opMin:
					v = math.MaxInt64
					for _, x := range x {
						v = min(v, vals[x.from]+int64(x.d))
					}
				case opIf:
					if vals[x[0].from]+int64(x[0].d) < vals[x[1].from]+int64(x[1].d) {
						v = vals[x[2].from] + int64(x[2].d)
					} else {
						v = vals[x[3].from] + int64(x[3].d)
					}
				default:
					for _, x := range x {
						v = max(v, vals[x.from]+int64(x.d))
					}
				}
				vals[p] = v
				switch op {
				case opSend:
					ev.sent[e.fifo]++
				case opRecv:
					ev.taken[e.fifo]++
				}
			}
			if p != ev.pos[a] {
				ev.pos[a], ev.epos[a], moved = p, k, true
				if err := ev.checkGuards(a); err != nil {
					return false, err
				}
			}
			if p < end {
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
	guards, vals := ev.r.flat.guards[a], ev.vals
	k := ev.checked[a]
	for ; k < len(guards) && guards[k].after <= ev.pos[a]; k++ {
		g := &guards[k]
		if (vals[g.a.from]+g.a.d < vals[g.b.from]+g.b.d) != g.less {
			return fmt.Errorf("retime: actor %q at cycle %d: %w", ev.r.actors[a], vals[g.a.from]+g.a.d, ErrChoiceChanged)
		}
	}
	ev.checked[a] = k
	return nil
}

// deadlock describes the actors a stuck evaluation stopped at, as Run
// would have found them.
func (ev *evaluation) deadlock() error {
	r, fl := ev.r, &ev.r.flat
	e := &DeadlockError{}
	byActor := make(map[int]int)
	for a := range r.tapes {
		p := ev.pos[a]
		if p >= fl.start[a+1] {
			continue
		}
		x := &fl.events[p]
		f := &r.fifos[x.fifo]
		k := fl.edges[ev.epos[a]] // the clock when the operation began
		b := BlockedActor{Actor: r.actors[a], Time: ev.vals[k.from] + int64(k.d), FIFO: f.name,
			Occupancy: ev.sent[x.fifo] - ev.taken[x.fifo], Capacity: ev.caps[x.fifo]}
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
