package main

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"

	"vitflow/internal/safefile"
	"vitflow/report"
	"vitflow/runtime"
	"vitflow/topology"
)

// chunkImages is the most images one simulated run holds. A simulation keeps
// every image's records (each unit's clock history for the critical path,
// the tokens kept, the ops' spans), a few MB per DeiT image, so a run of
// more images is simulated in chunks of chunkImages, one after another on
// the one built accelerator, and the chunks' results are merged: memory
// stays that of one chunk whatever the image count. Between chunks the
// accelerator drains (the next chunk's first image cannot overlap the last
// one's tail), which adds at most one image's pipeline fill per chunk.
const chunkImages = 16

// runStreamed runs in's images through the simulated accelerator, in
// chunks of chunkImages, and fills in the simulation's part of the report.
// A run of one chunk is runAccelerator's, unchanged. Logits are kept only
// when keepLogits (the report prints them).
func runStreamed(rep *report.Report, desc topology.Description, m *model, in *inputs, trace *safefile.File, keepLogits bool) error {
	if in.count <= chunkImages {
		px, err := in.chunk(0, in.count)
		if err != nil {
			return err
		}
		return runAccelerator(rep, desc, m, &inputs{pixels: px}, trace)
	}
	if trace != nil {
		// Checked with the flags; a trace is one run's.
		return fmt.Errorf("-trace records at most %d images", chunkImages)
	}
	acc, err := topology.NewAccelerator(m.weights, m.pruning, m.pruning.Block, desc)
	if err != nil {
		return err
	}
	var mr merger
	for start := 0; start < in.count; start += chunkImages {
		n := min(chunkImages, in.count-start)
		px, err := in.chunk(start, n)
		if err != nil {
			return err
		}
		res, err := acc.Run(context.Background(), px, nil, 0)
		if err != nil {
			return fmt.Errorf("images %d-%d: %w", start, start+n-1, err)
		}
		mr.add(res, keepLogits)
	}
	report.AddSimulation(rep, mr.result())
	return nil
}

// merger adds up the results of chunks run one after another on one
// accelerator into the result of one run of all their images: makespans,
// cycles by cause and by unit, FIFO occupancy add up; times are shifted by
// the chunks before; image 0's layer detail is kept, the later images' is
// dropped (the report shows image 0 only).
type merger struct {
	res      *topology.SimResult
	peCycles float64 // PE utilisation times makespan, summed
}

func (mr *merger) add(c *topology.SimResult, keepLogits bool) {
	off := int64(0)
	if mr.res != nil {
		off = mr.res.Cycles
	}
	for i := range c.Images {
		img := &c.Images[i]
		img.Start += off
		img.End += off
		if mr.res != nil || i > 0 {
			img.Layers = nil
		}
		if !keepLogits {
			img.Logits = nil
		}
	}
	mr.peCycles += c.PEUtilisation * float64(c.Cycles)
	if mr.res == nil {
		mr.res = c
		return
	}
	r := mr.res
	r.Images = append(r.Images, c.Images...)
	r.Cycles += c.Cycles
	mergeStats(r.Stats, c.Stats)
	mergePath(&r.Path, &c.Path)
}

// result is the merged result, with the ratios computed over the whole run.
func (mr *merger) result() *topology.SimResult {
	r := mr.res
	r.CyclesPerImage = float64(r.Cycles) / float64(len(r.Images))
	if r.Cycles > 0 {
		r.PEUtilisation = mr.peCycles / float64(r.Cycles)
	}
	s := r.Stats
	for i := range s.Actors {
		a := &s.Actors[i]
		a.Utilisation = ratio(a.Busy, s.Makespan)
	}
	for i := range s.FIFOs {
		f := &s.FIFOs[i]
		f.FullFraction = ratio(f.Occupancy[f.Capacity], s.Makespan)
		f.EmptyFraction = ratio(f.Occupancy[0], s.Makespan)
	}
	r.Path.Bottleneck = bottleneck(&r.Path)
	return r
}

func ratio(n, d int64) float64 {
	if d == 0 {
		return 0
	}
	return float64(n) / float64(d)
}

