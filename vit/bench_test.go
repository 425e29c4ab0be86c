//go:build unix

package vit

import (
	"syscall"
	"testing"
	"time"
)

// processCPU is the CPU time this process has used (user + system, all threads).
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkForwardDeiTSmall times the reference forward pass of DeiT-S on
// random weights, one image at a time and in batches of 8 (ForwardBatch),
// dense and pruned, on one thread and on all of them (GOMAXPROCS). Besides wall time (ms/image) it reports the
// process's CPU time per image (cpu-ms/image), which other load on a shared
// machine disturbs much less.
func BenchmarkForwardDeiTSmall(b *testing.B) {
	cfg := mustPreset(b, "deit-small")
	w := RandomWeights(cfg, 1)
	td := []int{2, 6, 9}
	for _, bc := range []struct {
		name           string
		p              *Pruning
		workers, batch int
	}{
		{"dense/threads=1", nil, 1, 1},
		{"dense/threads=all", nil, 0, 1},
		{"k=0.7/threads=all", &Pruning{Keep: 0.7, TDLayers: td}, 0, 1},
		{"blocks=0.6,neurons=0.6,k=0.7/threads=all", randomPruning(cfg, 16, 0.7, td, 3), 0, 1},
		{"batch=8/dense/threads=all", nil, 0, 8},
		{"batch=8/k=0.7/threads=all", &Pruning{Keep: 0.7, TDLayers: td}, 0, 8},
	} {
		b.Run(bc.name, func(b *testing.B) {
			c, err := w.Compact(bc.p)
			if err != nil {
				b.Fatal(err)
			}
			c.Workers = bc.workers
			imgs := make([][]float32, bc.batch)
			for i := range imgs {
				imgs[i] = randomImage(cfg, uint64(2+i))
			}
			// A first batch packs the weights, once per Compacted, as PyTorch's warm-up runs do their first-use work.
			if _, _, err := c.ForwardBatch(imgs); err != nil {
				b.Fatal(err)
			}
			cpu := processCPU(b)
			for b.Loop() {
				if _, _, err := c.ForwardBatch(imgs); err != nil {
					b.Fatal(err)
				}
			}
			cpu = processCPU(b) - cpu
			images := float64(b.N * bc.batch)
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/1e6/images, "ms/image")
			b.ReportMetric(float64(cpu.Nanoseconds())/1e6/images, "cpu-ms/image")
		})
	}
}
