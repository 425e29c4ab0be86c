package topology

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"vitflow/vit"
)

var paperMPCA = Geometry{T: 12, C: 2, H: 4, P: 8}

func deitSmall(t testing.TB) vit.Config {
	cfg, err := vit.Preset("deit-small")
	require.NoError(t, err)
	return cfg
}

func estimate(t testing.TB, b int, density, keep float64, headsKept []int) Estimation {
	cfg := deitSmall(t)
	layers, err := UniformPruning(cfg, b, density, density, headsKept)
	require.NoError(t, err)
	est, err := Estimate(EstimateInput{Model: cfg, Geometry: paperMPCA, Block: b, Layers: layers,
		Keep: keep, TDLayers: []int{2, 6, 9}})
	require.NoError(t, err)
	return est
}

// On the paper's MPCA (t*c = 24 PEs per CHM, h = 4, p = 8) with b = 16 one
// block product costs ceil(16/8)^2*16 = 64 cycles, and 198 tokens make
// ceil(198/16) = 13 row blocks.
func TestLinearCostByHand(t *testing.T) {
	tests := []struct {
		name string
		b    int
		s    Shape
		phi  float64
		want Cost
	}{
		// Q of DeiT-S: sweep = ceil(13*4/24)*ceil(6/4) = 3*2 = 6 snapshots;
		// expand = ceil(ceil(24/4)*13/24) = ceil(78/24) = 4; 4*24*64 = 6144.
		{"Q dense", 16, Shape{M: 198, N: 384, W: 384}, 1, Cost{Expand, 4, 6144}},
		{"Q half", 16, Shape{M: 198, N: 384, W: 384}, 0.5, Cost{Expand, 4, 3072}},
		// FC1: sweep = 3*ceil(24/4) = 18; expand = ceil(24*13/24) = 13; 13*24*64 = 19968.
		{"FC1 dense", 16, Shape{M: 198, N: 384, W: 1536}, 1, Cost{Expand, 13, 19968}},
		// FC2: expand = ceil(6*13/24) = 4; 4*96*64 = 24576.
		{"FC2 dense", 16, Shape{M: 198, N: 1536, W: 384}, 1, Cost{Expand, 4, 24576}},
		// Q with 4 heads kept (W = 256), phi = 576*0.5/384 = 0.75: sweep =
		// ceil(52/24)*ceil(4/4) = 3, expand = ceil(ceil(16/4)*13/24) = 3: a tie
		// goes to sweep; ceil(3*24*64*0.75) = 3456.
		{"Q four heads", 16, Shape{M: 198, N: 384, W: 256}, 0.75, Cost{Sweep, 3, 3456}},
		// 140 tokens after dropping (9 row blocks), FC1 of width 768: sweep =
		// ceil(36/24)*ceil(12/4) = 6, expand = ceil(12*9/24) = 5; 5*24*64 = 7680.
		{"FC1 after drop", 16, Shape{M: 140, N: 384, W: 768}, 1, Cost{Expand, 5, 7680}},
		// b = 32: a block product costs ceil(32/8)^2*32 = 512 cycles; 7 row
		// blocks. Q: sweep = ceil(7*2/24)*2 = 2, expand = ceil(ceil(12/4)*7/24) = 1;
		// ceil(1*12*512*0.7) = ceil(4300.8) = 4301.
		{"Q b32 fractional", 32, Shape{M: 198, N: 384, W: 384}, 0.7, Cost{Expand, 1, 4301}},
		{"no columns", 16, Shape{M: 198, N: 384, W: 0}, 1, Cost{Sweep, 0, 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, LinearCost(paperMPCA, tt.b, 64, tt.s, tt.phi))
		})
	}
}

