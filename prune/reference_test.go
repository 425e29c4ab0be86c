package prune

import (
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"vitflow/vit"
)

// TestForwardMatchesReference checks that the training forward pass gives
// the reference forward's logits (vit.Weights.Forward) within 1e-4, dense and
// pruned, with one head removed, and with token dropping.
func TestForwardMatchesReference(t *testing.T) {
	cfg, err := vit.Preset("mnist-tiny")
	require.NoError(t, err)
	w := randomWeights(cfg, 11, 0.25)
	mag, err := Magnitude(w, 16, 0.5)
	require.NoError(t, err)
	noHead, err := Magnitude(w, 16, 0.5)
	require.NoError(t, err)
	// Remove head 2 of layer 1: its Q/K/V columns and Proj rows.
	m := &noHead.Layers[1]
	for r := range 4 {
		m.Q[r*4+2], m.K[r*4+2], m.V[r*4+2], m.Proj[2*4+r] = false, false, false, false
	}
	require.False(t, m.HeadKept(cfg, 16, 2))
	withTD := func(p *vit.Pruning, keep float64, td ...int) *vit.Pruning {
		q := *p
		q.Keep, q.TDLayers = keep, td
		return &q
	}
	imgs := randomImages(cfg, 6, 12)
	for _, tc := range []struct {
		name string
		p    *vit.Pruning
	}{
		{"dense", nil},
		{"dense with token dropping", &vit.Pruning{Keep: 0.5, TDLayers: []int{0, 1, 2}}},
		{"magnitude 0.5", mag},
		{"magnitude 0.5, keep 0.7", withTD(mag, 0.7, 0, 1, 2)},
		{"magnitude 0.5, keep 0.5, head removed", withTD(noHead, 0.5, 0, 1, 2)},
		{"keep 0.3 in layers 1 and 3", withTD(mag, 0.3, 1, 3)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Logits(w, tc.p, &Dataset{Images: imgs, Labels: make([]int, len(imgs))})
			nc := cfg.NumClasses
			for i, img := range imgs {
				want, _, err := w.Forward(img, tc.p)
				require.NoError(t, err)
				var scale float64
				for _, v := range want {
					scale = max(scale, math.Abs(float64(v)))
				}
				for j, v := range want {
					assert.InDelta(t, v, got[i*nc+j], 1e-4*max(1, scale), "image %d class %d", i, j)
				}
			}
		})
	}
}
