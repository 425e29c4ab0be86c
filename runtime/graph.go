package runtime

import (
	"errors"
	"fmt"
	"io"
)

// Errors returned by FIFO operations and Run.
var (
	// ErrClosed reports that a FIFO's writer has finished and every element
	// it sent has been read.
	ErrClosed = errors.New("fifo closed")
	// ErrReaderDone reports a Send that needs a credit from a reader that has
	// finished, so the element could never be delivered.
	ErrReaderDone = errors.New("fifo reader finished")
	// ErrCancelled reports that the run was cancelled (another actor failed,
	// a deadlock was detected, or the caller's context ended).
	ErrCancelled = errors.New("run cancelled")
)

// maxCapacity bounds a FIFO's capacity so that a mistyped size cannot
// allocate without bound.
const maxCapacity = 1 << 24

// Graph is a set of actors and the FIFOs between them. Build it with
// [NewFIFO] and [Graph.AddActor], then call [Graph.Run] once.
type Graph struct {
	actors []*actor
	fifos  []*fifoBase
	names  map[string]bool // actor names, then "fifo "+FIFO names
	err    error           // first construction error, reported by Run
	ran    bool
}

// NewGraph returns an empty graph.
func NewGraph() *Graph {
	return &Graph{names: make(map[string]bool)}
}

// ActorOption declares something about an actor; see [Reads] and [Writes].
type ActorOption func(*actor)

// Reads declares that the actor is the reader of the given FIFOs. The order
// of the declarations is the order of the actor's starved statistics.
func Reads(fifos ...Port) ActorOption {
	return func(a *actor) {
		for _, p := range fifos {
			a.inputs = append(a.inputs, p.port())
		}
	}
}

// Writes declares that the actor is the writer of the given FIFOs.
func Writes(fifos ...Port) ActorOption {
	return func(a *actor) {
		for _, p := range fifos {
			a.outputs = append(a.outputs, p.port())
		}
	}
}

// Port is implemented by every *FIFO[T]; it lets [Reads], [Writes] and
// [Select] take FIFOs of different element types.
type Port interface {
	port() *fifoBase
}

// AddActor adds an actor that runs body on its own goroutine. The body
// returns nil when it is done; returning an error fails the run. Wiring
// errors (a duplicate name, a FIFO with two readers) are reported by Run.
func (g *Graph) AddActor(name string, body func(ctx *Ctx) error, opts ...ActorOption) {
	if err := g.claimName(name, "actor"); err != nil {
		g.fail(err)
		return
	}
	if body == nil {
		g.fail(fmt.Errorf("actor %q: nil body", name))
		return
	}
	a := newObject[actor](len(g.actors))
	*a = actor{name: name, index: len(g.actors), body: body, wake: make(chan struct{}, 1)}
	for _, opt := range opts {
		opt(a)
	}
	for i, f := range a.inputs {
		if f.graph != g {
			g.fail(fmt.Errorf("actor %q reads fifo %q of another graph", name, f.name))
			return
		}
		if f.reader != nil {
			g.fail(fmt.Errorf("fifo %q has two readers: %q and %q", f.name, f.reader.name, name))
			return
		}
		f.reader, f.readerPort = a, i
	}
	for i, f := range a.outputs {
		if f.graph != g {
			g.fail(fmt.Errorf("actor %q writes fifo %q of another graph", name, f.name))
			return
		}
		if f.writer != nil {
			g.fail(fmt.Errorf("fifo %q has two writers: %q and %q", f.name, f.writer.name, name))
			return
		}
		f.writer, f.writerPort = a, i
	}
	g.actors = append(g.actors, a)
}

// claimName reserves name among the actors or among the FIFOs (kind).
func (g *Graph) claimName(name, kind string) error {
	if name == "" {
		return fmt.Errorf("empty %s name", kind)
	}
	if key := kind + " " + name; g.names[key] {
		return fmt.Errorf("duplicate %s name %q", kind, name)
	} else {
		g.names[key] = true
	}
	return nil
}

func (g *Graph) fail(err error) {
	if g.err == nil {
		g.err = err
	}
}

// check reports the first construction error or unwired FIFO.
func (g *Graph) check() error {
	if g.ran {
		return errors.New("graph already ran")
	}
	if g.err != nil {
		return g.err
	}
	if len(g.actors) == 0 {
		return errors.New("graph has no actors")
	}
	for _, f := range g.fifos {
		if f.writer == nil {
			return fmt.Errorf("fifo %q has no writer", f.name)
		}
		if f.reader == nil {
			return fmt.Errorf("fifo %q has no reader", f.name)
		}
	}
	return nil
}

// Options configure a run.
type Options struct {
	// Trace, if non-nil, receives the run's Chrome/Perfetto trace-event JSON
	// (see TraceFile): a track per actor with its busy slices (named by
	// Work label) and stall slices (naming the FIFO and the actor at its
	// other end), a counter per FIFO for its occupancy.
	Trace io.Writer
	// ClockMHz is the clock the trace states (it shows cycles); default 1000.
	ClockMHz float64
	// MaxTraceEvents caps the trace's events; default DefaultTraceEvents. Each
	// actor and FIFO track records an equal share (at least 16 events).
	// When a track fills up, or the trace would hold more, the whole trace
	// ends at the time of the first event it lacks, with a mark saying so,
	// so what is shown is complete (Stats.TraceCut).
	MaxTraceEvents int
	// RecordOccupancy, if positive, keeps up to that many occupancy changes
	// per FIFO in FIFOStats.Levels, for a caller that draws its own trace.
	RecordOccupancy int
	// Record keeps the run's dependency record in Stats.Record, for
	// re-timing it at other FIFO capacities (Record.Retime). It costs
	// about 60 bytes per FIFO operation and per time an actor computes
	// with Ctx's Tick methods; off, it costs nothing.
	Record bool
	// Scheduler chooses how actors map onto goroutines (wall time only:
	// results are the same for every scheduler). The default,
	// SchedulerAuto, runs small components as coroutines.
	Scheduler Scheduler
	// split, if positive, splits every component into that many groups of
	// coroutines (or one per actor): for tests.
	split int
}

// DefaultTraceEvents is the cap on a trace's events when none is given.
const DefaultTraceEvents = 1_000_000
