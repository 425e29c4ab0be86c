//go:build unix

package benches

import (
	"context"
	"syscall"
	"testing"
	"time"

	"vitflow/topology"
	"vitflow/vit"
)

// cpuTime is the CPU time this process has used (user + system, all threads).
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// compactWarm compacts w by p and runs img once, which packs the
// reference's weights (once per Compacted): as the accelerator's build is
// outside the simulated loop, the reference's is outside its loop.
func compactWarm(b *testing.B, w *vit.Weights, p *vit.Pruning, img []float32) *vit.Compacted {
	c, err := w.Compact(p)
	if err != nil {
		b.Fatal(err)
	}
	if _, _, err := c.Forward(img); err != nil {
		b.Fatal(err)
	}
	return c
}

// BenchmarkSimulatedDeiTSmall times one pruned DeiT-S inference (random
// weights, one-shot magnitude pruning at b=16 and density 0.5, keep 0.7 in
// layers 2, 6 and 9) through the simulated u250 accelerator with real
// numerics, beside the reference forward pass of the same pruned model. As
// the reference compacts the model once (outside the loop) and then runs
// images, the accelerator is built once (packing the weights, planning the
// schedule) and each iteration simulates one image on a fresh graph of units;
// "simulated+build" includes the build, as a one-image cmd/run does.
func BenchmarkSimulatedDeiTSmall(b *testing.B) {
	w, p, img, desc := prunedDeiTSmall(b)
	report := func(b *testing.B, cpu time.Duration) {
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/1e6/float64(b.N), "ms/image")
		b.ReportMetric(float64(cpu.Nanoseconds())/1e6/float64(b.N), "cpu-ms/image")
	}
	b.Run("reference", func(b *testing.B) {
		c := compactWarm(b, w, p, img)
		cpu := cpuTime(b)
		for b.Loop() {
			if _, _, err := c.Forward(img); err != nil {
				b.Fatal(err)
			}
		}
		report(b, cpuTime(b)-cpu)
	})
	b.Run("simulated", func(b *testing.B) {
		acc, err := topology.NewAccelerator(w, p, 0, desc)
		if err != nil {
			b.Fatal(err)
		}
		var cycles int64
		cpu := cpuTime(b)
		for b.Loop() {
			res, err := acc.Run(context.Background(), [][]float32{img})
			if err != nil {
				b.Fatal(err)
			}
			cycles = res.Cycles
		}
		report(b, cpuTime(b)-cpu)
		b.ReportMetric(float64(cycles), "sim-cycles")
	})
	// paired alternates the two inside every iteration, so that both meet
	// the same load on a shared machine; ratio is simulated / reference.
	// With build, each simulated image also builds the accelerator (compact,
	// pack, plan, program), as a one-image cmd/run does.
	for _, build := range []bool{false, true} {
		name := "paired"
		if build {
			name = "paired+build"
		}
		b.Run(name, func(b *testing.B) {
			c := compactWarm(b, w, p, img)
			acc, err := topology.NewAccelerator(w, p, 0, desc)
			if err != nil {
				b.Fatal(err)
			}
			var ref, sim, refCPU, simCPU time.Duration
			for b.Loop() {
				t, cpu := time.Now(), cpuTime(b)
				if _, _, err := c.Forward(img); err != nil {
					b.Fatal(err)
				}
				ref, refCPU = ref+time.Since(t), refCPU+cpuTime(b)-cpu
				t, cpu = time.Now(), cpuTime(b)
				if build {
					acc, err = topology.NewAccelerator(w, p, 0, desc)
					if err != nil {
						b.Fatal(err)
					}
				}
				if _, err := acc.Run(context.Background(), [][]float32{img}); err != nil {
					b.Fatal(err)
				}
				sim, simCPU = sim+time.Since(t), simCPU+cpuTime(b)-cpu
			}
			n := float64(b.N)
			b.ReportMetric(float64(ref.Nanoseconds())/1e6/n, "ref-ms/image")
			b.ReportMetric(float64(sim.Nanoseconds())/1e6/n, "sim-ms/image")
			b.ReportMetric(float64(sim)/float64(ref), "sim/ref")
			b.ReportMetric(float64(simCPU)/float64(refCPU), "sim/ref-cpu")
		})
	}
	// build is the accelerator's build alone (topology.NewAccelerator).
	b.Run("build", func(b *testing.B) {
		cpu := cpuTime(b)
		for b.Loop() {
			if _, err := topology.NewAccelerator(w, p, 0, desc); err != nil {
				b.Fatal(err)
			}
		}
		report(b, cpuTime(b)-cpu)
	})
	b.Run("simulated+build", func(b *testing.B) {
		in := topology.SimInput{Weights: w, Pruning: p, Desc: desc, Images: [][]float32{img}}
		cpu := cpuTime(b)
		for b.Loop() {
			if _, err := topology.Simulate(context.Background(), in); err != nil {
				b.Fatal(err)
			}
		}
		report(b, cpuTime(b)-cpu)
	})
}

// BenchmarkTimingOnlyDeiTSmall times one point of a sweep, building the
// accelerator and simulating one image, on the model and machine of
// BenchmarkSimulatedDeiTSmall, with numerics (NewAccelerator packs the
// weights, Run computes the logits) and timing-only (NewTimingAccelerator
// packs the masks' pattern, Run computes nothing), alternating inside every
// iteration so that both meet the same load. The two must give the same
// cycles. Each mode's build and run are reported apart too.
func BenchmarkTimingOnlyDeiTSmall(b *testing.B) {
	w, p, img, desc := prunedDeiTSmall(b)
	cfg := w.Config
	type mode struct {
		name   string
		build  func() (*topology.Accelerator, error)
		images [][]float32
		// build and run time, summed over the iterations
		built, ran time.Duration
		cycles     int64
	}
	modes := []*mode{
		{name: "full", build: func() (*topology.Accelerator, error) { return topology.NewAccelerator(w, p, 0, desc) },
			images: [][]float32{img}},
		{name: "timing", build: func() (*topology.Accelerator, error) { return topology.NewTimingAccelerator(cfg, p, 0, desc) },
			images: make([][]float32, 1)},
	}
	for b.Loop() {
		for _, m := range modes {
			t := time.Now()
			acc, err := m.build()
			if err != nil {
				b.Fatal(err)
			}
			m.built += time.Since(t)
			t = time.Now()
			res, err := acc.Run(context.Background(), m.images)
			if err != nil {
				b.Fatal(err)
			}
			m.ran += time.Since(t)
			m.cycles = res.Cycles
		}
	}
	if modes[0].cycles != modes[1].cycles {
		b.Fatalf("timing-only %d cycles, full run %d", modes[1].cycles, modes[0].cycles)
	}
	n := float64(b.N)
	ms := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e6 / n }
	for _, m := range modes {
		b.ReportMetric(ms(m.built+m.ran), m.name+"-ms/point")
		b.ReportMetric(ms(m.built), m.name+"-build-ms")
		b.ReportMetric(ms(m.ran), m.name+"-run-ms")
	}
	b.ReportMetric(float64(modes[0].built+modes[0].ran)/float64(modes[1].built+modes[1].ran), "full/timing")
	b.ReportMetric(float64(modes[0].cycles), "sim-cycles")
}
