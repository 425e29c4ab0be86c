package topology

import (
	"context"
	"math"
	"math/rand/v2"
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
