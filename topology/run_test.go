package topology

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	goruntime "runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	vrt "vitflow/runtime"

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

func preset(t testing.TB, name string, fidelity Fidelity) Description {
	t.Helper()
	d, err := Preset(name)
	require.NoError(t, err)
	d.Fidelity = fidelity
	return d
}

// pruned returns a one-shot magnitude pruning with token dropping.
func pruned(t testing.TB, w *vit.Weights, b int, density, keep float64, td []int) *vit.Pruning {
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
			checkPath(t, res)
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
			checkPath(t, res)
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
			t.Logf("simulated %d, estimated %d (%+.3f%%); %s", res.Cycles, want, 100*rel, res.Path.Bottleneck)
			checkLogits(t, w, p, res, imgs)
		})
	}
}

// TestSimulateU250Balancing runs a pruned DeiT-S (one-shot magnitude masks)
// on u250 under the static and balanced policies, and the dense model under
// the balanced one: the logits match the reference, real masks make the
// static PEs unequal, and balancing recovers part of it.
func TestSimulateU250Balancing(t *testing.T) {
	cfg, err := vit.Preset("deit-small")
	require.NoError(t, err)
	w := vit.RandomWeights(cfg, 5)
	imgs := randomImages(cfg, 1, 6)
	p := pruned(t, w, 16, 0.5, 0.7, []int{2, 6, 9})
	run := func(p *vit.Pruning, policy Policy) *SimResult {
		d := preset(t, "u250", FidelityDetailed)
		d.Balance = policy
		res, err := Simulate(context.Background(), SimInput{Weights: w, Pruning: p, Desc: d, Images: imgs})
		require.NoError(t, err)
		require.Equal(t, policy, res.Policy)
		checkPath(t, res)
		checkLogits(t, w, p, res, imgs)
		return res
	}
	static, balanced := run(p, PolicyStatic), run(p, PolicyBalanced)
	run(&vit.Pruning{Block: 16, Keep: 1}, PolicyBalanced)

	var staticWork, balancedWork int64
	for l, sl := range static.Images[0].Layers {
		bl := balanced.Images[0].Layers[l]
		for k, so := range sl.Ops {
			bo := bl.Ops[k]
			require.Equal(t, so.Loads, bo.Loads, "per-policy loads do not depend on the policy that ran")
			st, ba := so.Loads[1], so.Loads[2]
			require.Equal(t, PolicyStatic, st.Policy)
			require.Equal(t, PolicyBalanced, ba.Policy)
			assert.Equal(t, st, so.Load)
			assert.Equal(t, ba, bo.Load)
			assert.LessOrEqual(t, ba.Imbalance(), st.Imbalance(), "layer %d %s", l, so.Op)
			assert.InDelta(t, st.Mean, ba.Mean, 1e-9, "the same work, spread differently")
			switch so.Op {
			case OpQ, OpK, OpV, OpO:
				// Masked matrices: the static dealing is uneven and balancing helps.
				assert.Greater(t, st.Imbalance(), 1.0, "layer %d %s", l, so.Op)
				assert.Less(t, ba.Imbalance(), st.Imbalance(), "layer %d %s", l, so.Op)
			}
			assert.LessOrEqual(t, so.Fluid, so.Busiest, "layer %d %s: no PE beats the fluid bound", l, so.Op)
			assert.LessOrEqual(t, bo.Fluid, bo.Busiest, "layer %d %s: no PE beats the fluid bound", l, so.Op)
			staticWork += so.Busiest
			balancedWork += bo.Busiest
		}
	}
	assert.Less(t, balancedWork, staticWork)
	assert.Less(t, balanced.Cycles, static.Cycles)
	above := func(r *SimResult) int64 { return r.Path.Cycles(CauseMPCAAbove) }
	assert.Positive(t, above(static), "static PEs wait for the busiest")
	assert.Less(t, above(balanced), above(static))
	t.Logf("static %d cycles (MPCA above its fluid bound %d), balanced %d (%d), estimator %d",
		static.Cycles, above(static), balanced.Cycles, above(balanced), static.Estimate.Cycles)
}

