package prune

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"vitflow/vit"
)

func TestKept(t *testing.T) {
	for _, tc := range []struct {
		n       int
		density float64
		want    int
	}{
		{16, 0.5, 8}, {256, 0.5, 128}, {30, 0.7, 21}, {16, 0.7, 12}, {10, 0.01, 1},
		{5, 1, 5}, {3, 1.0 / 3, 1}, {49, 0.5, 25}, {0, 0.5, 0},
	} {
		assert.Equal(t, tc.want, Kept(tc.n, tc.density), "Kept(%d, %v)", tc.n, tc.density)
	}
}

func TestTopMask(t *testing.T) {
	for _, tc := range []struct {
		name    string
		scores  []float32
		density float64
		want    []bool
	}{
		{"largest", []float32{1, 5, 3, 4}, 0.5, []bool{false, true, false, true}},
		{"ties to lower index", []float32{2, 2, 2, 2, 2}, 0.5, []bool{true, true, true, false, false}},
		{"tie at the cut", []float32{1, 3, 2, 3, 2}, 0.6, []bool{false, true, true, true, false}},
		{"all", []float32{0, -1}, 1, []bool{true, true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, TopMask(tc.scores, tc.density))
		})
	}
}

func TestBlockAndNeuronNorms(t *testing.T) {
	// 2×4 matrix in 2×2 blocks.
	w := []float32{1, 2, 0, 0, 3, 4, 0, 1}
	assert.Equal(t, []float32{30, 1}, BlockNorms(w, 2, 4, 2))
	// dim 2, hidden 3: fc1 columns and fc2 rows.
	fc1 := []float32{1, 0, 2, 1, 0, 0} // columns: (1,1) (0,0) (2,0)
	fc2 := []float32{0, 1, 3, 0, 0, 0} // rows: (0,1) (3,0) (0,0)
	assert.Equal(t, []float32{3, 9, 4}, NeuronNorms(fc1, fc2, 2, 3))
}

// testWeights fills a mnist-tiny model with seeded normal weights.
func testWeights(t *testing.T, seed uint64) *vit.Weights {
	t.Helper()
	cfg, err := vit.Preset("mnist-tiny")
	require.NoError(t, err)
	return randomWeights(cfg, seed, 0.1)
}

// randomWeights gives every parameter of cfg a seeded normal value of the
// given scale (LayerNorm gains around 1).
func randomWeights(cfg vit.Config, seed uint64, scale float64) *vit.Weights {
	rng := rand.New(rand.NewPCG(seed, 1))
	vec := func(n int) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(rng.NormFloat64() * scale)
		}
		return v
	}
	gain := func(n int) []float32 {
		v := vec(n)
		for i := range v {
			v[i]++
		}
		return v
	}
	d, h := cfg.Dim, cfg.MLPHidden
	w := &vit.Weights{Config: cfg, PatchW: vec(cfg.PatchLen() * d), PatchB: vec(d), ClsToken: vec(d),
		PosEmbed: vec(cfg.Tokens() * d), NormW: gain(d), NormB: vec(d), HeadW: vec(d * cfg.NumClasses), HeadB: vec(cfg.NumClasses)}
	if cfg.DistToken {
		w.DistToken = vec(d)
	}
	for range cfg.Depth {
		w.Layers = append(w.Layers, vit.Layer{Norm1W: gain(d), Norm1B: vec(d), QW: vec(d * d), KW: vec(d * d), VW: vec(d * d),
			QB: vec(d), KB: vec(d), VB: vec(d), ProjW: vec(d * d), ProjB: vec(d), Norm2W: gain(d), Norm2B: vec(d),
			FC1W: vec(d * h), FC1B: vec(h), FC2W: vec(h * d), FC2B: vec(d)})
	}
	return w
}

func count(mask []bool) int {
	n := 0
	for _, m := range mask {
		if m {
			n++
		}
	}
	return n
}

func TestMagnitude(t *testing.T) {
	w := testWeights(t, 7)
	d := w.Config.Dim
	// Make block (row 2, column 1) of layer 1's K and neuron 5 of layer 3 the largest.
	for r := 32; r < 48; r++ {
		for c := 16; c < 32; c++ {
			w.Layers[1].KW[r*d+c] = 10
		}
	}
	w.Layers[3].FC2W[5*d] = 100

	for _, density := range []float64{1, 0.5, 0.25, 0.1} {
		p, err := Magnitude(w, 16, density)
		require.NoError(t, err)
		assert.Equal(t, 16, p.Block)
		assert.Equal(t, 1.0, p.Keep)
		require.Len(t, p.Layers, w.Config.Depth)
		for _, m := range p.Layers {
			for _, mask := range [][]bool{m.Q, m.K, m.V, m.Proj} {
				require.Len(t, mask, 16)
				assert.Equal(t, Kept(16, density), count(mask))
			}
			require.Len(t, m.Neurons, w.Config.MLPHidden)
			assert.Equal(t, Kept(w.Config.MLPHidden, density), count(m.Neurons))
		}
		assert.True(t, p.Layers[1].K[2*4+1], "density %v", density)
		assert.True(t, p.Layers[3].Neurons[5], "density %v", density)
	}
	again, err := Magnitude(w, 16, 0.5)
	require.NoError(t, err)
	first, err := Magnitude(w, 16, 0.5)
	require.NoError(t, err)
	assert.Equal(t, first, again)
}

func TestMagnitudeErrors(t *testing.T) {
	for _, tc := range []struct {
		name    string
		block   int
		density float64
		edit    func(*vit.Weights)
		want    string
	}{
		{"block not dividing head", 32, 0.5, nil, "block size 32"},
		{"zero block", 0, 0.5, nil, "block size 0"},
		{"zero density", 16, 0, nil, "density 0"},
		{"density above one", 16, 1.5, nil, "density 1.5"},
		{"NaN density", 16, math.NaN(), nil, "density NaN"},
		{"short matrix", 16, 0.5, func(w *vit.Weights) { w.Layers[2].VW = w.Layers[2].VW[:10] }, "layer 2 v has 10 weights"},
		{"missing layer", 16, 0.5, func(w *vit.Weights) { w.Layers = w.Layers[:3] }, "3 layers"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := testWeights(t, 1)
			if tc.edit != nil {
				tc.edit(w)
			}
			_, err := Magnitude(w, tc.block, tc.density)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}