func TestHeadwiseCostRoundsHeadsToCHMs(t *testing.T) {
	qk := Shape{M: 198, N: 64, W: 198}
	// Q·K^T, 6 heads on 4 CHMs: ceil(6/4) = 2 rounds of ceil(13*13/24) = 8
	// snapshots, each ceil(64/16) = 4 block products of 64 cycles: 2*8*4*64 = 4096.
	six := HeadwiseCost(paperMPCA, 16, 6, qk)
	assert.Equal(t, Cost{HeadWise, 16, 4096}, six)
	for _, heads := range []int{5, 7, 8} {
		assert.Equal(t, six, HeadwiseCost(paperMPCA, 16, heads, qk), "%d heads", heads)
	}
	for _, heads := range []int{1, 2, 3, 4} {
		assert.Equal(t, six.Cycles/2, HeadwiseCost(paperMPCA, 16, heads, qk).Cycles, "%d heads", heads)
	}
	// A·V: 2 * ceil(13*4/24) = 6 snapshots of 13 products: 6*13*64 = 4992.
	assert.Equal(t, Cost{HeadWise, 6, 4992}, HeadwiseCost(paperMPCA, 16, 6, Shape{M: 198, N: 198, W: 64}))
	assert.Zero(t, HeadwiseCost(paperMPCA, 16, 0, qk).Cycles)
}

func TestRowSumCost(t *testing.T) {
	// ceil(13/12) = 2 row-block rounds * ceil(6/4) = 2 head rounds, each
	// ceil(198/16) = 13 products of ceil(16/8)*16 = 32 cycles: 2*2*13*32 = 1664.
	assert.Equal(t, Cost{RowWise, 4, 1664}, RowSumCost(paperMPCA, 16, 6, 198, 198))
	// 140 tokens: 1*2*9*32 = 576.
	assert.Equal(t, Cost{RowWise, 2, 576}, RowSumCost(paperMPCA, 16, 6, 140, 140))
}

func TestEstimateDeiTSmallLayers(t *testing.T) {
	// Dense, b = 16, layer 0 at 198 tokens: Q, K, V, W_O 6144 each, Q·K^T
	// 4096, row sums 1664, A·V 4992, FC1 19968, FC2 24576; 79872 in all.
	dense := estimate(t, 16, 1, 1, nil)
	l0 := dense.Layers[0]
	want := map[Op]int64{OpQ: 6144, OpK: 6144, OpV: 6144, OpQK: 4096, OpRowSum: 1664, OpAV: 4992,
		OpO: 6144, OpFC1: 19968, OpFC2: 24576}
	require.Len(t, l0.Ops, len(Ops))
	for i, op := range Ops {
		assert.Equal(t, op, l0.Ops[i].Op)
		assert.Equal(t, want[op], l0.Ops[i].Cycles, op.String())
	}
	assert.Equal(t, int64(79872), l0.Cycles)
	assert.Equal(t, int64(12*79872), dense.Cycles) // no layer drops tokens at keep 1
	assert.Equal(t, 198, dense.Layers[11].TokensOut)

	// Density 0.5, keep 0.7. Layer 2 drops tokens after its attention at
	// 198 tokens: Q, K, V, W_O 3072 each (phi 0.5), Q·K^T 4096, row sums
	// 1664, A·V 4992 = 23040; N_out = ceil(0.7*197)+2 = 140 and the MLP
	// (768 neurons) runs on 9 row blocks: FC1 7680, FC2 expand
	// ceil(6*9/24) = 3 snapshots * 48 * 64 = 9216. 23040+7680+9216 = 39936.
	half := estimate(t, 16, 0.5, 0.7, nil)
	l2 := half.Layers[2]
	assert.True(t, l2.DropsTokens)
	assert.Equal(t, [2]int{198, 140}, [2]int{l2.TokensIn, l2.TokensOut})
	assert.Equal(t, int64(3072), l2.Op(OpQ).Cycles)
	assert.Equal(t, int64(7680), l2.Op(OpFC1).Cycles)
	assert.Equal(t, int64(9216), l2.Op(OpFC2).Cycles)
	assert.Equal(t, int64(39936), l2.Cycles)
	// Layer 3 at 140 tokens: Q, K, V, W_O expand ceil(6*9/24) = 3 snapshots,
	// 3*24*64*0.5 = 2304 each; Q·K^T 2*ceil(81/24)*4*64 = 2048; row sums
	// 1*2*9*32 = 576; A·V 2*ceil(36/24)*9*64 = 2304; FC1 7680, FC2 9216:
	// 4*2304 + 2048 + 576 + 2304 + 7680 + 9216 = 31040.
	assert.Equal(t, int64(31040), half.Layers[3].Cycles)
	tokens := []int{}
	for _, l := range half.Layers {
		tokens = append(tokens, l.TokensOut)
	}
	// 198 -> ceil(0.7*197)+2 = 140 -> ceil(0.7*139)+2 = 100 -> ceil(0.7*99)+2 = 72.
	assert.Equal(t, []int{198, 198, 140, 140, 140, 140, 100, 100, 100, 72, 72, 72}, tokens)
	assert.Equal(t, []int64{46080, 46080, 39936, 31040, 31040, 31040, 26432, 22208, 22208, 20672, 18880, 18880},
		layerCycles(half))
}

