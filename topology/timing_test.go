package topology

import (
	"bytes"
	"context"
	"fmt"
	"math"
	goruntime "runtime"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"vitflow/vit"
)

// withoutNumerics is r less what only a full run computes: the logits,
// the predictions, the kept tokens' positions and the flag that says there
// are none. Everything else of a timing-only run must equal a full run's.
func withoutNumerics(r *SimResult) *SimResult {
	c := *r
	c.TimingOnly = false
	c.Images = slices.Clone(r.Images)
	for i := range c.Images {
		img := &c.Images[i]
		img.Logits, img.Top1 = nil, 0
		img.Layers = slices.Clone(img.Layers)
		for l := range img.Layers {
			img.Layers[l].Kept = nil
		}
	}
	return &c
}

// firstPositions is 1..n, the positions a timing-only run keeps.
func firstPositions(n int) []int {
	p := make([]int, n)
	for i := range p {
		p[i] = i + 1
	}
	return p
}

// checkTimingOnly compares a timing-only run with the full run of the same
// model, pruning and accelerator: equal in everything but the numerics,
// and the timing-only one saying it has none.
func checkTimingOnly(t *testing.T, full, timing *SimResult) {
	t.Helper()
	require.False(t, full.TimingOnly)
	require.True(t, timing.TimingOnly)
	require.Len(t, timing.Images, len(full.Images))
	for i, img := range timing.Images {
		assert.Nil(t, img.Logits, "image %d", i)
		assert.Equal(t, -1, img.Top1, "image %d", i)
		for l, lr := range img.Layers {
			kept := full.Images[i].Layers[l].Kept
			if kept == nil {
				assert.Nil(t, lr.Kept, "image %d layer %d", i, l)
				continue
			}
			assert.Equal(t, firstPositions(len(kept)), lr.Kept, "image %d layer %d: as many tokens kept", i, l)
		}
	}
	assert.Equal(t, withoutNumerics(full), withoutNumerics(timing))
}

// timingCase is one point of the grid: a model, a pruning and an accelerator.
type timingCase struct {
	model   string
	block   int
	density float64 // 1: no masks
	keep    float64
	td      []int
	heads   map[int][]int // layer -> heads removed
	fid     Fidelity
	policy  Policy
	fifo    string // a change to the preset's FIFOs (timingFIFOs)
	images  int
}

func (c timingCase) String() string {
	s := fmt.Sprintf("%s b=%d density=%v keep=%v td=%v %s %s fifo=%s images=%d", c.model, c.block, c.density, c.keep, c.td,
		c.fid, c.policy, c.fifo, c.images)
	if c.heads != nil {
		s += fmt.Sprintf(" heads removed %v", c.heads)
	}
	return s
}

// timingFIFOs are the FIFO changes the grid makes to a preset.
var timingFIFOs = map[string]func(d *Description){
	"preset": func(*Description) {},
	// Deeper links into and out of the MPCA take waits away.
	"deep": func(d *Description) { d.FIFO.ActivationDepth, d.FIFO.OutputDepth = 8, 8 },
	// A one-block weight FIFO behind a slow channel stalls the CHMs.
	"starved": func(d *Description) {
		d.FIFO.WeightDepth = 1
		d.Memory.BandwidthBytesPerCycle /= 4
	},
}

