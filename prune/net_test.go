package prune

import (
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"vitflow/kernels"
	"vitflow/vit"
)

// gradConfig is a model small enough for finite differences: 16 patches of
// 2×2 (17 tokens), two layers of two heads.
func gradConfig(dist bool) vit.Config {
	return vit.Config{Name: "grad", ImageSize: 8, PatchSize: 2, InChans: 1, Dim: 8, Depth: 2, Heads: 2,
		MLPHidden: 16, NumClasses: 3, DistToken: dist, LNEps: 1e-6, Mean: []float32{0}, Std: []float32{1}}
}

func randomImages(cfg vit.Config, count int, seed uint64) [][]float32 {
	rng := rand.New(rand.NewPCG(seed, 2))
	imgs := make([][]float32, count)
	for i := range imgs {
		imgs[i] = make([]float32, cfg.InChans*cfg.ImageSize*cfg.ImageSize)
		for j := range imgs[i] {
			imgs[i][j] = float32(rng.NormFloat64())
		}
	}
	return imgs
}

// tensors names every parameter tensor of w, in a fixed order.
func namedTensors(w *vit.Weights) map[string][]float32 {
	m := map[string][]float32{"patch.w": w.PatchW, "patch.b": w.PatchB, "cls": w.ClsToken, "pos": w.PosEmbed,
		"norm.w": w.NormW, "norm.b": w.NormB, "head.w": w.HeadW, "head.b": w.HeadB}
	if w.DistToken != nil {
		m["dist"] = w.DistToken
	}
	for i := range w.Layers {
		l := &w.Layers[i]
		for name, t := range map[string][]float32{"norm1.w": l.Norm1W, "norm1.b": l.Norm1B, "q.w": l.QW, "q.b": l.QB,
			"k.w": l.KW, "k.b": l.KB, "v.w": l.VW, "v.b": l.VB, "proj.w": l.ProjW, "proj.b": l.ProjB, "norm2.w": l.Norm2W,
			"norm2.b": l.Norm2B, "fc1.w": l.FC1W, "fc1.b": l.FC1B, "fc2.w": l.FC2W, "fc2.b": l.FC2B} {
			m[fmt.Sprintf("layers.%d.%s", i, name)] = t
		}
	}
	return m
}

// TestBackwardFiniteDifferences checks the gradient of L = Σ r·logits w.r.t.
// every parameter tensor along a random direction u: (L(w+εu) − L(w−εu))/2ε
// against Σ grad·u. This covers the patch embedding, LayerNorm, attention and
// softmax, GELU MLP, residuals, classifier, and (in layer 0) token dropping
// with fusion, whose ranking must not change under the perturbation.
func TestBackwardFiniteDifferences(t *testing.T) {
	for _, tc := range []struct {
		name  string
		dist  bool
		keep  float64
		td    []bool
		heads []bool
	}{
		{"dense", false, 1, []bool{false, false}, []bool{true, true}},
		{"token dropping", false, 0.5, []bool{true, false}, []bool{true, true}},
		{"token dropping twice, one head kept", false, 0.7, []bool{true, true}, []bool{false, true}},
		{"dist token", true, 0.5, []bool{true, false}, []bool{true, true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := gradConfig(tc.dist)
			w := randomWeights(cfg, 3, 0.5)
			m := &stepModel{w: w, keep: tc.keep, td: tc.td, heads: [][]bool{tc.heads, tc.heads}}
			imgs := randomImages(cfg, 3, 4)
			nt := newNet(cfg, len(imgs))
			rng := rand.New(rand.NewPCG(5, 6))
			r := make([]float32, len(imgs)*cfg.NumClasses)
			for i := range r {
				r[i] = float32(rng.NormFloat64())
			}
			// Kept tokens' order does not change the logits (attention is
			// permutation-equivariant), so the check compares kept sets.
			loss := func() (float64, []bool) {
				z := nt.forward(m, imgs)
				var s float64
				for i, v := range z {
					s += float64(v) * float64(r[i])
				}
				var kept []bool
				for _, c := range nt.layers {
					if c.drop {
						kept = append(kept, c.isKept[:len(imgs)*c.n]...)
					}
				}
				return s, kept
			}
			_, kept0 := loss()
			if tc.keep < 1 {
				require.NotEmpty(t, kept0, "no layer dropped tokens")
			}
			grad := randomWeights(cfg, 99, 1) // garbage that backward must overwrite
			nt.backward(m, len(imgs), r, grad)
			params, grads := namedTensors(w), namedTensors(grad)
			// In name order: the directions come from one seeded stream, so
			// map order would give each tensor different ones run to run.
			for _, name := range slices.Sorted(maps.Keys(params)) {
				p := params[name]
				u := make([]float32, len(p))
				var want float64
				for i := range u {
					u[i] = float32(rng.NormFloat64())
					want += float64(u[i]) * float64(grads[name][i])
				}
				const eps = 1e-3
				orig := append([]float32(nil), p...)
				for i := range p {
					p[i] = orig[i] + eps*u[i]
				}
				lp, keptP := loss()
				for i := range p {
					p[i] = orig[i] - eps*u[i]
				}
				lm, keptM := loss()
				copy(p, orig)
				require.Equal(t, kept0, keptP, "%s: ranking changed under perturbation", name)
				require.Equal(t, kept0, keptM, "%s: ranking changed under perturbation", name)
				got := (lp - lm) / (2 * eps)
				assert.InDelta(t, want, got, 2e-3+2e-2*math.Abs(want), "%s: analytic %g, finite difference %g", name, want, got)
			}
		})
	}
}

