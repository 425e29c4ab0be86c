package topology

import (
	"slices"
)

// Append adds c, a run of the same accelerator that started when r's
// ended, to r, so that r becomes the result of one run of both batches end
// to end: images, makespans, busy/starved/blocked cycles, FIFO occupancy
// and the critical path's causes add up, c's times shift by r's makespan,
// and the ratios (cycles per image, utilisations, full and empty fractions,
// the bottleneck) are those of the whole. Between the two the accelerator
// drained, which a single run of all the images would overlap; so a long
// batch run in chunks takes at most one image's pipeline fill more per chunk.
// c is consumed.
func (r *SimResult) Append(c *SimResult) {
	off := r.Cycles
	pe := r.PEUtilisation*float64(r.Cycles) + c.PEUtilisation*float64(c.Cycles)
	for i := range c.Images {
		img := &c.Images[i]
		img.Start += off
		img.End += off
		for l := range img.Layers {
			for k := range img.Layers[l].Ops {
				img.Layers[l].Ops[k].Start += off
				img.Layers[l].Ops[k].End += off
			}
		}
	}
	r.MPCABusy += c.MPCABusy
	r.Images = append(r.Images, c.Images...)
	r.Cycles += c.Cycles
	r.CyclesPerImage = float64(r.Cycles) / float64(len(r.Images))
	if r.Cycles > 0 {
		r.PEUtilisation = pe / float64(r.Cycles)
	}
	r.Stats.Append(c.Stats)
	r.Path.append(&c.Path)
}

// append adds c's critical path to a's: the critical path of runs one
// after another is theirs end to end.
func (a *Attribution) append(c *Attribution) {
	a.Makespan += c.Makespan
	for i := range a.Causes {
		a.Causes[i].Cycles += c.Causes[i].Cycles
	}
	for i := range a.Units {
		a.Units[i].Critical += c.Units[i].Critical
		a.Units[i].Pipeline += c.Units[i].Pipeline
		a.Units[i].Busy += c.Units[i].Busy
		a.Units[i].Hidden += c.Units[i].Hidden
	}
	for _, l := range c.Backpressure {
		i := slices.IndexFunc(a.Backpressure, func(x LinkPath) bool { return x.Name == l.Name })
		if i < 0 {
			a.Backpressure = append(a.Backpressure, l)
			continue
		}
		a.Backpressure[i].Cycles += l.Cycles
	}
	sortBackpressure(a.Backpressure)
	a.Bottleneck = bottleneck(a)
}