// TestTimingOnlyMatchesFullRun runs a grid of models, block sizes,
// densities, keep rates and token dropping layers, fidelities, policies,
// FIFOs and batch sizes twice, with numerics and timing-only (with and
// without weights), and requires the same result in everything but the
// logits, predictions and kept positions: cycles, per-image and per-op
// times, statistics and the critical path's attribution.
func TestTimingOnlyMatchesFullRun(t *testing.T) {
	var cases []timingCase
	tokens := []struct {
		keep float64
		td   []int
	}{{1, nil}, {0.7, []int{1}}, {0.5, []int{0, 2}}}
	fifos := []string{"preset", "deep", "starved"}
	for _, b := range []int{8, 16} {
		for _, density := range []float64{1, 0.5, 0.3} {
			for _, tk := range tokens {
				for _, run := range []struct {
					fid    Fidelity
					policy Policy
				}{{FidelityIdeal, PolicyIdeal}, {FidelityDetailed, PolicyIdeal}, {FidelityDetailed, PolicyStatic}, {FidelityDetailed, PolicyBalanced}} {
					n := len(cases)
					cases = append(cases, timingCase{model: "mnist-tiny", block: b, density: density, keep: tk.keep, td: tk.td,
						fid: run.fid, policy: run.policy, fifo: fifos[n%len(fifos)], images: 1 + n%2})
				}
			}
		}
	}
	cases = append(cases,
		// Keeping all but one patch still fuses that one.
		timingCase{model: "mnist-tiny", block: 16, density: 0.5, keep: 0.97, td: []int{1}, fid: FidelityDetailed, policy: PolicyStatic, fifo: "preset", images: 2},
		// A layer without heads, in one that drops tokens and in one that does not.
		timingCase{model: "mnist-tiny", block: 16, density: 0.3, keep: 0.7, td: []int{1}, heads: map[int][]int{1: {0, 2}, 3: {0, 1, 2, 3}},
			fid: FidelityDetailed, policy: PolicyBalanced, fifo: "starved", images: 2},
		timingCase{model: "mnist-tiny", block: 16, density: 0.3, keep: 0.7, td: []int{1}, heads: map[int][]int{3: {0, 1, 2, 3}},
			fid: FidelityIdeal, policy: PolicyIdeal, fifo: "preset", images: 1},
		timingCase{model: "deit-small", block: 16, density: 0.5, keep: 0.7, td: []int{2, 6, 9}, fid: FidelityDetailed,
			policy: PolicyBalanced, fifo: "preset", images: 1},
		timingCase{model: "deit-small", block: 32, density: 0.25, keep: 0.5, td: []int{2, 6, 9}, heads: map[int][]int{1: {4}},
			fid: FidelityIdeal, policy: PolicyIdeal, fifo: "preset", images: 1},
	)
	weights := map[string]*vit.Weights{}
	for i, tc := range cases {
		t.Run(tc.String(), func(t *testing.T) {
			if tc.model == "deit-small" && testing.Short() {
				t.Skip("DeiT-S is slow: not in -short")
			}
			if weights[tc.model] == nil {
				cfg, err := vit.Preset(tc.model)
				require.NoError(t, err)
				weights[tc.model] = vit.RandomWeights(cfg, 11)
			}
			w := weights[tc.model]
			cfg := w.Config
			p := &vit.Pruning{Block: tc.block, Keep: tc.keep, TDLayers: tc.td}
			if tc.density < 1 {
				p = pruned(t, w, tc.block, tc.density, tc.keep, tc.td)
			}
			for l, heads := range tc.heads {
				withoutHeads(cfg, p, l, heads...)
			}
			d := preset(t, "small", tc.fid)
			if tc.model == "deit-small" {
				d = preset(t, "u250", tc.fid)
			}
			d.Balance = tc.policy
			timingFIFOs[tc.fifo](&d)
			imgs := randomImages(cfg, tc.images, uint64(i))
			full, err := Simulate(context.Background(), SimInput{Weights: w, Pruning: p, DenseBlock: tc.block, Desc: d, Images: imgs})
			require.NoError(t, err)
			// Half the cases go through Simulate (the weights give the
			// shape), half through the accelerator built without weights.
			var timing *SimResult
			if i%2 == 0 {
				timing, err = Simulate(context.Background(), SimInput{Weights: w, Pruning: p, DenseBlock: tc.block, Desc: d,
					Images: make([][]float32, tc.images), TimingOnly: true})
			} else {
				var acc *Accelerator
				acc, err = NewTimingAccelerator(cfg, p, tc.block, d)
				require.NoError(t, err)
				assert.Equal(t, full.Estimate, acc.Estimate())
				timing, err = acc.Run(context.Background(), make([][]float32, tc.images))
			}
			require.NoError(t, err)
			checkTimingOnly(t, full, timing)
		})
	}
}

// TestTimingOnlyKeepsCountNotPositions shows the exactness rule's
// boundary. Which tokens a layer keeps, and every value, change with the
// weights and the images; the cycles do not, so a timing-only run, which
// keeps the first positions instead, times the run exactly. How many tokens
// a layer keeps and which blocks the masks keep do change the cycles: those
// a timing-only run has.
func TestTimingOnlyKeepsCountNotPositions(t *testing.T) {
	cfg, err := vit.Preset("mnist-tiny")
	require.NoError(t, err)
	w := vit.RandomWeights(cfg, 1)
	other := vit.RandomWeights(cfg, 2) // other values under the same masks
	p := pruned(t, w, 16, 0.5, 0.7, []int{1, 2})
	d := preset(t, "small", FidelityDetailed)
	d.Balance = PolicyStatic
	run := func(w *vit.Weights, p *vit.Pruning, imgs [][]float32, timing bool) *SimResult {
		t.Helper()
		res, err := Simulate(context.Background(), SimInput{Weights: w, Pruning: p, Desc: d, Images: imgs, TimingOnly: timing})
		require.NoError(t, err)
		return res
	}
	imgs := randomImages(cfg, 1, 5)
	base := run(w, p, imgs, false)
	timing := run(w, p, make([][]float32, 1), true)
	checkTimingOnly(t, base, timing)
	kept := func(r *SimResult) []int { return r.Images[0].Layers[1].Kept }
	require.Len(t, kept(timing), len(kept(base)))
	assert.NotEqual(t, kept(base), kept(timing), "a timing-only run keeps other tokens, as many")

	for name, r := range map[string]*SimResult{
		"other images":  run(w, p, randomImages(cfg, 1, 6), false),
		"other weights": run(other, p, imgs, false),
	} {
		assert.NotEqual(t, kept(base), kept(r), "%s: other tokens kept", name)
		assert.NotEqual(t, base.Images[0].Logits, r.Images[0].Logits, name)
		assert.Equal(t, withoutNumerics(base), withoutNumerics(r), "%s: the same timing", name)
	}

	// What the timing does depend on: how many tokens are kept, and which
	// blocks the masks keep.
	fewer := *p
	fewer.Keep = 0.5
	assert.NotEqual(t, base.Cycles, run(w, &fewer, imgs, false).Cycles, "fewer tokens kept")
	masks := pruned(t, w, 16, 0.5, 0.7, []int{1, 2})
	withoutHeads(cfg, masks, 0, 1)
	assert.NotEqual(t, base.Cycles, run(w, masks, imgs, false).Cycles, "one head fewer")
}

