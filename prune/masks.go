package prune

import (
	"math"
	"slices"

	"vitflow/vit"
)

// layerScores are the learned importance scores of one layer: one per b×b
// block of Q, K, V and Proj (row-major over blocks) and one per MLP neuron.
type layerScores struct {
	Q, K, V, Proj, Neurons []float32
}

func newScores(cfg vit.Config, block int) []layerScores {
	nb := (cfg.Dim / block) * (cfg.Dim / block)
	s := make([]layerScores, cfg.Depth)
	for i := range s {
		s[i] = layerScores{Q: make([]float32, nb), K: make([]float32, nb), V: make([]float32, nb),
			Proj: make([]float32, nb), Neurons: make([]float32, cfg.MLPHidden)}
	}
	return s
}

// magnitudeScores sets every score to its block's (neuron's) L2 norm divided
// by the mean over its matrix, so that the first masks are the one-shot
// magnitude masks and learning moves the scores from there on a common scale.
func magnitudeScores(scores []layerScores, w *vit.Weights, block int) {
	d, hid := w.Config.Dim, w.Config.MLPHidden
	for i, l := range w.Layers {
		s := scores[i]
		for _, m := range []struct{ dst, norms []float32 }{
			{s.Q, BlockNorms(l.QW, d, d, block)}, {s.K, BlockNorms(l.KW, d, d, block)}, {s.V, BlockNorms(l.VW, d, d, block)},
			{s.Proj, BlockNorms(l.ProjW, d, d, block)}, {s.Neurons, NeuronNorms(l.FC1W, l.FC2W, d, hid)},
		} {
			var mean float64
			for j, sq := range m.norms {
				m.dst[j] = float32(math.Sqrt(float64(sq)))
				mean += float64(m.dst[j])
			}
			mean /= float64(len(m.dst))
			for j := range m.dst {
				m.dst[j] = float32(float64(m.dst[j]) / max(mean, 1e-30))
			}
		}
	}
}

func (s *layerScores) tensors() [][]float32 { return [][]float32{s.Q, s.K, s.V, s.Proj, s.Neurons} }

// learnedMasks keeps the top density fraction of every score tensor.
func learnedMasks(scores []layerScores, density float64) []vit.LayerMask {
	masks := make([]vit.LayerMask, len(scores))
	for i, s := range scores {
		masks[i] = vit.LayerMask{Q: TopMask(s.Q, density), K: TopMask(s.K, density), V: TopMask(s.V, density),
			Proj: TopMask(s.Proj, density), Neurons: TopMask(s.Neurons, density)}
	}
	return masks
}

// maskTarget returns weights that share every tensor of w except the ones
// masks change (Q, K, V, Proj, FC1 with its bias, FC2), which get their own
// storage for applyMasks to fill.
func maskTarget(w *vit.Weights) *vit.Weights {
	e := *w
	e.Layers = slices.Clone(w.Layers)
	for i := range e.Layers {
		l := &e.Layers[i]
		for _, t := range []*[]float32{&l.QW, &l.KW, &l.VW, &l.ProjW, &l.FC1W, &l.FC1B, &l.FC2W} {
			*t = make([]float32, len(*t))
		}
	}
	return &e
}

// applyMasks writes into eff the weights of w with pruned blocks and neurons
// zeroed (the mask covers the FC1 bias too); unpruned tensors are shared.
func applyMasks(eff, w *vit.Weights, masks []vit.LayerMask, block int) {
	for i, m := range masks {
		maskLayer(&eff.Layers[i], &w.Layers[i], m, w.Config, block)
	}
}

// maskLayer writes into dst the Q, K, V, Proj, FC1 (with its bias) and FC2
// tensors of src with the blocks and neurons m prunes zeroed; dst may be src.
func maskLayer(dst, src *vit.Layer, m vit.LayerMask, cfg vit.Config, block int) {
	d, hid := cfg.Dim, cfg.MLPHidden
	maskBlocks(dst.QW, src.QW, m.Q, d, block)
	maskBlocks(dst.KW, src.KW, m.K, d, block)
	maskBlocks(dst.VW, src.VW, m.V, d, block)
	maskBlocks(dst.ProjW, src.ProjW, m.Proj, d, block)
	for r := range d {
		for j, keep := range m.Neurons {
			dst.FC1W[r*hid+j] = keepOrZero(keep, src.FC1W[r*hid+j])
		}
	}
	for j, keep := range m.Neurons {
		dst.FC1B[j] = keepOrZero(keep, src.FC1B[j])
		row := dst.FC2W[j*d : (j+1)*d]
		if keep {
			copy(row, src.FC2W[j*d:(j+1)*d])
		} else {
			clear(row)
		}
	}
}

func keepOrZero(keep bool, v float32) float32 {
	if keep {
		return v
	}
	return 0
}

// maskBlocks copies the kept b×b blocks of src (dim×dim) into dst and zeroes the rest.
func maskBlocks(dst, src []float32, mask []bool, dim, b int) {
	nb := dim / b
	for r := range dim {
		for bc := range nb {
			lo, hi := r*dim+bc*b, r*dim+(bc+1)*b
			if mask[(r/b)*nb+bc] {
				copy(dst[lo:hi], src[lo:hi])
			} else {
				clear(dst[lo:hi])
			}
		}
	}
}

// maskedGrads turns gradients w.r.t. the effective weights (g, in place) into
// gradients w.r.t. the weights: pruned entries get none. With scores non-nil
// it first writes the straight-through gradient of every score:
// dL/dS = Σ over the block or neuron of dL/dW_eff · W.
func maskedGrads(g, w *vit.Weights, masks []vit.LayerMask, block int, scores []layerScores) {
	d, hid := w.Config.Dim, w.Config.MLPHidden
	for i, m := range masks {
		gl, l := &g.Layers[i], &w.Layers[i]
		if scores != nil {
			s := scores[i]
			copy(s.Q, blockDots(gl.QW, l.QW, d, d, block))
			copy(s.K, blockDots(gl.KW, l.KW, d, d, block))
			copy(s.V, blockDots(gl.VW, l.VW, d, d, block))
			copy(s.Proj, blockDots(gl.ProjW, l.ProjW, d, d, block))
			for j := range hid {
				sum := float64(gl.FC1B[j]) * float64(l.FC1B[j])
				for r := range d {
					sum += float64(gl.FC1W[r*hid+j]) * float64(l.FC1W[r*hid+j])
				}
				for c := range d {
					sum += float64(gl.FC2W[j*d+c]) * float64(l.FC2W[j*d+c])
				}
				s.Neurons[j] = float32(sum)
			}
		}
		maskLayer(gl, gl, m, w.Config, block)
	}
}

// keptHeads lists, per layer, the heads that survive the masks.
func keptHeads(cfg vit.Config, masks []vit.LayerMask, block int) [][]bool {
	heads := make([][]bool, cfg.Depth)
	for i := range heads {
		heads[i] = make([]bool, cfg.Heads)
		for h := range heads[i] {
			heads[i][h] = masks == nil || masks[i].HeadKept(cfg, block, h)
		}
	}
	return heads
}

// Masked returns a copy of w with the blocks and neurons p prunes set to zero
// (a plain copy when p has no masks), as the saved pruned models store them.
func Masked(w *vit.Weights, p *vit.Pruning) *vit.Weights {
	out := cloneWeights(w)
	if p != nil && p.Layers != nil {
		applyMasks(out, w, p.Layers, p.Block)
	}
	return out
}
