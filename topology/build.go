package topology

import (
	"errors"
	"fmt"
	"math"
	goruntime "runtime"
	"strings"

	"golang.org/x/sync/errgroup"

	"vitflow/actors"
	"vitflow/kernels"
	"vitflow/vit"
)

// maxSimImages bounds a batch so that a run's records stay small.
const maxSimImages = 1 << 16

// Accelerator is a model built onto an accelerator description: its weights
// packed to the non-zero blocks the CHMs stream, the controller's plan
// (the mapping of every op and the blocks of every PE) and program (the
// order in which the MPCA takes the snapshots of the ops), and the
// estimator's view of the same model, which no unit ever sees. Building
// packs the kept weights straight from the dense ones and plans (some tens
// of milliseconds for DeiT-S); Run
// then simulates any number of batches, each on a fresh graph of units. An
// Accelerator is read-only once built, so concurrent Runs are safe. One
// built by NewTimingAccelerator has the blocks' pattern and no weights,
// and its runs are timing-only.
type Accelerator struct {
	desc     Description
	config   actors.Config
	model    *actors.Model
	plan     *actors.Plan
	program  *actors.Program
	block    int
	policy   Policy
	estimate Estimation
	name     string // the model's name, for errors
	want     int    // values per image
}

// blockFor returns the tile side for a model pruned by p: the pruning's,
// else denseBlock or a default.
func blockFor(cfg vit.Config, p *vit.Pruning, denseBlock int) int {
	if p != nil && p.Layers != nil {
		return p.Block
	}
	if denseBlock != 0 {
		return denseBlock
	}
	if cfg.HeadDim()%16 != 0 {
		return cfg.HeadDim()
	}
	return 16
}

// NewAccelerator builds the model w pruned by p (nil = dense) onto the
// accelerator d. denseBlock is the tile side when p has no block masks (0:
// 16, or the head width if 16 does not divide it). Every error names what
// is wrong. Of the layers' weight matrices only the weights the pruning
// keeps are read and checked to be finite: a NaN in a removed block or
// neuron is never used.
func NewAccelerator(w *vit.Weights, p *vit.Pruning, denseBlock int, d Description) (*Accelerator, error) {
	if w == nil {
		return nil, fmt.Errorf("simulate: no weights")
	}
	return newAccelerator(w.Config, p, denseBlock, d, w.Kept)
}

// NewAcceleratorFor is NewAccelerator, or with timingOnly set
// NewTimingAccelerator on w's shape (w must not be nil): the choice a
// caller with a -timing-only switch makes.
func NewAcceleratorFor(w *vit.Weights, p *vit.Pruning, denseBlock int, d Description, timingOnly bool) (*Accelerator, error) {
	if timingOnly {
		return NewTimingAccelerator(w.Config, p, denseBlock, d)
	}
	return NewAccelerator(w, p, denseBlock, d)
}

// NewTimingAccelerator builds the model of shape cfg pruned by p (nil =
// dense) onto d, as NewAccelerator does, but without weights: from the
// masks of p alone it packs which blocks each weight matrix keeps (their
// pattern, which is all the MPCA's and the loaders' costs read) and plans
// and orders the same program. Its runs are timing-only (see the package
// doc for when that is exact): they read no pixel, so Run takes images
// that may be nil, one per image to time, e.g. make([][]float32, n).
func NewTimingAccelerator(cfg vit.Config, p *vit.Pruning, denseBlock int, d Description) (*Accelerator, error) {
	return newAccelerator(cfg, p, denseBlock, d, func(p *vit.Pruning) (*vit.Kept, error) { return vit.KeptShapes(cfg, p) })
}