func layerCycles(e Estimation) []int64 {
	c := make([]int64, len(e.Layers))
	for i, l := range e.Layers {
		c[i] = l.Cycles
	}
	return c
}

// The totals were computed independently (a direct transcription of the
// paper's formulas in another language) and agree with the layer arithmetic above.
func TestEstimateDeiTSmallTotals(t *testing.T) {
	tests := []struct {
		b             int
		density, keep float64
		want          int64
	}{
		{16, 1, 1, 958464}, {16, 1, 0.7, 623296}, {16, 1, 0.5, 452352},
		{16, 0.5, 1, 552960}, {16, 0.5, 0.7, 354496}, {16, 0.5, 0.5, 257280},
		{32, 1, 1, 1065984}, {32, 1, 0.7, 907008}, {32, 1, 0.5, 819456},
		{32, 0.5, 1, 623616}, {32, 0.5, 0.7, 526080}, {32, 0.5, 0.5, 475392},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("b%d_d%v_k%v", tt.b, tt.density, tt.keep), func(t *testing.T) {
			est := estimate(t, tt.b, tt.density, tt.keep, nil)
			assert.Equal(t, tt.want, est.Cycles)
			var sum int64
			for _, op := range Ops {
				sum += est.OpCycles(op)
			}
			assert.Equal(t, est.Cycles, sum)
		})
	}
	// 958464 cycles at 300 MHz.
	assert.InDelta(t, 3194.88, Microseconds(958464, 300), 1e-9)
}

func TestEstimateRemovedHeads(t *testing.T) {
	heads := []int{6, 6, 4, 4, 5, 6, 3, 6, 6, 3, 6, 6}
	est := estimate(t, 16, 0.5, 0.7, heads)
	// Layer 2 keeps 4 heads: phi = ceil(384*64*6/256)*0.5 / ceil(384*64*4/256)
	// = 288/384 = 0.75. Q, K, V: sweep (tie) ceil(3*24*64*0.75) = 3456 each;
	// W_O (N = 256): expand 4 snapshots * 16 * 64 * 0.75 = 3072; Q·K^T
	// ceil(4/4)*8*4*64 = 2048; row sums 2*1*13*32 = 832; A·V 1*3*13*64 = 2496;
	// then the MLP of layer 2 above, 7680 + 9216:
	// 3*3456 + 2048 + 832 + 2496 + 3072 + 7680 + 9216 = 35712.
	l2 := est.Layers[2]
	assert.Equal(t, 4, l2.HeadsKept)
	assert.Equal(t, 0.75, l2.Op(OpQ).Phi)
	assert.Equal(t, Cost{Sweep, 3, 3456}, l2.Op(OpQ).Cost)
	assert.Equal(t, Cost{Expand, 4, 3072}, l2.Op(OpO).Cost)
	assert.Equal(t, int64(35712), l2.Cycles)
	assert.Equal(t, []int64{46080, 46080, 35712, 28576, 29660, 31040, 26272, 22208, 22208, 18784, 18880, 18880},
		layerCycles(est))
	assert.Equal(t, int64(344380), est.Cycles)
	assert.Equal(t, int64(533941), estimate(t, 32, 0.5, 0.7, heads).Cycles)

	// Density 0.5 cannot fit in 2 of 6 heads (phi would be 1.5).
	_, err := UniformPruning(deitSmall(t), 16, 0.5, 0.5, []int{6, 6, 2, 6, 6, 6, 6, 6, 6, 6, 6, 6})
	assert.EqualError(t, err, "estimate: layer 2: density 0.5 cannot fit in 2 of 6 heads (block density 1.5 > 1)")
}