// TestTimingOnlyTrace: a timing-only run's trace is the full run's, byte
// for byte (it is drawn from the units' records, which hold times and
// counts), and it is deterministic whatever GOMAXPROCS.
func TestTimingOnlyTrace(t *testing.T) {
	cfg, err := vit.Preset("mnist-tiny")
	require.NoError(t, err)
	w := vit.RandomWeights(cfg, 3)
	p := pruned(t, w, 16, 0.6, 0.5, []int{0, 2})
	d := preset(t, "small", FidelityDetailed)
	d.Memory.BandwidthBytesPerCycle = 24
	full, err := NewAccelerator(w, p, 0, d)
	require.NoError(t, err)
	timing, err := NewTimingAccelerator(cfg, p, 0, d)
	require.NoError(t, err)
	var fullTrace, timingTrace bytes.Buffer
	want, err := full.RunTraced(context.Background(), randomImages(cfg, 2, 9), TraceOptions{W: &fullTrace})
	require.NoError(t, err)
	got, err := timing.RunTraced(context.Background(), make([][]float32, 2), TraceOptions{W: &timingTrace})
	require.NoError(t, err)
	checkTimingOnly(t, want, got)
	assert.Equal(t, fullTrace.String(), timingTrace.String())
	var runs []*SimResult
	for _, procs := range []int{1, 2} {
		func() {
			defer goruntime.GOMAXPROCS(goruntime.GOMAXPROCS(procs))
			res, err := timing.Run(context.Background(), make([][]float32, 2))
			require.NoError(t, err)
			runs = append(runs, res)
		}()
	}
	assert.Equal(t, runs[0], runs[1], "GOMAXPROCS 1 and 2")
	assert.Equal(t, got.Cycles, runs[0].Cycles)
}

// TestTimingOnlyBadInput: a timing-only build and run check what they
// read, the shape, the masks, the description and the number of images,
// with one-line errors, and ignore pixel values they never read.
func TestTimingOnlyBadInput(t *testing.T) {
	cfg, err := vit.Preset("mnist-tiny")
	require.NoError(t, err)
	d := preset(t, "small", FidelityDetailed)
	for _, tc := range []struct {
		name  string
		build func() (*Accelerator, error)
		wants string
	}{
		{"no shape", func() (*Accelerator, error) { return NewTimingAccelerator(vit.Config{Name: "none"}, nil, 0, d) }, "model none"},
		{"keep 0", func() (*Accelerator, error) { return NewTimingAccelerator(cfg, &vit.Pruning{Keep: 0}, 0, d) }, "keep rate"},
		{"block", func() (*Accelerator, error) { return NewTimingAccelerator(cfg, nil, 32, d) }, "block size 32 does not divide"},
		{"no weights for Simulate", func() (*Accelerator, error) {
			_, err := Simulate(context.Background(), SimInput{Desc: d, Images: make([][]float32, 1), TimingOnly: true})
			return nil, err
		}, "no weights to take the model's shape from"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.build()
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.wants)
			assert.NotContains(t, err.Error(), "\n")
		})
	}
	acc, err := NewTimingAccelerator(cfg, nil, 0, d)
	require.NoError(t, err)
	_, err = acc.Run(context.Background(), nil)
	assert.ErrorContains(t, err, "no images")
	_, err = acc.Run(context.Background(), [][]float32{nil, make([]float32, 3)})
	assert.ErrorContains(t, err, "image 1 has 3 values")
	// Images of the right size are taken and not read: a NaN is no error.
	img := randomImages(cfg, 1, 1)[0]
	img[0] = float32(math.NaN())
	res, err := acc.Run(context.Background(), [][]float32{nil, img})
	require.NoError(t, err)
	assert.True(t, res.TimingOnly)
	assert.Len(t, res.Images, 2)
}
