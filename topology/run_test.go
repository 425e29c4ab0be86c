package topology

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"vitflow/kernels"
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
		assert.Equal(t, kernels.Argmax(want), res.Images[i].Top1, "image %d top-1", i)
	}
}

// headless prunes mnist-tiny at density 0.3 and removes every head of layer 3.
func headless(t *testing.T, w *vit.Weights) *vit.Pruning {
	p := pruned(t, w, 16, 0.3, 0.7, []int{1})
	withoutHeads(w.Config, p, 3, 0, 1, 2, 3)
	return p
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
		// keep 0.97 keeps 48 of 49 patches: one token is fused, the length stays 50.
		{"one token dropped", pruned(t, w, 16, 0.5, 0.97, []int{1}), FidelityDetailed, PolicyStatic},
		{"no heads in a layer, ideal", headless(t, w), FidelityIdeal, PolicyIdeal},
		{"no heads in a layer, detailed", headless(t, w), FidelityDetailed, PolicyStatic},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := preset(t, "small", tc.fid)
			d.Balance = tc.balance
			res, err := Simulate(context.Background(), SimInput{Weights: w, Pruning: tc.p, Desc: d, Images: imgs})
			require.NoError(t, err)
			checkLogits(t, w, tc.p, res, imgs)
			var sum int64
			for _, c := range res.Path.Causes {
				sum += c.Cycles
			}
			assert.Equal(t, res.Cycles, sum, "the causes add up to the makespan")
			t.Logf("%s: %d cycles, estimate %d/image; %s", tc.name, res.Cycles, res.Estimate.Cycles, res.Path.Bottleneck)
			for _, img := range res.Images {
				if strings.HasPrefix(tc.name, "no heads") {
					assert.Zero(t, img.Layers[3].HeadsKept)
					assert.Equal(t, cfg.Heads, img.Layers[2].HeadsKept)
				}
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
// numerics on the paper preset over a grid of block sizes, densities, keep
// rates and removed heads. The units never see the estimator's numbers: the
// PEs work the lock-step rounds of the mappings the controller picks, each
// round costing the mean work of the blocks they are given, so landing
// within 0.5% of the estimator is an independent check of both.
func TestSimulateMatchesEstimator(t *testing.T) {
	cfg, err := vit.Preset("deit-small")
	require.NoError(t, err)
	w := vit.RandomWeights(cfg, 2)
	imgs := randomImages(cfg, 1, 4)
	d := preset(t, "paper", FidelityIdeal)
	td := []int{2, 6, 9}
	removed := map[int]map[int][]int{
		8:  {0: {1}, 5: {0, 2}, 11: {0, 1, 2, 3, 4}},
		16: {0: {1}, 3: {0, 5}, 7: {2, 3, 4}, 11: {0, 1, 2, 3, 4}},
		32: {1: {4}, 2: {0, 1}, 10: {1, 2, 3, 5}},
	}
	type config struct {
		b       int
		density float64
		keep    float64
		heads   map[int][]int // layer -> removed heads
	}
	var cases []config
	for _, b := range []int{8, 16, 32} {
		for _, density := range []float64{1, 0.5, 0.25} {
			for _, keep := range []float64{1, 0.7, 0.5} {
				if testing.Short() && (density == 0.25 || keep == 0.5) {
					continue
				}
				cases = append(cases, config{b, density, keep, nil})
			}
		}
		cases = append(cases, config{b, 0.5, 0.7, removed[b]})
	}
	masks := map[[2]float64]*vit.Pruning{}
	for _, tc := range cases {
		name := fmt.Sprintf("b=%d density=%v keep=%v heads removed=%v", tc.b, tc.density, tc.keep, tc.heads != nil)
		t.Run(name, func(t *testing.T) {
			// Density 1 is the dense model: no masks.
			p := &vit.Pruning{Block: tc.b, Keep: tc.keep, TDLayers: td}
			if tc.density < 1 {
				k := [2]float64{float64(tc.b), tc.density}
				if masks[k] == nil {
					masks[k] = pruned(t, w, tc.b, tc.density, 1, nil)
				}
				p.Layers = make([]vit.LayerMask, cfg.Depth)
				for l, m := range masks[k].Layers {
					p.Layers[l] = vit.LayerMask{Q: slices.Clone(m.Q), K: slices.Clone(m.K), V: slices.Clone(m.V),
						Proj: slices.Clone(m.Proj), Neurons: m.Neurons}
				}
			}
			for l := range cfg.Depth {
				withoutHeads(cfg, p, l, tc.heads[l]...)
			}
			res, err := Simulate(context.Background(), SimInput{Weights: w, Pruning: p, DenseBlock: tc.b, Desc: d, Images: imgs})
			require.NoError(t, err)
			img := res.Images[0]
			want := res.Estimate.Cycles
			if tc.heads == nil {
				// The paper's formulas from the density alone, independent of the masks.
				layers, err := UniformPruning(cfg, tc.b, tc.density, tc.density, nil)
				require.NoError(t, err)
				e, err := Estimate(EstimateInput{Model: cfg, Geometry: d.MPCA, Block: tc.b, Layers: layers, Keep: tc.keep, TDLayers: td})
				require.NoError(t, err)
				assert.InDelta(t, e.Cycles, want, float64(e.Cycles)*0.001, "estimate from the masks")
			}
			rel := float64(res.Cycles-want) / float64(want)
			assert.LessOrEqual(t, math.Abs(rel), 0.005, "simulated %d vs estimated %d cycles", res.Cycles, want)
			assert.Zero(t, res.Path.Cycles(CauseMemory))
			for _, c := range Causes {
				if c.IsSFU() || c == CauseTokenDrop || c == CauseEmbedClassify {
					assert.Zero(t, res.Path.Cycles(c), "%s is free in ideal fidelity", c)
				}
			}
			t.Logf("simulated %d, estimated %d (%+.3f%%); %s", img.Cycles, want, 100*rel, res.Path.Bottleneck)
			checkLogits(t, w, p, res, imgs)
		})
	}
}