// TestSimulateMemoryBound starves the CHMs of weights with a tiny memory
// bandwidth: the loaders are busy nearly all the time, the CHMs wait on
// their weight FIFOs more than they compute, and memory is the main cause
// of the gap to the estimator.
func TestSimulateMemoryBound(t *testing.T) {
	cfg, err := vit.Preset("mnist-tiny")
	require.NoError(t, err)
	w := vit.RandomWeights(cfg, 1)
	p := pruned(t, w, 16, 0.5, 0.7, []int{1, 2})
	imgs := randomImages(cfg, 2, 8)
	d := preset(t, "small", FidelityDetailed)
	normal, err := Simulate(context.Background(), SimInput{Weights: w, Pruning: p, Desc: d, Images: imgs})
	require.NoError(t, err)
	d.Memory.BandwidthBytesPerCycle = 0.5
	res, err := Simulate(context.Background(), SimInput{Weights: w, Pruning: p, Desc: d, Images: imgs})
	require.NoError(t, err)
	checkLogits(t, w, p, res, imgs)

	assert.Greater(t, res.Cycles, 10*normal.Cycles)
	assert.Equal(t, CauseMemory, res.Path.First().Cause)
	assert.Greater(t, res.Path.Cycles(CauseMemory), res.Cycles/2, "most of the critical path waits for memory")
	loader := res.Stats.Actor("loader0")
	require.NotNil(t, loader)
	assert.Greater(t, loader.Utilisation, 0.9)
	assert.Less(t, loader.TotalBlocked(), res.Cycles/100, "the loader never waits for FIFO space")
	// At the preset's bandwidth the loader runs ahead and waits for space instead.
	fast := normal.Stats.Actor("loader0")
	require.NotNil(t, fast)
	assert.Greater(t, fast.TotalBlocked(), fast.Busy)
	mpca := res.Stats.Actor("mpca")
	require.NotNil(t, mpca)
	var weights int64
	for _, s := range mpca.Starved {
		if strings.HasPrefix(s.FIFO, "weights->chm") {
			weights += s.Cycles
		}
	}
	assert.Greater(t, weights, mpca.Busy, "the MPCA waits for weights more than it computes")
}

// TestSimulateDeterministic repeats a run with memory stalls and
// backpressure under GOMAXPROCS 1, 2 and 8: every cycle, logit and statistic is
// the same.
func TestSimulateDeterministic(t *testing.T) {
	cfg, err := vit.Preset("mnist-tiny")
	require.NoError(t, err)
	w := vit.RandomWeights(cfg, 3)
	p := pruned(t, w, 16, 0.6, 0.5, []int{0, 2})
	imgs := randomImages(cfg, 3, 9)
	d := preset(t, "small", FidelityDetailed)
	d.Memory.BandwidthBytesPerCycle = 24
	run := func(procs int) *SimResult {
		defer goruntime.GOMAXPROCS(goruntime.GOMAXPROCS(procs))
		res, err := Simulate(context.Background(), SimInput{Weights: w, Pruning: p, Desc: d, Images: imgs})
		require.NoError(t, err)
		return res
	}
	first := run(1)
	require.Positive(t, first.Path.Cycles(CauseMemory), "the run should have memory stalls")
	for _, procs := range []int{2, 8, 1, 2} {
		assert.Equal(t, first, run(procs), "GOMAXPROCS=%d", procs)
	}

	// One accelerator, built once, run twice at the same time.
	acc, err := NewAccelerator(w, p, 0, d)
	require.NoError(t, err)
	assert.Equal(t, first.Estimate, acc.Estimate(), "the estimate is known before any run")
	var results [2]*SimResult
	var errs [2]error
	var wg sync.WaitGroup
	for i := range results {
		wg.Go(func() { results[i], errs[i] = acc.Run(context.Background(), imgs) })
	}
	wg.Wait()
	for i := range results {
		require.NoError(t, errs[i])
		assert.Equal(t, first, results[i], "concurrent run %d", i)
	}
}

