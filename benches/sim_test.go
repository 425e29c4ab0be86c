//go:build unix

package benches

import (
	"context"
	"syscall"
	"testing"
	"time"

	"vitflow/topology"
)

// cpuTime is the CPU time this process has used (user + system, all threads).
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
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
	w, p, img, desc := deitSmallOnU250(b)
	report := func(b *testing.B, cpu time.Duration) {
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/1e6/float64(b.N), "ms/image")
		b.ReportMetric(float64(cpu.Nanoseconds())/1e6/float64(b.N), "cpu-ms/image")
	}
	b.Run("reference", func(b *testing.B) {
		c, err := w.Compact(p)
		if err != nil {
			b.Fatal(err)
		}
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
			c, err := w.Compact(p)
			if err != nil {
				b.Fatal(err)
			}
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
