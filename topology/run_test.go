package topology

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"vitflow/prune"
	"vitflow/vit"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// randomImages returns n seeded images for cfg, roughly normalised pixels.
func randomImages(cfg vit.Config, n int, seed uint64) [][]float32 {
	r := rand.New(rand.NewPCG(seed, 7))
	imgs := make([][]float32, n)
	for i := range imgs {
		img := make([]float32, cfg.InChans*cfg.ImageSize*cfg.ImageSize)
		for j := range img {
			img[j] = float32(r.NormFloat64())
		}
		imgs[i] = img
	}
	return imgs
}

// maxRelDiff is max |a-b| over max |b|: the logits' error relative to their scale.
func maxRelDiff(a, b []float32) float64 {
	var diff, scale float64
	for i := range b {
		diff = max(diff, math.Abs(float64(a[i])-float64(b[i])))
		scale = max(scale, math.Abs(float64(b[i])))
	}
	return diff / scale
}

func argmaxOf(v []float32) int { return argmax(v) }

func preset(t *testing.T, name string, fidelity Fidelity) Description {
	t.Helper()
	d, err := Preset(name)
	require.NoError(t, err)
	d.Fidelity = fidelity
	return d
}

// pruned returns a one-shot magnitude pruning with token dropping.
func pruned(t *testing.T, w *vit.Weights, b int, density, keep float64, td []int) *vit.Pruning {
	t.Helper()
	p, err := prune.Magnitude(w, b, density)
	require.NoError(t, err)
	p.Keep, p.TDLayers = keep, td
	return p
}

func checkLogits(t *testing.T, w *vit.Weights, p *vit.Pruning, res *SimResult, imgs [][]float32) {
	t.Helper()
	c, err := w.Compact(p)
	require.NoError(t, err)
	require.Len(t, res.Images, len(imgs))
	for i, img := range imgs {
		want, _, err := c.Forward(img)
		require.NoError(t, err)
		got := res.Images[i].Logits
		require.Len(t, got, len(want))
		assert.LessOrEqual(t, maxRelDiff(got, want), 1e-4, "image %d", i)
		assert.Equal(t, argmaxOf(want), res.Images[i].Top1, "image %d top-1", i)
	}
}

func TestSimulateMNISTTinyLogits(t *testing.T) {
	cfg, err := vit.Preset("mnist-tiny")
	require.NoError(t, err)
	w := vit.RandomWeights(cfg, 1)
	imgs := randomImages(cfg, 2, 3)
	for _, tc := range []struct {
		name    string
		p       *vit.Pruning
		fid     Fidelity
		balance Policy
	}{
		{"dense ideal", nil, FidelityIdeal, PolicyIdeal},
		{"dense detailed", nil, FidelityDetailed, PolicyBalanced},
		{"pruned ideal", pruned(t, w, 16, 0.5, 0.7, []int{1, 2}), FidelityIdeal, PolicyIdeal},
		{"pruned detailed static", pruned(t, w, 16, 0.5, 0.7, []int{1, 2}), FidelityDetailed, PolicyStatic},
		{"pruned detailed balanced", pruned(t, w, 16, 0.4, 0.5, []int{1}), FidelityDetailed, PolicyBalanced},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := preset(t, "small", tc.fid)
			d.Balance = tc.balance
			res, err := Simulate(context.Background(), SimInput{Weights: w, Pruning: tc.p, Desc: d, Images: imgs})
			require.NoError(t, err)
			checkLogits(t, w, tc.p, res, imgs)
			for _, img := range res.Images {
				assert.Equal(t, img.Cycles-res.Estimate.Cycles, img.Gap.Total(), "gap decomposition adds up")
			}
		})
	}
}

// withoutHeads prunes every block of the given heads of layer l (Q, K, V
// columns and Proj rows), which removes them.
func withoutHeads(cfg vit.Config, p *vit.Pruning, l int, heads ...int) {
	if len(heads) == 0 {
		return
	}
	nb, hb := cfg.Dim/p.Block, cfg.HeadDim()/p.Block
	m := &p.Layers[l]
	for _, h := range heads {
		for i := range nb {
			for j := h * hb; j < (h+1)*hb; j++ {
				m.Q[i*nb+j], m.K[i*nb+j], m.V[i*nb+j] = false, false, false
				m.Proj[j*nb+i] = false
			}
		}
	}
}

