package prune

import (
	"testing"

	"github.com/stretchr/testify/require"

	"vitflow/vit"
)

// benchTrainer is a mnist-tiny trainer on random images.
func benchTrainer(b *testing.B, opt Options) *Trainer {
	cfg, err := vit.Preset("mnist-tiny")
	require.NoError(b, err)
	ds := &Dataset{Images: randomImages(cfg, opt.BatchSize, 1), Labels: make([]int, opt.BatchSize)}
	for i := range ds.Labels {
		ds.Labels[i] = i % cfg.NumClasses
	}
	w := randomWeights(cfg, 2, 0.05)
	var teacher *vit.Weights
	if opt.Distill {
		teacher = randomWeights(cfg, 3, 0.05)
	}
	tr, err := NewTrainer(w, teacher, ds, opt)
	require.NoError(b, err)
	return tr
}

func benchmarkStep(b *testing.B, opt Options) {
	tr := benchTrainer(b, opt)
	idx := make([]int, opt.BatchSize)
	for i := range idx {
		idx[i] = i
	}
	for b.Loop() {
		tr.trainStep(idx)
	}
	b.ReportMetric(float64(b.Elapsed().Seconds())/float64(b.N)/float64(opt.BatchSize)*60000, "s/epoch")
}

// BenchmarkTrainStep measures one optimiser step of batch 64 (two shards of 32) on mnist-tiny;
// s/epoch extrapolates to the 60,000 MNIST training images.
func BenchmarkTrainStep(b *testing.B) {
	b.Run("dense", func(b *testing.B) { benchmarkStep(b, DenseOptions()) })
	b.Run("prune-d0.5-k0.5", func(b *testing.B) { benchmarkStep(b, PruneOptions(0.5, 0.5, []int{0, 1, 2})) })
	b.Run("prune-d0.5-k0.7", func(b *testing.B) { benchmarkStep(b, PruneOptions(0.5, 0.7, []int{0, 1, 2})) })
}