// mergeStats adds c's statistics to s, a run of the same graph before it.
func mergeStats(s, c *runtime.Stats) {
	off := s.Makespan
	s.Makespan += c.Makespan
	for i := range s.Actors {
		a, b := &s.Actors[i], &c.Actors[i]
		a.Finish = off + b.Finish
		a.Busy += b.Busy
		addPorts(a.Starved, b.Starved)
		addPorts(a.Blocked, b.Blocked)
		a.ByLabel = addLabels(a.ByLabel, b.ByLabel)
	}
	for i := range s.FIFOs {
		f, g := &s.FIFOs[i], &c.FIFOs[i]
		f.Elements += g.Elements
		f.MaxOccupancy = max(f.MaxOccupancy, g.MaxOccupancy)
		for k := range f.Occupancy {
			f.Occupancy[k] += g.Occupancy[k]
		}
	}
}

// addPorts adds c's cycles to s's, port by port (the same ports in the same order).
func addPorts(s, c []runtime.PortCycles) {
	for i := range s {
		s[i].Cycles += c[i].Cycles
	}
}

// addLabels adds two lists of cycles by label, sorted by label.
func addLabels(s, c []runtime.LabelCycles) []runtime.LabelCycles {
	for _, l := range c {
		i, found := slices.BinarySearchFunc(s, l.Label, func(x runtime.LabelCycles, label string) int { return cmp.Compare(x.Label, label) })
		if found {
			s[i].Cycles += l.Cycles
		} else {
			s = slices.Insert(s, i, l)
		}
	}
	return s
}

// mergePath adds c's critical path to a's: the critical path of chunks run
// one after another is theirs end to end.
func mergePath(a, c *topology.Attribution) {
	a.Makespan += c.Makespan
	for i := range a.Causes {
		a.Causes[i].Cycles += c.Causes[i].Cycles
	}
	for i := range a.Units {
		a.Units[i].Critical += c.Units[i].Critical
		a.Units[i].Busy += c.Units[i].Busy
		a.Units[i].Hidden += c.Units[i].Hidden
	}
	for _, l := range c.Backpressure {
		i := slices.IndexFunc(a.Backpressure, func(x topology.LinkPath) bool { return x.Name == l.Name })
		if i < 0 {
			a.Backpressure = append(a.Backpressure, l)
			continue
		}
		a.Backpressure[i].Cycles += l.Cycles
	}
	slices.SortFunc(a.Backpressure, func(x, y topology.LinkPath) int {
		return cmp.Or(cmp.Compare(y.Cycles, x.Cycles), cmp.Compare(x.Name, y.Name))
	})
}

// bottleneck names the largest cause of the critical path in a sentence,
// as topology does for one run (its bottleneck function is not exported:
// this is a copy, which TestStreamedRunMatchesOneRun holds to it).
func bottleneck(a *topology.Attribution) string {
	if a.Makespan == 0 {
		return "nothing ran"
	}
	share := func(c int64) string { return fmt.Sprintf("%.1f%%", 100*float64(c)/float64(a.Makespan)) }
	first := a.First()
	fluid := a.Cycles(topology.CauseMPCAFluid)
	what := string(first.Cause)
	for _, b := range a.Backpressure {
		if strings.HasSuffix(b.Name, "->"+string(first.Cause)) {
			what += fmt.Sprintf(", behind the full FIFO %s (depth %d; its writer waited %d cycles on it)", b.Name, b.Depth, b.Cycles)
			break
		}
	}
	if first.Cycles == 0 {
		return fmt.Sprintf("The MPCA computing at its fluid bound is the whole critical path (%s).", share(fluid))
	}
	if fluid >= first.Cycles {
		return fmt.Sprintf("The MPCA's compute at its fluid bound is %s of the critical path; the largest other cause is %s (%s).",
			share(fluid), what, share(first.Cycles))
	}
	return fmt.Sprintf("The bottleneck is %s: %s of the critical path (the MPCA's compute at its fluid bound: %s).",
		what, share(first.Cycles), share(fluid))
}
