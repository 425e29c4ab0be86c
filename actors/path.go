package actors

import (
	"cmp"
	"fmt"
	"slices"
	"sort"
)

// PathKind says what a stretch of the critical path was.
type PathKind uint8

const (
	// PathWork is a unit's own work (a Stage; an Op on the MPCA). A unit's
	// pipeline latency, which its output links carry, counts as its work,
	// with the link set (Link is -1 for the work itself).
	PathWork PathKind = iota
	// PathLatency is a link's latency between two units, or the credit
	// latency between a reader's dequeue and its blocked writer's send.
	PathLatency
	// PathBackpressure is a writer's wait for space in a full FIFO that the
	// path crossed to the FIFO's reader (CriticalPath.Crossed).
	PathBackpressure
)

var pathKindNames = [...]string{"work", "latency", "backpressure"}

func (k PathKind) String() string {
	if int(k) < len(pathKindNames) {
		return pathKindNames[k]
	}
	return fmt.Sprintf("PathKind(%d)", int(k))
}

// PathPart is the critical path's cycles of one kind, on one actor, for
// one image and layer (-1 outside the encoder layers).
type PathPart struct {
	Kind   PathKind
	Stage  Stage
	Op     Op    // StageMPCA work
	Link   int32 // latency and backpressure: the link; -1 for work
	Actor  int32
	Image  int32
	Layer  int32
	Cycles int64
}

// CriticalPath is the chain of waits and work that ends at the run's last
// event, summed by part: the parts add up to Makespan exactly. Crossed
// lists the waits on full FIFOs that the path went through to the reader:
// time the writer lost because the FIFO could not hold more, which the
// reader's parts explain (they are not in the sum).
type CriticalPath struct {
	Makespan int64
	Parts    []PathPart
	Crossed  []PathPart
}

// Walk finds the critical path of a run from its actors' recorders
// (indexed as net.Actors). It starts at the actor that finished last and
// walks back in time: through a unit's work it stays on the unit; at a
// wait for data it moves to the writer, at the time the awaited element
// was sent, the link's latency (and the writer's pipeline latency) bridging
// the two; at a wait for space in a full FIFO it moves to the reader, at
// the dequeue that freed the space, the credit latency bridging them.
// Every cycle from 0 to the makespan is attributed once.
func Walk(net *Net, recs []*Recorder) (*CriticalPath, error) {
	if len(recs) != len(net.Actors) {
		return nil, fmt.Errorf("critical path: %d recorders for %d actors", len(recs), len(net.Actors))
	}
	actor := -1
	var t int64
	for i, r := range recs {
		if r != nil && len(r.Segments) > 0 {
			if end := r.Segments[len(r.Segments)-1].End; end > t {
				actor, t = i, end
			}
		}
	}
	cp := &CriticalPath{Makespan: t}
	parts, crossed := map[PathPart]int64{}, map[PathPart]int64{}
	add := func(p PathPart, n int64) {
		if n > 0 {
			parts[p] += n
		}
	}
	for t > 0 {
		segs := recs[actor].Segments
		// The segment that ends at t: the walk only arrives at times an
		// actor's clock stood at.
		i := sort.Search(len(segs), func(i int) bool { return segs[i].End >= t })
		if i == len(segs) || segs[i].Start >= t {
			return nil, fmt.Errorf("critical path: actor %s has no record of its clock at %d", net.Actors[actor], t)
		}
		s := segs[i]
		p := PathPart{Kind: PathWork, Stage: s.Stage, Op: s.Op, Link: -1, Actor: int32(actor), Image: s.Image, Layer: s.Layer}
		if s.Kind != Busy && t != s.End {
			return nil, fmt.Errorf("critical path: actor %s entered inside a wait at %d", net.Actors[actor], t)
		}
		switch s.Kind {
		case Busy:
			add(p, t-s.Start)
			t = s.Start
		case Blocked:
			p.Kind, p.Stage, p.Op, p.Link = PathBackpressure, 0, 0, s.Link
			crossed[p] += s.End - s.Start
			// The space came from the reader's dequeue one credit latency earlier.
			p.Kind = PathLatency
			add(p, 1)
			actor, t = net.Links[s.Link].Reader, t-1
		case Starved:
			k := net.Links[s.Link]
			p.Kind, p.Stage, p.Op, p.Link = PathLatency, 0, 0, s.Link
			add(p, k.Latency)
			add(PathPart{Kind: PathWork, Stage: k.Stage, Link: s.Link, Actor: int32(k.Writer), Image: s.Image, Layer: s.Layer}, k.Pipeline)
			actor, t = k.Writer, t-k.Latency-k.Pipeline
			if t < 0 {
				return nil, fmt.Errorf("critical path: an element of %s visible at %d was sent before 0", k.Name, s.End)
			}
		}
	}
	cp.Parts, cp.Crossed = sorted(parts), sorted(crossed)
	return cp, nil
}

func sorted(parts map[PathPart]int64) []PathPart {
	out := make([]PathPart, 0, len(parts))
	for p, n := range parts {
		p.Cycles = n
		out = append(out, p)
	}
	slices.SortFunc(out, func(a, b PathPart) int {
		return cmp.Or(cmp.Compare(a.Image, b.Image), cmp.Compare(a.Layer, b.Layer), cmp.Compare(a.Kind, b.Kind),
			cmp.Compare(a.Stage, b.Stage), cmp.Compare(a.Op, b.Op), cmp.Compare(a.Link, b.Link), cmp.Compare(a.Actor, b.Actor))
	})
	return out
}