func TestEstimateMonotone(t *testing.T) {
	cfg := deitSmall(t)
	run := func(g Geometry, b int, density, keep float64) int64 {
		layers, err := UniformPruning(cfg, b, density, density, nil)
		require.NoError(t, err)
		est, err := Estimate(EstimateInput{Model: cfg, Geometry: g, Block: b, Layers: layers, Keep: keep, TDLayers: []int{2, 6, 9}})
		require.NoError(t, err)
		return est.Cycles
	}
	densities := []float64{0.3, 0.5, 0.7, 0.9, 1}
	keeps := []float64{0.1, 0.3, 0.5, 0.7, 0.9, 1}
	for _, b := range []int{8, 16, 32, 64} {
		for i := 1; i < len(densities); i++ {
			assert.LessOrEqual(t, run(paperMPCA, b, densities[i-1], 0.7), run(paperMPCA, b, densities[i], 0.7),
				"b=%d density %v", b, densities[i])
		}
		for i := 1; i < len(keeps); i++ {
			assert.LessOrEqual(t, run(paperMPCA, b, 0.5, keeps[i-1]), run(paperMPCA, b, 0.5, keeps[i]),
				"b=%d keep %v", b, keeps[i])
		}
		// At a fixed density inside the kept heads, keeping a head never saves cycles.
		withHeads := func(heads int) int64 {
			layers := DensePruning(cfg)
			for i := range layers {
				layers[i] = LayerPruning{HeadsKept: heads, PhiQ: 0.8, PhiK: 0.8, PhiV: 0.8, PhiO: 0.8, Hidden: 768}
			}
			est, err := Estimate(EstimateInput{Model: cfg, Geometry: paperMPCA, Block: b, Layers: layers, Keep: 0.7})
			require.NoError(t, err)
			return est.Cycles
		}
		for heads := range cfg.Heads {
			assert.LessOrEqual(t, withHeads(heads), withHeads(heads+1), "b=%d heads %d", b, heads)
		}
		// A bigger machine is never slower.
		for _, bigger := range []Geometry{{T: 13, C: 2, H: 4, P: 8}, {T: 12, C: 3, H: 4, P: 8},
			{T: 12, C: 2, H: 5, P: 8}, {T: 12, C: 2, H: 4, P: 16}} {
			assert.LessOrEqual(t, run(bigger, b, 0.5, 0.7), run(paperMPCA, b, 0.5, 0.7), "b=%d %+v", b, bigger)
		}
	}
}

func TestMaskPruning(t *testing.T) {
	cfg := deitSmall(t)
	const b = 16
	nb, hb := cfg.Dim/b, cfg.HeadDim()/b // 24 block rows/columns, 4 per head
	p := &vit.Pruning{Block: b, Keep: 1, Layers: make([]vit.LayerMask, cfg.Depth)}
	// Layer 0: head 0 removed from every matrix; the other heads keep half
	// their Q blocks (block rows 0..11) and every K, V and Proj block.
	q, k, v, proj := make([]bool, nb*nb), make([]bool, nb*nb), make([]bool, nb*nb), make([]bool, nb*nb)
	for r := range nb {
		for c := hb; c < nb; c++ {
			q[r*nb+c] = r < nb/2
			k[r*nb+c], v[r*nb+c], proj[c*nb+r] = true, true, true
		}
	}
	neurons := make([]bool, cfg.MLPHidden)
	for i := range 700 {
		neurons[i] = true
	}
	p.Layers[0] = vit.LayerMask{Q: q, K: k, V: v, Proj: proj, Neurons: neurons}
	layers, err := MaskPruning(cfg, p)
	require.NoError(t, err)
	assert.Equal(t, LayerPruning{HeadsKept: 5, PhiQ: 0.5, PhiK: 1, PhiV: 1, PhiO: 1, Hidden: 700}, layers[0])
	assert.Equal(t, DensePruning(cfg)[1], layers[1]) // nil masks are dense

	dense, err := MaskPruning(cfg, nil)
	require.NoError(t, err)
	assert.Equal(t, DensePruning(cfg), dense)

	p.Layers[0].Q = q[:10]
	_, err = MaskPruning(cfg, p)
	assert.EqualError(t, err, "estimate: layer 0: block mask of 10 entries, want 576")
}