// newAccelerator builds the model of shape cfg, which kept applies p to
// (with the weights' values, or the shapes alone), onto d.
func newAccelerator(cfg vit.Config, p *vit.Pruning, denseBlock int, d Description, kept func(*vit.Pruning) (*vit.Kept, error)) (*Accelerator, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("simulate: %w", err)
	}
	if err := d.Validate(); err != nil {
		return nil, fmt.Errorf("simulate: %w", err)
	}
	b := blockFor(cfg, p, denseBlock)
	if b <= 0 || cfg.Dim%b != 0 || cfg.HeadDim()%b != 0 {
		return nil, fmt.Errorf("simulate: block size %d does not divide the model's dim %d and head width %d", b, cfg.Dim, cfg.HeadDim())
	}
	k, err := kept(p)
	if err != nil {
		return nil, fmt.Errorf("simulate: %w", err)
	}
	p = k.Pruning
	layers, err := MaskPruning(cfg, p)
	if err != nil {
		return nil, fmt.Errorf("simulate: %w", err)
	}
	// The estimate is for the report: no unit sees it.
	est, err := Estimate(EstimateInput{Model: cfg, Geometry: d.MPCA, Block: b, Layers: layers, Keep: p.Keep, TDLayers: p.TDLayers})
	if err != nil {
		return nil, fmt.Errorf("simulate: %w", err)
	}
	model, err := actorModel(k, b)
	if err != nil {
		return nil, fmt.Errorf("simulate: %w", err)
	}
	ac := actorConfig(d, b)
	plan, err := actors.NewPlan(ac, model)
	if err != nil {
		return nil, fmt.Errorf("simulate: %w", err)
	}
	prog, err := actors.BuildProgram(model, plan)
	if err == nil {
		err = checkLoops(prog, d.FIFO)
	}
	if err != nil {
		return nil, fmt.Errorf("simulate: topology %q: %w", d.Name, err)
	}
	a := &Accelerator{desc: d, config: ac, model: model, plan: plan, program: prog, block: b, policy: d.Balance,
		estimate: est, name: cfg.Name, want: cfg.InChans * cfg.ImageSize * cfg.ImageSize}
	if d.Fidelity == FidelityIdeal {
		a.policy = PolicyIdeal
	}
	return a, nil
}

// loopLinks are the FIFOs of each loop out of the MPCA and back, with the
// units on it in between.
var loopLinks = []struct {
	name  string
	links []string
	units string
}{
	{"attention", []string{"mpca->softmax", "softmax->mpca"}, "softmax"},
	{"MLP", []string{"mpca->gelu", "gelu->mpca"}, "gelu"},
	{"residual", []string{"mpca->residual1", "residual1->layernorm2", "layernorm2->mpca"}, "residual1 and layernorm2"},
	{"layer", []string{"mpca->residual2", "residual2->layernorm1", "layernorm1->mpca"}, "residual2 and layernorm1"},
}

// loops is how many units each loop out of the MPCA and back holds: its
// FIFOs' depths and one unit in the hands of each unit on it.
func loops(f FIFOs) actors.Loops {
	n := make([]int, len(loopLinks))
	for i, l := range loopLinks {
		n[i] = len(l.links) - 1
		for _, k := range l.links {
			n[i] += f.Depth(k)
		}
	}
	return actors.Loops{Attention: n[0], MLP: n[1], Residual: n[2], Layer: n[3]}
}

// checkLoops checks that the loops of FIFOs f hold the program, and
// explains a loop too small in terms of f.
func checkLoops(prog *actors.Program, f FIFOs) error {
	err := prog.Check(loops(f))
	if le := (*actors.LoopError)(nil); errors.As(err, &le) {
		return loopAdvice(le, f)
	}
	return err
}

// loopAdvice explains a loop too small for the MPCA's snapshots in terms
// of the description's FIFOs.
func loopAdvice(e *actors.LoopError, f FIFOs) error {
	for _, l := range loopLinks {
		if l.name != e.Loop {
			continue
		}
		var parts []string
		for _, k := range l.links {
			parts = append(parts, fmt.Sprintf("%s %d", k, f.Depth(k)))
		}
		return fmt.Errorf("the %s loop (%s, and one row block in %s) holds %d row blocks, but the MPCA's program needs %d in flight on it (%s before any comes back): deepen %s in [fifo.depths], or fifo.output_depth and fifo.activation_depth, so that they add up to at least %d",
			e.Loop, strings.Join(parts, ", "), l.units, e.Holds, e.Needs, e.At, strings.Join(l.links, " or "), e.Needs-len(l.links)+1)
	}
	return e
}

// Estimate is the analytical estimator's view of one image on a.
func (a *Accelerator) Estimate() Estimation { return a.estimate }

// checkImages validates a batch. A timing-only run reads no pixel: its
// images may be nil, and their values are not checked.
func (a *Accelerator) checkImages(images [][]float32) error {
	if len(images) == 0 {
		return fmt.Errorf("simulate: no images")
	}
	if len(images) > maxSimImages {
		return fmt.Errorf("simulate: %d images, at most %d a run", len(images), maxSimImages)
	}
	timing := a.model.TimingOnly
	for i, img := range images {
		if timing && img == nil {
			continue
		}
		if len(img) != a.want {
			return fmt.Errorf("simulate: image %d has %d values, model %s wants %d (%d×%d×%d)",
				i, len(img), a.name, a.want, a.model.InChans, a.model.ImageSize, a.model.ImageSize)
		}
		if timing {
			continue
		}
		for j, v := range img {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				return fmt.Errorf("simulate: image %d: value %d is %v", i, j, v)
			}
		}
	}
	return nil
}

