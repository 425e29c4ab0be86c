package prune

import (
	"math"
	"slices"

	"vitflow/vit"
)

// param is one trainable tensor as the optimiser sees it.
type param struct {
	v     []float32
	decay bool // weight decay applies (linear and patch weights only)
	score bool // a mask score: trained at ScoreLR, never decayed
}

// weightTensors lists every tensor of w in a fixed order (DistToken only if present).
func weightTensors(w *vit.Weights) [][]float32 {
	ts := [][]float32{w.PatchW, w.PatchB, w.ClsToken}
	if w.DistToken != nil {
		ts = append(ts, w.DistToken)
	}
	ts = append(ts, w.PosEmbed)
	for i := range w.Layers {
		l := &w.Layers[i]
		ts = append(ts, l.Norm1W, l.Norm1B, l.QW, l.QB, l.KW, l.KB, l.VW, l.VB, l.ProjW, l.ProjB,
			l.Norm2W, l.Norm2B, l.FC1W, l.FC1B, l.FC2W, l.FC2B)
	}
	return append(ts, w.NormW, w.NormB, w.HeadW, w.HeadB)
}

// weightParams lists the tensors of w with their weight-decay flags.
func weightParams(w *vit.Weights) []param {
	decayed := map[*float32]bool{&w.PatchW[0]: true, &w.HeadW[0]: true}
	for i := range w.Layers {
		l := &w.Layers[i]
		for _, t := range [][]float32{l.QW, l.KW, l.VW, l.ProjW, l.FC1W, l.FC2W} {
			decayed[&t[0]] = true
		}
	}
	var ps []param
	for _, t := range weightTensors(w) {
		ps = append(ps, param{v: t, decay: decayed[&t[0]]})
	}
	return ps
}

// cloneWeights deep-copies w.
func cloneWeights(w *vit.Weights) *vit.Weights {
	c := *w
	c.Config.Mean, c.Config.Std = slices.Clone(w.Config.Mean), slices.Clone(w.Config.Std)
	c.PatchW, c.PatchB, c.ClsToken, c.DistToken = slices.Clone(w.PatchW), slices.Clone(w.PatchB), slices.Clone(w.ClsToken), slices.Clone(w.DistToken)
	c.PosEmbed, c.NormW, c.NormB, c.HeadW, c.HeadB = slices.Clone(w.PosEmbed), slices.Clone(w.NormW), slices.Clone(w.NormB), slices.Clone(w.HeadW), slices.Clone(w.HeadB)
	c.Layers = slices.Clone(w.Layers)
	for i := range c.Layers {
		l := &c.Layers[i]
		for _, t := range []*[]float32{&l.Norm1W, &l.Norm1B, &l.QW, &l.QB, &l.KW, &l.KB, &l.VW, &l.VB, &l.ProjW, &l.ProjB,
			&l.Norm2W, &l.Norm2B, &l.FC1W, &l.FC1B, &l.FC2W, &l.FC2B} {
			*t = slices.Clone(*t)
		}
	}
	return &c
}

// adamW is Adam with decoupled weight decay (Loshchilov and Hutter).
type adamW struct {
	m, v [][]float32
	t    int
}

const (
	adamBeta1 = 0.9
	adamBeta2 = 0.999
	adamEps   = 1e-8
)

func newAdamW(ps []param) adamW {
	a := adamW{}
	for _, p := range ps {
		a.m = append(a.m, make([]float32, len(p.v)))
		a.v = append(a.v, make([]float32, len(p.v)))
	}
	return a
}

// update takes one step with gradients grads (in the order of ps) at learning-rate multiplier mult.
func (a *adamW) update(ps []param, grads [][]float32, opt Options, mult float64) {
	a.t++
	c1 := 1 - math.Pow(adamBeta1, float64(a.t))
	c2 := 1 - math.Pow(adamBeta2, float64(a.t))
	for i, p := range ps {
		lr := opt.LR * mult
		if p.score {
			lr = opt.ScoreLR * mult
		}
		decay := float32(1)
		if p.decay {
			decay = float32(1 - lr*opt.WeightDecay)
		}
		step := float32(lr / c1)
		rc2 := float32(1 / math.Sqrt(c2))
		m, v, g := a.m[i], a.v[i], grads[i]
		for j, x := range p.v {
			gj := g[j]
			m[j] = adamBeta1*m[j] + (1-adamBeta1)*gj
			v[j] = adamBeta2*v[j] + (1-adamBeta2)*gj*gj
			denom := float32(math.Sqrt(float64(v[j])))*rc2 + adamEps
			p.v[j] = x*decay - step*m[j]/denom
		}
	}
}
