package topology

import (
	"context"
	"math"
	"math/rand/v2"
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