// actorConfig translates a description; ideal fidelity means the ideal
// policy, weights on chip and free units (docs/DESIGN.md section 3).
func actorConfig(d Description, b int) actors.Config {
	ideal := d.Fidelity == FidelityIdeal
	ac := actors.Config{
		Geometry: actors.Geometry{T: d.MPCA.T, C: d.MPCA.C, H: d.MPCA.H, P: d.MPCA.P},
		Block:    b,
		Free:     ideal,
		Streamed: !ideal && !d.Memory.WeightsOnChip,
		Memory: actors.Memory{BytesPerCycle: d.Memory.BandwidthBytesPerCycle, Latency: int64(d.Memory.LatencyCycles),
			Channels: d.Memory.Channels, BytesPerWeight: d.Data.BytesPerWeight},
		Softmax:   unitCost(d.Softmax),
		LayerNorm: unitCost(d.LayerNorm),
		GELU:      unitCost(d.GELU),
		Residual:  unitCost(d.Residual),
		TokenDrop: actors.TokenDropCost{Selection: actors.Streaming, ScoresPerCycle: d.TokenDrop.ScoresPerCycle,
			Comparators: d.TokenDrop.Comparators, Latency: int64(d.TokenDrop.LatencyCycles),
			FusionMACsPerCycle: d.TokenDrop.FusionMACsPerCycle, RepackElementsPerCycle: d.TokenDrop.RepackElementsPerCycle},
		PatchEmbed: actors.MACCost{MACsPerCycle: d.PatchEmbed.MACsPerCycle, Latency: int64(d.PatchEmbed.LatencyCycles)},
		Classifier: actors.MACCost{MACsPerCycle: d.Classifier.MACsPerCycle, Latency: int64(d.Classifier.LatencyCycles)},
	}
	if d.TokenDrop.Selection == SelectBitonic {
		ac.TokenDrop.Selection = actors.Bitonic
	}
	switch {
	case ideal || d.Balance == PolicyIdeal:
		ac.Policy = actors.Ideal
	case d.Balance == PolicyStatic:
		ac.Policy = actors.Static
	default:
		ac.Policy = actors.Balanced
	}
	return ac
}

func unitCost(u Unit) actors.UnitCost {
	return actors.UnitCost{ElementsPerCycle: u.ElementsPerCycle, Latency: int64(u.LatencyCycles)}
}

// actorModel packs the kept weights straight from the dense matrices to the
// block-sparse form the CHMs compute with, with each layer's token counts.
// Without weights (k from vit.KeptShapes) it packs the blocks' pattern
// alone, and the model is timing-only.
func actorModel(k *vit.Kept, b int) (*actors.Model, error) {
	cfg := k.Config
	d, hd := cfg.Dim, cfg.HeadDim()
	m := &actors.Model{Dim: d, HeadDim: hd, Tokens: cfg.Tokens(), ImageSize: cfg.ImageSize, PatchSize: cfg.PatchSize,
		InChans: cfg.InChans, NumClasses: cfg.NumClasses, LNEps: cfg.LNEps, TimingOnly: k.Weights == nil,
		Layers: make([]actors.Layer, len(k.Layers))}
	if w := k.Weights; w != nil {
		m.PatchW, m.PatchB, m.ClsToken, m.DistToken, m.PosEmbed = w.PatchW, w.PatchB, w.ClsToken, w.DistToken, w.PosEmbed
		m.NormW, m.NormB, m.HeadW, m.HeadB = w.NormW, w.NormB, w.HeadW, w.HeadB
	}
	tokensIn := make([]int, len(k.Layers)+1)
	tokensIn[0] = cfg.Tokens()
	for l, kl := range k.Layers {
		tokensIn[l+1] = tokensIn[l]
		if kl.Drop {
			tokensIn[l+1] = vit.TokensAfterDrop(tokensIn[l], k.Pruning.Keep)
		}
	}
	// Layers are packed on every core; the first failing layer's error wins.
	errs := make([]error, len(k.Layers))
	var g errgroup.Group
	g.SetLimit(goruntime.GOMAXPROCS(0))
	for l := range k.Layers {
		g.Go(func() error { m.Layers[l], errs[l] = packLayer(k, l, b, tokensIn[l], tokensIn[l+1]); return nil })
	}
	g.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return m, nil
}