func TestOpBackwards(t *testing.T) {
	rng := rand.New(rand.NewPCG(8, 9))
	vec := func(n int, s float64) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(rng.NormFloat64() * s)
		}
		return v
	}
	const rows, cols, eps = 3, 7, 1e-3
	type op struct {
		name string
		// f maps x to y; back turns dy into dx in place given x.
		f    func(x []float32) []float32
		back func(dy, x []float32) []float32
	}
	gamma, beta := vec(cols, 1), vec(cols, 1)
	ops := []op{
		{"layernorm", func(x []float32) []float32 {
			y, xh, rs := make([]float32, len(x)), make([]float32, len(x)), make([]float32, rows)
			layerNormForward(y, xh, rs, x, gamma, beta, rows, cols, 1e-6)
			return y
		}, func(dy, x []float32) []float32 {
			y, xh, rs := make([]float32, len(x)), make([]float32, len(x)), make([]float32, rows)
			layerNormForward(y, xh, rs, x, gamma, beta, rows, cols, 1e-6)
			dx := make([]float32, len(x))
			layerNormBackward(dx, make([]float32, cols), make([]float32, cols), dy, xh, rs, gamma, rows, cols)
			return dx
		}},
		{"softmax", func(x []float32) []float32 {
			y := append([]float32(nil), x...)
			kernels.SoftmaxRows(y, rows, cols)
			return y
		}, func(dy, x []float32) []float32 {
			p := append([]float32(nil), x...)
			kernels.SoftmaxRows(p, rows, cols)
			dx := append([]float32(nil), dy...)
			softmaxBackward(dx, p, cols)
			return dx
		}},
		{"gelu", func(x []float32) []float32 {
			y := make([]float32, len(x))
			geluAndSlope(y, make([]float32, len(x)), x)
			return y
		}, func(dy, x []float32) []float32 {
			slope := make([]float32, len(x))
			geluAndSlope(make([]float32, len(x)), slope, x)
			for i := range slope {
				slope[i] *= dy[i]
			}
			return slope
		}},
	}
	for _, o := range ops {
		t.Run(o.name, func(t *testing.T) {
			x, dy := vec(rows*cols, 2), vec(rows*cols, 1)
			dx := o.back(dy, x)
			for i := range x {
				orig := x[i]
				x[i] = orig + eps
				yp := o.f(x)
				x[i] = orig - eps
				ym := o.f(x)
				x[i] = orig
				var fd float64
				for j := range yp {
					fd += float64(dy[j]) * float64(yp[j]-ym[j]) / (2 * eps)
				}
				assert.InDelta(t, fd, dx[i], 2e-3+1e-2*math.Abs(fd), "d/dx[%d]", i)
			}
		})
	}
}

// TestFastMath bounds the error of the trainer's float32 exp, GELU and
// softmax against the exact kernels over the range training meets.
func TestFastMath(t *testing.T) {
	var xs []float32
	for x := -90.0; x <= 0; x += 0.01 {
		want := math.Exp(float64(float32(x)))
		got := float64(expNeg(float32(x)))
		if want < 1e-37 {
			assert.Less(t, got, 1e-37, "exp(%v)", x)
			continue
		}
		assert.InEpsilon(t, want, got, 3e-7, "exp(%v)", x)
	}
	for x := -40.0; x <= 40; x += 0.01 {
		xs = append(xs, float32(x))
	}
	g, slope, exact := make([]float32, len(xs)), make([]float32, len(xs)), make([]float32, len(xs))
	geluAndSlope(g, slope, xs)
	kernels.GELU(exact, xs)
	for i, x := range xs {
		assert.InDelta(t, exact[i], g[i], 5e-7*max(1, math.Abs(float64(x))), "gelu(%v)", x)
	}
	p := []float32{1, 2, 3, -50, 0.5, 7}
	q := append([]float32(nil), p...)
	softmaxRows(p, 3)
	kernels.SoftmaxRows(q, 2, 3)
	assert.InDeltaSlice(t, q, p, 1e-7)
}
