package benches

import (
	"context"
	"testing"
	"time"

	"vitflow/topology"
)

// BenchmarkFIFOSizing sizes u250's FIFOs for one pruned DeiT-S image (the
// model and image of BenchmarkSimulatedDeiTSmall) and then, to compare,
// simulates every candidate the sizer evaluated, as a sizer without
// re-timing would have to (the loop check refuses some without a run
// either way; each candidate's accelerator is built outside the timing).
// ms/sizing is one SizeFIFOs; ms/resimulating the runs of its candidates;
// speedup their ratio. "full" sizes an accelerator with the numerics and
// re-simulates with them, "timing-only" one without
// (topology.NewTimingAccelerator, as cmd/run -size-fifos does): the same
// cycles, so the same candidates. The sizer's own runs are timing-only in
// both.
func BenchmarkFIFOSizing(b *testing.B) {
	w, p, img, desc := prunedDeiTSmall(b)
	for _, mode := range []struct {
		name  string
		build func(topology.Description) (*topology.Accelerator, error)
	}{
		{"full", func(d topology.Description) (*topology.Accelerator, error) {
			return topology.NewAccelerator(w, p, 0, d)
		}},
		{"timing-only", func(d topology.Description) (*topology.Accelerator, error) {
			return topology.NewTimingAccelerator(w.Config, p, 0, d)
		}},
	} {
		b.Run(mode.name, func(b *testing.B) { sizeFIFOs(b, img, desc, mode.build) })
	}
}

func sizeFIFOs(b *testing.B, img []float32, desc topology.Description, build func(topology.Description) (*topology.Accelerator, error)) {
	images := [][]float32{img}
	acc, err := build(desc)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	var z *topology.Sizing
	var sizing time.Duration
	for b.Loop() {
		t := time.Now()
		if z, err = topology.SizeFIFOs(ctx, acc, images, topology.SizeOptions{}); err != nil {
			b.Fatal(err)
		}
		sizing += time.Since(t)
	}
	var resim time.Duration
	runs := 0
	for _, c := range z.Candidates {
		if c.By == topology.ByLoopCheck {
			continue
		}
		d := desc
		d.FIFO.Depths = map[string]int{}
		for i, l := range z.Links {
			d.FIFO.Depths[l.Name] = c.Depths[i]
		}
		a, err := build(d)
		if err != nil {
			b.Fatal(err)
		}
		t := time.Now()
		_, err = a.Run(ctx, images)
		resim += time.Since(t)
		if err != nil && c.Err == nil {
			b.Fatalf("%v: %v", c.Depths, err)
		}
		runs++
	}
	perSizing := sizing.Seconds() * 1e3 / float64(b.N)
	b.ReportMetric(perSizing, "ms/sizing")
	b.ReportMetric(resim.Seconds()*1e3, "ms/resimulating")
	b.ReportMetric(resim.Seconds()*1e3/perSizing, "speedup")
	b.ReportMetric(float64(runs), "candidates-run")
	b.ReportMetric(float64(z.Retimed), "retimed")
	b.ReportMetric(float64(z.Simulated), "simulated")
	b.ReportMetric(float64(z.Saved), "bytes-saved")
}
