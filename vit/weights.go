package vit

import (
	"fmt"
	"math/rand/v2"
	"strings"
)

// param names one parameter of Weights with its shape in our layout.
type param struct {
	name  string
	shape []int
	data  *[]float32
}

// LayerTensor is the name of parameter param ("q.weight", "fc1.bias", ...)
// of encoder layer l in Validate's errors.
func LayerTensor(l int, param string) string { return fmt.Sprintf("layers.%d.%s", l, param) }

// layerMatrix reports whether p is one of an encoder layer's weight matrices.
func (p param) layerMatrix() bool { return len(p.shape) == 2 && strings.HasPrefix(p.name, "layers.") }

func (p param) size() int {
	n := 1
	for _, s := range p.shape {
		n *= s
	}
	return n
}

// tensors lists every parameter of w, in a fixed order, sized by w.Config and
// w.Layers (which must have Config.Depth entries to be complete).
func (w *Weights) tensors() []param {
	c := w.Config
	d := c.Dim
	ps := []param{
		{"patch.weight", []int{c.PatchLen(), d}, &w.PatchW},
		{"patch.bias", []int{d}, &w.PatchB},
		{"cls_token", []int{d}, &w.ClsToken},
	}
	if c.DistToken {
		ps = append(ps, param{"dist_token", []int{d}, &w.DistToken})
	}
	ps = append(ps, param{"pos_embed", []int{c.Tokens(), d}, &w.PosEmbed})
	for i := range w.Layers {
		l := &w.Layers[i]
		n := func(s string) string { return LayerTensor(i, s) }
		ps = append(ps,
			param{n("norm1.weight"), []int{d}, &l.Norm1W},
			param{n("norm1.bias"), []int{d}, &l.Norm1B},
			param{n("q.weight"), []int{d, d}, &l.QW},
			param{n("q.bias"), []int{d}, &l.QB},
			param{n("k.weight"), []int{d, d}, &l.KW},
			param{n("k.bias"), []int{d}, &l.KB},
			param{n("v.weight"), []int{d, d}, &l.VW},
			param{n("v.bias"), []int{d}, &l.VB},
			param{n("proj.weight"), []int{d, d}, &l.ProjW},
			param{n("proj.bias"), []int{d}, &l.ProjB},
			param{n("norm2.weight"), []int{d}, &l.Norm2W},
			param{n("norm2.bias"), []int{d}, &l.Norm2B},
			param{n("fc1.weight"), []int{d, c.MLPHidden}, &l.FC1W},
			param{n("fc1.bias"), []int{c.MLPHidden}, &l.FC1B},
			param{n("fc2.weight"), []int{c.MLPHidden, d}, &l.FC2W},
			param{n("fc2.bias"), []int{d}, &l.FC2B},
		)
	}
	return append(ps,
		param{"norm.weight", []int{d}, &w.NormW},
		param{"norm.bias", []int{d}, &w.NormB},
		param{"head.weight", []int{d, c.NumClasses}, &w.HeadW},
		param{"head.bias", []int{c.NumClasses}, &w.HeadB},
	)
}

// RandomWeights returns seeded random weights for cfg, for timing studies and
// tests: matrices, tokens and position embeddings are truncated-normal with
// standard deviation 0.02 (as timm initialises ViTs); biases get the same
// small noise and LayerNorm weights 1 ± 0.02-ish noise rather than exact
// zeros and ones, so that a misplaced bias or LayerNorm shows in the logits.
// The same cfg and seed give the same weights on every machine.
func RandomWeights(cfg Config, seed uint64) *Weights {
	rng := rand.New(rand.NewPCG(seed, 0x766974666c6f77)) // "vitflow"
	w := &Weights{Config: cfg, Layers: make([]Layer, cfg.Depth)}
	for _, p := range w.tensors() {
		v := make([]float32, p.size())
		for i := range v {
			v[i] = truncNormal(rng, 0.02)
		}
		if isNormWeight(p.name) {
			for i := range v {
				v[i]++
			}
		}
		*p.data = v
	}
	return w
}

func isNormWeight(name string) bool {
	return strings.HasSuffix(name, "norm1.weight") || strings.HasSuffix(name, "norm2.weight") || name == "norm.weight"
}

// truncNormal draws from a normal distribution of deviation std cut at ±2 std.
func truncNormal(rng *rand.Rand, std float64) float32 {
	for {
		if x := rng.NormFloat64(); x >= -2 && x <= 2 {
			return float32(x * std)
		}
	}
}