// TestSimulateMatchesEstimator runs whole DeiT-S inferences with real
// numerics on the paper preset: the simulated cycles are the estimator's
// plus exactly the FIFO latency of the stage hand-offs, which stays under 0.5%.
func TestSimulateMatchesEstimatorB16(t *testing.T) {
	simulateMatchesEstimator(t, 16, map[int][]int{0: {1}, 3: {0, 5}, 7: {2, 3, 4}, 11: {0, 1, 2, 3, 4}})
}

func TestSimulateMatchesEstimatorB32(t *testing.T) {
	simulateMatchesEstimator(t, 32, map[int][]int{1: {4}, 2: {0, 1}, 10: {1, 2, 3, 5}})
}

func simulateMatchesEstimator(t *testing.T, b int, removed map[int][]int) {
	cfg, err := vit.Preset("deit-small")
	require.NoError(t, err)
	w := vit.RandomWeights(cfg, 2)
	imgs := randomImages(cfg, 1, 4)
	d := preset(t, "paper", FidelityIdeal)
	td := []int{2, 6, 9}
	type config struct {
		name    string
		b       int
		density float64
		keep    float64
		heads   map[int][]int // layer -> removed heads
	}
	var cases []config
	for _, density := range []float64{1, 0.5} {
		for _, keep := range []float64{1, 0.7, 0.5} {
			cases = append(cases, config{fmt.Sprintf("density %v keep %v", density, keep), b, density, keep, nil})
		}
	}
	cases = append(cases, config{"heads removed", b, 0.5, 0.7, removed})
	half := pruned(t, w, b, 0.5, 1, nil)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// Density 1 is the dense model: no masks.
			p := &vit.Pruning{Block: tc.b, Keep: tc.keep, TDLayers: td}
			if tc.density < 1 {
				p.Layers = make([]vit.LayerMask, cfg.Depth)
				for l, m := range half.Layers {
					p.Layers[l] = vit.LayerMask{Q: slices.Clone(m.Q), K: slices.Clone(m.K), V: slices.Clone(m.V),
						Proj: slices.Clone(m.Proj), Neurons: m.Neurons}
				}
			}
			headsKept := make([]int, cfg.Depth)
			for l := range headsKept {
				headsKept[l] = cfg.Heads - len(tc.heads[l])
				withoutHeads(cfg, p, l, tc.heads[l]...)
			}
			res, err := Simulate(context.Background(), SimInput{Weights: w, Pruning: p, DenseBlock: tc.b, Desc: d, Images: imgs})
			require.NoError(t, err)
			img := res.Images[0]

			// The estimator from the paper's formulas, independent of the masks.
			want := res.Estimate.Cycles
			if tc.heads == nil {
				layers, err := UniformPruning(cfg, tc.b, tc.density, tc.density, nil)
				require.NoError(t, err)
				e, err := Estimate(EstimateInput{Model: cfg, Geometry: d.MPCA, Block: tc.b, Layers: layers, Keep: tc.keep, TDLayers: td})
				require.NoError(t, err)
				want = e.Cycles
			}
			require.Equal(t, want, res.Estimate.Cycles, "estimate from the masks")
			for l, lr := range img.Layers {
				assert.Equal(t, headsKept[l], lr.HeadsKept, "layer %d heads", l)
				for _, op := range lr.Ops {
					assert.Equal(t, op.Estimate, op.Compute, "layer %d %s", l, op.Op)
					assert.Zero(t, op.Memory, "layer %d %s", l, op.Op)
				}
			}
			assert.Equal(t, Gap{Latency: img.Gap.Latency}, img.Gap, "only FIFO latency separates ideal from the estimator")
			assert.Equal(t, want+img.Gap.Latency, img.Cycles)
			rel := float64(img.Cycles-want) / float64(want)
			assert.LessOrEqual(t, rel, 0.005, "simulated %d vs estimated %d cycles", img.Cycles, want)
			t.Logf("b=%d density=%v keep=%v: simulated %d, estimated %d (+%.3f%%, FIFO latency)", tc.b, tc.density, tc.keep, img.Cycles, want, 100*rel)
			checkLogits(t, w, p, res, imgs)
		})
	}
}
