// Package prune decides which parts of a ViT to keep. It holds static pruning
// (b×b block masks on Q, K, V and the attention projection, neuron masks on the
// MLP), chosen either one-shot by weight magnitude or learned by the
// simultaneous-pruning trainer (see docs/DESIGN.md section 3), which also trains with
// dynamic token dropping and distillation from the dense model.
//
// Every matrix keeps the same fraction of its units: Kept(n, density) =
// ceil(density*n) of n blocks or neurons, the ones with the largest scores,
// ties going to the lower index so that masks are deterministic.
package prune

import (
	"fmt"
	"math"

	"vitflow/kernels"
	"vitflow/vit"
)

// Kept is the number of units out of n a matrix keeps at density in (0, 1]:
// ceil(density*n). The slack stops float error (0.7*30 = 21.000000000000004)
// from adding a unit.
func Kept(n int, density float64) int {
	return max(0, min(n, int(math.Ceil(density*float64(n)-1e-9))))
}

// TopMask keeps the Kept(len(scores), density) largest scores; equal scores
// keep the lower index.
func TopMask(scores []float32, density float64) []bool {
	mask := make([]bool, len(scores))
	for _, i := range kernels.TopK(scores, Kept(len(scores), density)) {
		mask[i] = true
	}
	return mask
}

// BlockNorms returns the squared L2 norm of every b×b block of w (rows×cols,
// row-major), row-major over the (rows/b)×(cols/b) blocks.
func BlockNorms(w []float32, rows, cols, b int) []float32 { return blockDots(w, w, rows, cols, b) }

// blockDots returns, for every b×b block, the sum over it of x·y (both
// rows×cols, row-major), accumulated in float64; row-major over the blocks.
func blockDots(x, y []float32, rows, cols, b int) []float32 {
	nbc := cols / b
	sums := make([]float64, (rows/b)*nbc)
	for r := range rows {
		for c, v := range x[r*cols : (r+1)*cols] {
			sums[(r/b)*nbc+c/b] += float64(v) * float64(y[r*cols+c])
		}
	}
	return toFloat32(sums)
}

// NeuronNorms returns, for each hidden neuron j of an MLP, the squared L2 norm
// of column j of fc1 ([dim×hidden]) together with row j of fc2 ([hidden×dim]).
func NeuronNorms(fc1, fc2 []float32, dim, hidden int) []float32 {
	sums := make([]float64, hidden)
	for i := range dim {
		for j, v := range fc1[i*hidden : (i+1)*hidden] {
			sums[j] += float64(v) * float64(v)
		}
	}
	for j := range hidden {
		for _, v := range fc2[j*dim : (j+1)*dim] {
			sums[j] += float64(v) * float64(v)
		}
	}
	return toFloat32(sums)
}

func toFloat32(x []float64) []float32 {
	out := make([]float32, len(x))
	for i, v := range x {
		out[i] = float32(v)
	}
	return out
}

// CheckBlock reports whether b×b blocks tile the model's attention matrices
// and each of its heads, as block masks require.
func CheckBlock(cfg vit.Config, block int) error {
	if block <= 0 || cfg.Dim%block != 0 || cfg.HeadDim()%block != 0 {
		return fmt.Errorf("block size %d must divide dim %d and head dim %d", block, cfg.Dim, cfg.HeadDim())
	}
	return nil
}

// CheckDensity reports whether density is a usable kept fraction.
func CheckDensity(density float64) error {
	if !(density > 0 && density <= 1) {
		return fmt.Errorf("density %v is outside (0, 1]", density)
	}
	return nil
}

// Magnitude prunes w one-shot, without training: in every layer it keeps the
// Kept(n, density) b×b blocks of largest L2 norm in each of Q, K, V and Proj,
// and the Kept(MLPHidden, density) MLP neurons whose FC1 column and FC2 row
// together have the largest L2 norm. Token dropping is off (Keep 1).
func Magnitude(w *vit.Weights, block int, density float64) (*vit.Pruning, error) {
	cfg := w.Config
	if err := CheckBlock(cfg, block); err != nil {
		return nil, fmt.Errorf("magnitude pruning of %s: %w", cfg.Name, err)
	}
	if err := CheckDensity(density); err != nil {
		return nil, fmt.Errorf("magnitude pruning of %s: %w", cfg.Name, err)
	}
	if len(w.Layers) != cfg.Depth {
		return nil, fmt.Errorf("magnitude pruning of %s: %d layers, config says %d", cfg.Name, len(w.Layers), cfg.Depth)
	}
	d, hid := cfg.Dim, cfg.MLPHidden
	p := &vit.Pruning{Block: block, Keep: 1, Layers: make([]vit.LayerMask, cfg.Depth)}
	for i, l := range w.Layers {
		mats := []struct {
			name string
			w    []float32
			n    int
		}{{"q", l.QW, d * d}, {"k", l.KW, d * d}, {"v", l.VW, d * d}, {"proj", l.ProjW, d * d}, {"fc1", l.FC1W, d * hid}, {"fc2", l.FC2W, hid * d}}
		for _, m := range mats {
			if len(m.w) != m.n {
				return nil, fmt.Errorf("magnitude pruning of %s: layer %d %s has %d weights, want %d", cfg.Name, i, m.name, len(m.w), m.n)
			}
		}
		p.Layers[i] = vit.LayerMask{
			Q:       TopMask(BlockNorms(l.QW, d, d, block), density),
			K:       TopMask(BlockNorms(l.KW, d, d, block), density),
			V:       TopMask(BlockNorms(l.VW, d, d, block), density),
			Proj:    TopMask(BlockNorms(l.ProjW, d, d, block), density),
			Neurons: TopMask(NeuronNorms(l.FC1W, l.FC2W, d, hid), density),
		}
	}
	return p, nil
}