// TestSimulateUnitFailure makes one unit fail or panic: the run fails with
// an error naming it, and no goroutine is left behind (TestMain's goleak).
func TestSimulateUnitFailure(t *testing.T) {
	cfg, err := vit.Preset("mnist-tiny")
	require.NoError(t, err)
	w := vit.RandomWeights(cfg, 1)
	in := SimInput{Weights: w, Pruning: pruned(t, w, 16, 0.5, 0.7, []int{1}), Desc: preset(t, "small", FidelityDetailed),
		Images: randomImages(cfg, 2, 1)}
	for _, tc := range []struct {
		unit  string
		fail  func() error
		wants string
	}{
		{"gelu", func() error { return errors.New("stuck at zero") }, "stuck at zero"},
		{"mpca", func() error { panic("bad PE") }, "bad PE"},
		{"loader0", func() error { return errors.New("ECC error") }, "ECC error"},
	} {
		t.Run(tc.unit, func(t *testing.T) {
			_, err := simulate(context.Background(), in, func(name string, body func(*vrt.Ctx) error) func(*vrt.Ctx) error {
				if name != tc.unit {
					return body
				}
				return func(*vrt.Ctx) error { return tc.fail() }
			})
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.unit)
			assert.Contains(t, err.Error(), tc.wants)
		})
	}
}

func TestSimulateCancel(t *testing.T) {
	cfg, err := vit.Preset("mnist-tiny")
	require.NoError(t, err)
	w := vit.RandomWeights(cfg, 1)
	in := SimInput{Weights: w, Desc: preset(t, "small", FidelityDetailed), Images: randomImages(cfg, 3, 1)}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = Simulate(ctx, in)
	assert.ErrorIs(t, err, context.Canceled)

	// Cancelled while running: the softmax unit cancels on its first job.
	ctx, cancel = context.WithCancel(context.Background())
	defer cancel()
	_, err = simulate(ctx, in, func(name string, body func(*vrt.Ctx) error) func(*vrt.Ctx) error {
		if name != "softmax" {
			return body
		}
		return func(c *vrt.Ctx) error {
			cancel()
			return body(c)
		}
	})
	require.Error(t, err)
	assert.True(t, errors.Is(err, context.Canceled) || errors.Is(err, vrt.ErrCancelled), "%v", err)
}

func TestSimulateBadInput(t *testing.T) {
	cfg, err := vit.Preset("mnist-tiny")
	require.NoError(t, err)
	w := vit.RandomWeights(cfg, 1)
	good := func() SimInput {
		return SimInput{Weights: w, Desc: preset(t, "small", FidelityDetailed), Images: randomImages(cfg, 1, 1)}
	}
	nan := randomImages(cfg, 1, 1)
	nan[0][5] = float32(math.NaN())
	for _, tc := range []struct {
		name  string
		edit  func(in *SimInput)
		wants string
	}{
		{"no weights", func(in *SimInput) { in.Weights = nil }, "no weights"},
		{"block does not divide head", func(in *SimInput) { in.DenseBlock = 32 }, "block size 32 does not divide"},
		{"pruning block does not divide head", func(in *SimInput) {
			p := pruned(t, w, 16, 0.5, 1, nil)
			p.Block = 32
			in.Pruning = p
		}, "block size 32 does not divide"},
		{"fifo depth 0", func(in *SimInput) { in.Desc.FIFO.WeightDepth = 0 }, "fifo.weight_depth"},
		{"keep 0", func(in *SimInput) { in.Pruning = &vit.Pruning{Keep: 0} }, "keep rate"},
		{"keep above 1", func(in *SimInput) { in.Pruning = &vit.Pruning{Keep: 1.5} }, "keep rate"},
		{"TD layer out of range", func(in *SimInput) { in.Pruning = &vit.Pruning{Keep: 0.5, TDLayers: []int{4}} }, "token-dropping layer 4"},
		{"no images", func(in *SimInput) { in.Images = nil }, "no images"},
		{"image size", func(in *SimInput) { in.Images = [][]float32{make([]float32, 10)} }, "image 0 has 10 values"},
		{"NaN pixel", func(in *SimInput) { in.Images = nan }, "image 0: value 5 is NaN"},
		{"negative trace cap", func(in *SimInput) { in.Trace.MaxEvents = -1 }, "max trace events"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := good()
			tc.edit(&in)
			_, err := Simulate(context.Background(), in)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.wants)
			assert.NotContains(t, err.Error(), "\n")
		})
	}
}