// packLayer packs layer l of k, which takes tokens in and gives out, and
// checks that every weight it keeps is finite; without weights it packs
// the kept blocks' pattern, which reads and checks no value.
func packLayer(k *vit.Kept, l, b, tokens, out int) (actors.Layer, error) {
	cfg := k.Config
	values := k.Weights != nil
	src := &vit.Layer{} // no matrices to select from when there are no values
	if values {
		src = &k.Weights.Layers[l]
	}
	d := cfg.Dim
	kl := &k.Layers[l]
	wk := cfg.HeadDim() * len(kl.Heads)
	pack := func(name string, sel kernels.Selection, rows, cols int, mask []bool) (*kernels.BlockSparse, error) {
		var keep func(br, bc int) bool
		if mask != nil {
			keep = func(br, bc int) bool { return mask[br*(cols/b)+bc] }
		}
		var s *kernels.BlockSparse
		var err error
		if values {
			s, err = kernels.PackSelected(sel, rows, cols, b, keep)
		} else {
			s, err = kernels.PackPattern(rows, cols, b, keep)
		}
		if err != nil {
			return nil, fmt.Errorf("layer %d %s: %w", l, name, err)
		}
		// The packed blocks are the weights the accelerator uses, just
		// written and still in cache: check them rather than the dense
		// matrix (a pattern has no values, and so nothing to check).
		if r, c := s.FirstNonFinite(); r >= 0 {
			if sel.Rows != nil {
				r = sel.Rows[r]
			}
			if sel.Cols != nil {
				c = sel.Cols[c]
			}
			i := r*sel.Stride + c
			return nil, vit.NonFinite(cfg, vit.LayerTensor(l, name+".weight"), i, sel.Data[i])
		}
		return s, nil
	}
	L := actors.Layer{Heads: len(kl.Heads), Hidden: len(kl.Neurons), QB: kl.QB, KB: kl.KB, VB: kl.VB, OB: kl.ProjB,
		FC2B: kl.FC2B, Norm1W: kl.Norm1W, Norm1B: kl.Norm1B, Norm2W: kl.Norm2W, Norm2B: kl.Norm2B,
		Drop: kl.Drop, Kept: vit.KeptTokens(tokens, k.Pruning.Keep), TokensIn: tokens, TokensOut: out}
	var err error
	for _, p := range []struct {
		name string
		dst  **kernels.BlockSparse
		w    []float32
		mask []bool
	}{{"q", &L.Q, src.QW, kl.QMask}, {"k", &L.K, src.KW, kl.KMask}, {"v", &L.V, src.VW, kl.VMask}} {
		if *p.dst, err = pack(p.name, kernels.Selection{Data: p.w, Stride: d, Cols: kl.Cols}, d, wk, p.mask); err != nil {
			return actors.Layer{}, err
		}
	}
	if L.O, err = pack("proj", kernels.Selection{Data: src.ProjW, Stride: d, Rows: kl.Cols}, wk, d, kl.ProjMask); err != nil {
		return actors.Layer{}, err
	}
	// FC1 and FC2 are padded with zero neurons to a multiple of b.
	hid := len(kl.Neurons)
	hp := (hid + b - 1) / b * b
	neurons := kl.Neurons
	L.FC1B = kl.FC1B
	if hp != hid {
		neurons = make([]int, hp)
		copy(neurons, kl.Neurons)
		for j := hid; j < hp; j++ {
			neurons[j] = -1
		}
		if values {
			L.FC1B = make([]float32, hp)
			copy(L.FC1B, kl.FC1B)
		}
	}
	if hid == cfg.MLPHidden && hp == hid {
		neurons = nil // every neuron, in order
	}
	if L.FC1, err = pack("fc1", kernels.Selection{Data: src.FC1W, Stride: cfg.MLPHidden, Cols: neurons}, d, hp, nil); err != nil {
		return actors.Layer{}, err
	}
	if L.FC2, err = pack("fc2", kernels.Selection{Data: src.FC2W, Stride: d, Rows: neurons}, hp, d, nil); err != nil {
		return actors.Layer{}, err
	}
	return L, nil
}

// timingOnly is a without its numerics: the same model, plan and program,
// whose runs skip the kernels and give the same times (package doc).
func (a *Accelerator) timingOnly() *Accelerator {
	if a.model.TimingOnly {
		return a
	}
	b, m := *a, *a.model
	m.TimingOnly = true
	b.model = &m
	return &b
}

// withFIFO is a with the FIFOs f, sharing its model, plan and program,
// which do not depend on them; it fails if f is invalid or a loop cannot
// hold the program.
func (a *Accelerator) withFIFO(f FIFOs) (*Accelerator, error) {
	b := *a
	b.desc.FIFO = f
	if err := b.desc.Validate(); err != nil {
		return nil, err
	}
	if err := checkLoops(a.program, f); err != nil {
		return nil, fmt.Errorf("topology %q: %w", b.desc.Name, err)
	}
	return &b, nil
}