func TestEstimateBadInput(t *testing.T) {
	cfg := deitSmall(t)
	good := EstimateInput{Model: cfg, Geometry: paperMPCA, Block: 16, Keep: 0.7, TDLayers: []int{2, 6, 9}}
	_, err := Estimate(good)
	require.NoError(t, err)
	tests := []struct {
		name string
		edit func(*EstimateInput)
		want string
	}{
		{"block not dividing head", func(in *EstimateInput) { in.Block = 24 }, "estimate: block size 24 does not divide the head width 64"},
		{"zero block", func(in *EstimateInput) { in.Block = 0 }, "estimate: block size 0 does not divide the head width 64"},
		{"keep 0", func(in *EstimateInput) { in.Keep = 0 }, "estimate: keep rate 0 is outside (0, 1]"},
		{"keep above 1", func(in *EstimateInput) { in.Keep = 1.5 }, "estimate: keep rate 1.5 is outside (0, 1]"},
		{"TD out of range", func(in *EstimateInput) { in.TDLayers = []int{2, 12} }, "estimate: token-dropping layer 12 is outside 0..11"},
		{"TD twice", func(in *EstimateInput) { in.TDLayers = []int{2, 2} }, "estimate: token-dropping layer 2 listed twice"},
		{"zero geometry", func(in *EstimateInput) { in.Geometry.H = 0 }, "estimate: geometry t=12 c=2 h=0 p=8 must be positive"},
		{"layers short", func(in *EstimateInput) { in.Layers = DensePruning(cfg)[:3] }, "estimate: pruning for 3 layers, model has 12"},
		{"too many heads", func(in *EstimateInput) { in.Layers = DensePruning(cfg); in.Layers[4].HeadsKept = 7 },
			"estimate: layer 4 keeps 7 heads, want 0..6"},
		{"phi above 1", func(in *EstimateInput) { in.Layers = DensePruning(cfg); in.Layers[1].PhiV = 1.2 },
			"estimate: layer 1: block density 1.2 is outside [0, 1]"},
		{"too many neurons", func(in *EstimateInput) { in.Layers = DensePruning(cfg); in.Layers[0].Hidden = 2000 },
			"estimate: layer 0 keeps 2000 MLP neurons, want 0..1536"},
		{"empty model", func(in *EstimateInput) { in.Model = vit.Config{Name: "void"} },
			`estimate: model "void": dim 0, 0 heads, depth 0, MLP width 0 do not make a ViT`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := good
			tt.edit(&in)
			_, err := Estimate(in)
			assert.EqualError(t, err, tt.want)
		})
	}
	_, err = UniformPruning(cfg, 16, 0, 0.5, nil)
	assert.EqualError(t, err, "estimate: density 0 is outside (0, 1]")
	_, err = UniformPruning(cfg, 16, 0.5, 1.1, nil)
	assert.EqualError(t, err, "estimate: MLP density 1.1 is outside (0, 1]")
}

func TestKeptHeadDensity(t *testing.T) {
	cfg := deitSmall(t)
	assert.Equal(t, 0.5, KeptHeadDensity(cfg, 16, 0.5, 6))
	assert.Equal(t, 0.6, KeptHeadDensity(cfg, 16, 0.5, 5)) // 288/480
	assert.Equal(t, 1.0, KeptHeadDensity(cfg, 32, 0.5, 3)) // 72/72
	assert.Zero(t, KeptHeadDensity(cfg, 16, 0.5, 0))
}

func BenchmarkEstimateDeiTSmall(b *testing.B) {
	cfg := deitSmall(b)
	layers, err := UniformPruning(cfg, 16, 0.5, 0.5, nil)
	require.NoError(b, err)
	in := EstimateInput{Model: cfg, Geometry: paperMPCA, Block: 16, Layers: layers, Keep: 0.7, TDLayers: []int{2, 6, 9}}
	for b.Loop() {
		if _, err := Estimate(in); err != nil {
			b.Fatal(err)
		}
	}
}
