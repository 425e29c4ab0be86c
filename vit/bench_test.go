package vit

import (
	"testing"
)

// BenchmarkForwardDeiTSmall times the reference forward pass of DeiT-S on
// random weights, one image at a time, dense and pruned, on one thread and on
// all of them (GOMAXPROCS).
func BenchmarkForwardDeiTSmall(b *testing.B) {
	cfg := mustPreset(b, "deit-small")
	w := RandomWeights(cfg, 1)
	img := randomImage(cfg, 2)
	td := []int{2, 6, 9}
	for _, bc := range []struct {
		name    string
		p       *Pruning
		workers int
	}{
		{"dense/threads=1", nil, 1},
		{"dense/threads=all", nil, 0},
		{"k=0.7/threads=all", &Pruning{Keep: 0.7, TDLayers: td}, 0},
		{"blocks=0.6,neurons=0.6,k=0.7/threads=all", randomPruning(cfg, 16, 0.7, td, 3), 0},
	} {
		b.Run(bc.name, func(b *testing.B) {
			c, err := w.Compact(bc.p)
			if err != nil {
				b.Fatal(err)
			}
			c.Workers = bc.workers
			for b.Loop() {
				if _, _, err := c.Forward(img); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/1e6/float64(b.N), "ms/image")
		})
	}
}