func TestSimulateTrace(t *testing.T) {
	cfg, err := vit.Preset("mnist-tiny")
	require.NoError(t, err)
	w := vit.RandomWeights(cfg, 1)
	var buf bytes.Buffer
	_, err = Simulate(context.Background(), SimInput{Weights: w, Desc: preset(t, "small", FidelityDetailed),
		Images: randomImages(cfg, 1, 1), Trace: TraceOptions{W: &buf, MaxEvents: 5000}})
	require.NoError(t, err)
	var trace any
	require.NoError(t, json.Unmarshal(buf.Bytes(), &trace), "the trace is JSON")
	assert.Contains(t, buf.String(), `"mpca: dispatch front"`)
}

// TestSimulateNonFinite: weights that overflow float32 fail the run with
// the unit and the layer where the first NaN or infinity appears.
func TestSimulateNonFinite(t *testing.T) {
	cfg, err := vit.Preset("mnist-tiny")
	require.NoError(t, err)
	w := vit.RandomWeights(cfg, 1)
	for i := range w.Layers[1].FC1W {
		w.Layers[1].FC1W[i] = 3e38
	}
	_, err = Simulate(context.Background(), SimInput{Weights: w, Desc: preset(t, "small", FidelityDetailed), Images: randomImages(cfg, 1, 1)})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "not finite")
	assert.Contains(t, err.Error(), "layer 1")
	assert.NotContains(t, err.Error(), "\n")
}

// TestNewAcceleratorNonFiniteWeights: the build checks the weights the
// accelerator keeps, naming the tensor and index as vit's checks do, and
// ignores a NaN in a block or neuron that pruning removed (no unit ever
// reads it: the run is finite and matches the reference).
func TestNewAcceleratorNonFiniteWeights(t *testing.T) {
	cfg, err := vit.Preset("mnist-tiny")
	require.NoError(t, err)
	d := cfg.Dim
	base := vit.RandomWeights(cfg, 1)
	p := pruned(t, base, 16, 0.5, 1, nil)
	p.Layers[1].Neurons = make([]bool, cfg.MLPHidden)
	for j := range p.Layers[1].Neurons {
		p.Layers[1].Neurons[j] = j != 3
	}
	// A block of layer 1's Q that the mask removes, and one it keeps.
	nb := d / 16
	dropped, kept := -1, -1
	for i, k := range p.Layers[1].Q {
		if !k && dropped < 0 {
			dropped = i
		}
		if k && kept < 0 {
			kept = i
		}
	}
	require.True(t, dropped >= 0 && kept >= 0)
	at := func(block int) int { return (block/nb*16+2)*d + block%nb*16 + 5 } // row 2, column 5 of the block
	nan, inf := float32(math.NaN()), float32(math.Inf(-1))
	for _, tc := range []struct {
		name  string
		edit  func(w *vit.Weights)
		wants string // "" = builds
	}{
		{"kept q weight", func(w *vit.Weights) { w.Layers[1].QW[at(kept)] = nan },
			fmt.Sprintf("weights mnist-tiny: tensor layers.1.q.weight: NaN at index %d", at(kept))},
		{"kept fc2 weight", func(w *vit.Weights) { w.Layers[1].FC2W[4*d+7] = inf },
			fmt.Sprintf("tensor layers.1.fc2.weight: infinity at index %d", 4*d+7)},
		{"classifier", func(w *vit.Weights) { w.HeadW[9] = nan }, "tensor head.weight: NaN at index 9"},
		{"kept bias", func(w *vit.Weights) { w.Layers[1].QB[0] = nan }, "tensor layers.1.q.bias: NaN at index 0"},
		{"pruned q block", func(w *vit.Weights) { w.Layers[1].QW[at(dropped)] = nan }, ""},
		{"pruned neuron", func(w *vit.Weights) { w.Layers[1].FC1W[5*cfg.MLPHidden+3], w.Layers[1].FC2W[3*d+1] = nan, inf }, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := vit.RandomWeights(cfg, 1)
			tc.edit(w)
			acc, err := NewAccelerator(w, p, 0, preset(t, "small", FidelityDetailed))
			if tc.wants != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tc.wants)
				return
			}
			require.NoError(t, err)
			imgs := randomImages(cfg, 1, 3)
			res, err := acc.Run(context.Background(), imgs)
			require.NoError(t, err)
			// The reference zeroes the pruned weights the same way.
			clean := vit.RandomWeights(cfg, 1)
			checkLogits(t, clean, p, res, imgs)
		})
	}
}
