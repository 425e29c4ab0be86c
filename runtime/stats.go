package runtime

import (
	"slices"
	"strings"
)

// Stats are the results of a run, in simulated cycles.
type Stats struct {
	// Makespan is the latest finish time of any actor.
	Makespan int64
	// Actors in the order they were added.
	Actors []ActorStats
	// FIFOs in the order they were created.
	FIFOs []FIFOStats
	// TraceCut is the cycle at which the trace stops because the event cap
	// was reached (0: the trace is whole, or none was asked for).
	TraceCut int64
	// Record is the run's dependency record, with Options.Record (Append
	// keeps the first run's).
	Record *Record `json:"-"`
}

// ActorStats are one actor's statistics.
type ActorStats struct {
	Name   string
	Finish int64 // local clock when the actor returned
	Busy   int64 // cycles in Work
	// Utilisation is Busy / Makespan (0 when the makespan is 0).
	Utilisation float64
	// Starved holds, per input in Reads order, the cycles waited for data.
	Starved []PortCycles
	// Blocked holds, per output in Writes order, the cycles waited for space.
	Blocked []PortCycles
	// ByLabel splits Busy by Work label, sorted by label.
	ByLabel []LabelCycles
}

// PortCycles are cycles attributed to one FIFO end of an actor.
type PortCycles struct {
	FIFO   string
	Cycles int64
}

// LabelCycles are busy cycles attributed to one Work label.
type LabelCycles struct {
	Label  string
	Cycles int64
}

// FIFOStats are one FIFO's statistics.
type FIFOStats struct {
	Name     string
	Capacity int
	Latency  int
	Elements int64 // elements sent
	// MaxOccupancy is the most elements sent and not yet dequeued at any
	// simulated time.
	MaxOccupancy int
	// Occupancy[k] is the number of cycles in [0, makespan) during which k
	// elements were sent and not yet dequeued; len(Occupancy) == Capacity+1.
	Occupancy []int64
	// Series is the occupancy over simulated time: Series[i] is the
	// element-cycles held during [i*SeriesBucket, (i+1)*SeriesBucket), the
	// last bucket ending at the makespan; trailing empty buckets are left
	// out. At most 256 buckets, whatever the run's length.
	Series       []float64
	SeriesBucket int64
	// FullFraction and EmptyFraction are Occupancy[Capacity] and
	// Occupancy[0] over the makespan (0 when the makespan is 0).
	FullFraction  float64
	EmptyFraction float64
	// Levels holds, with Options.RecordOccupancy, the occupancy after each
	// change in time order (one entry per time); LevelsCut is the time of
	// the first change it could not keep (0: it kept every change). Append
	// keeps the first run's.
	Levels    []Level `json:"-"`
	LevelsCut int64   `json:"-"`
}

// Level is a FIFO's occupancy from Time on.
type Level struct {
	Time, Elements int64
}

// Actor returns the statistics of the named actor, or nil.
func (s *Stats) Actor(name string) *ActorStats {
	for i := range s.Actors {
		if s.Actors[i].Name == name {
			return &s.Actors[i]
		}
	}
	return nil
}

// FIFO returns the statistics of the named FIFO, or nil.
func (s *Stats) FIFO(name string) *FIFOStats {
	for i := range s.FIFOs {
		if s.FIFOs[i].Name == name {
			return &s.FIFOs[i]
		}
	}
	return nil
}

// TotalStarved returns the actor's starved cycles over all inputs.
func (a *ActorStats) TotalStarved() int64 { return sumCycles(a.Starved) }

// TotalBlocked returns the actor's blocked cycles over all outputs.
func (a *ActorStats) TotalBlocked() int64 { return sumCycles(a.Blocked) }

func sumCycles(ps []PortCycles) int64 {
	var n int64
	for _, p := range ps {
		n += p.Cycles
	}
	return n
}

func ratio(n, d int64) float64 {
	if d == 0 {
		return 0
	}
	return float64(n) / float64(d)
}

// collect builds the statistics after every actor has returned.
func (g *Graph) collect(ctxs []*Ctx) *Stats {
	s := &Stats{}
	for _, c := range ctxs {
		s.Makespan = max(s.Makespan, c.now)
	}
	for i, c := range ctxs {
		a := g.actors[i]
		var busy int64
		for _, l := range c.labels {
			busy += l.Cycles
		}
		as := ActorStats{
			Name:        a.name,
			Finish:      c.now,
			Busy:        busy,
			Utilisation: ratio(busy, s.Makespan),
			Starved:     make([]PortCycles, len(a.inputs)),
			Blocked:     make([]PortCycles, len(a.outputs)),
			ByLabel:     slices.Clone(c.labels),
		}
		for k, f := range a.inputs {
			as.Starved[k] = PortCycles{FIFO: f.name, Cycles: c.starved[k]}
		}
		for k, f := range a.outputs {
			as.Blocked[k] = PortCycles{FIFO: f.name, Cycles: c.blocked[k]}
		}
		slices.SortFunc(as.ByLabel, func(x, y LabelCycles) int { return strings.Compare(x.Label, y.Label) })
		s.Actors = append(s.Actors, as)
	}
	for _, f := range g.fifos {
		f.finishOccupancy(s.Makespan)
		s.FIFOs = append(s.FIFOs, FIFOStats{
			Name:          f.name,
			Capacity:      int(f.capacity),
			Latency:       int(f.latency),
			Elements:      f.wcount,
			MaxOccupancy:  int(f.occ.max),
			Occupancy:     slices.Clone(f.occ.hist),
			Series:        slices.Clone(f.occ.series.area),
			SeriesBucket:  f.occ.series.width(),
			FullFraction:  ratio(f.occ.hist[f.capacity], s.Makespan),
			EmptyFraction: ratio(f.occ.hist[0], s.Makespan),
		})
	}
	return s
}

// Append adds c, the statistics of a run of the same graph that started
// when s's ended, to s, as one run of both end to end: makespans, busy,
// starved and blocked cycles, labels and FIFO occupancy add up, c's finish
// times shift by s's makespan and the ratios are those of the whole.
// TraceCut stays s's.
func (s *Stats) Append(c *Stats) {
	off := s.Makespan
	s.Makespan += c.Makespan
	for i := range s.Actors {
		a, b := &s.Actors[i], &c.Actors[i]
		a.Finish = off + b.Finish
		a.Busy += b.Busy
		a.Utilisation = ratio(a.Busy, s.Makespan)
		for k := range a.Starved {
			a.Starved[k].Cycles += b.Starved[k].Cycles
		}
		for k := range a.Blocked {
			a.Blocked[k].Cycles += b.Blocked[k].Cycles
		}
		for _, l := range b.ByLabel {
			k, found := slices.BinarySearchFunc(a.ByLabel, l.Label, func(x LabelCycles, label string) int { return strings.Compare(x.Label, label) })
			if found {
				a.ByLabel[k].Cycles += l.Cycles
			} else {
				a.ByLabel = slices.Insert(a.ByLabel, k, l)
			}
		}
	}
	for i := range s.FIFOs {
		f, g := &s.FIFOs[i], &c.FIFOs[i]
		f.Elements += g.Elements
		f.MaxOccupancy = max(f.MaxOccupancy, g.MaxOccupancy)
		for k := range f.Occupancy {
			f.Occupancy[k] += g.Occupancy[k]
		}
		appendSeries(f, off, g, c.Makespan)
		f.FullFraction, f.EmptyFraction = ratio(f.Occupancy[f.Capacity], s.Makespan), ratio(f.Occupancy[0], s.Makespan)
	}
}
