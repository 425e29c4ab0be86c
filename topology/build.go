package topology

import (
	"fmt"
	"math"

	"vitflow/actors"
	"vitflow/kernels"
	"vitflow/runtime"
	"vitflow/vit"
)

// maxSimImages bounds a batch so that a run's records stay small.
const maxSimImages = 1 << 16

// unit is one actor of the built accelerator.
type unit struct {
	name string
	body func(*runtime.Ctx) error
	opts []runtime.ActorOption
}

// Accelerator is a model built onto an accelerator description: its weights
// packed to the non-zero blocks the CHMs stream, the controller's static
// schedule and the estimator's view of it. Building compacts and packs the
// model (a few hundred milliseconds for DeiT-S); Run then simulates any
// number of batches, each on a fresh graph of units. An Accelerator is read-only once built, so
// concurrent Runs are safe.
type Accelerator struct {
	desc     Description
	config   actors.Config
	model    *actors.Model
	schedule *actors.Schedule
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
// is wrong.
func NewAccelerator(w *vit.Weights, p *vit.Pruning, denseBlock int, d Description) (*Accelerator, error) {
	if w == nil {
		return nil, fmt.Errorf("simulate: no weights")
	}
	cfg := w.Config
	if err := d.Validate(); err != nil {
		return nil, fmt.Errorf("simulate: %w", err)
	}
	b := blockFor(cfg, p, denseBlock)
	if b <= 0 || cfg.Dim%b != 0 || cfg.HeadDim()%b != 0 {
		return nil, fmt.Errorf("simulate: block size %d does not divide the model's dim %d and head width %d", b, cfg.Dim, cfg.HeadDim())
	}
	c, err := w.Compact(p)
	if err != nil {
		return nil, fmt.Errorf("simulate: %w", err)
	}
	p = c.Pruning
	layers, err := MaskPruning(cfg, p)
	if err != nil {
		return nil, fmt.Errorf("simulate: %w", err)
	}
	est, err := Estimate(EstimateInput{Model: cfg, Geometry: d.MPCA, Block: b, Layers: layers, Keep: p.Keep, TDLayers: p.TDLayers})
	if err != nil {
		return nil, fmt.Errorf("simulate: %w", err)
	}
	model, err := actorModel(c, b, est)
	if err != nil {
		return nil, fmt.Errorf("simulate: %w", err)
	}
	ac := actorConfig(d, b)
	sched, err := actors.NewSchedule(ac, model)
	if err != nil {
		return nil, fmt.Errorf("simulate: %w", err)
	}
	a := &Accelerator{desc: d, config: ac, model: model, schedule: sched, block: b, policy: d.Balance,
		estimate: est, name: cfg.Name, want: cfg.InChans * cfg.ImageSize * cfg.ImageSize}
	if d.Fidelity == FidelityIdeal {
		a.policy = PolicyIdeal
	}
	return a, nil
}

// Estimate is the analytical estimator's view of one image on a.
func (a *Accelerator) Estimate() Estimation { return a.estimate }

// checkImages validates a batch.
func (a *Accelerator) checkImages(images [][]float32) error {
	if len(images) == 0 {
		return fmt.Errorf("simulate: no images")
	}
	if len(images) > maxSimImages {
		return fmt.Errorf("simulate: %d images, at most %d a run", len(images), maxSimImages)
	}
	for i, img := range images {
		if len(img) != a.want {
			return fmt.Errorf("simulate: image %d has %d values, model %s wants %d (%d×%d×%d)",
				i, len(img), a.name, a.want, a.model.InChans, a.model.ImageSize, a.model.ImageSize)
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
// policy, weights on chip and free units (DESIGN.md section 3).
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

var actorMapping = map[Mapping]actors.Mapping{Sweep: actors.Sweep, Expand: actors.Expand, HeadWise: actors.HeadWise, RowWise: actors.RowWise}

// actorModel packs the compacted model's matrices to the block-sparse form
// the CHMs compute with, and attaches the estimator's per-op costs and token counts.
func actorModel(c *vit.Compacted, b int, est Estimation) (*actors.Model, error) {
	w := c.Weights
	cfg := w.Config
	d, hd := cfg.Dim, cfg.HeadDim()
	m := &actors.Model{Dim: d, HeadDim: hd, Tokens: cfg.Tokens(), ImageSize: cfg.ImageSize, PatchSize: cfg.PatchSize,
		InChans: cfg.InChans, NumClasses: cfg.NumClasses, LNEps: cfg.LNEps,
		PatchW: w.PatchW, PatchB: w.PatchB, ClsToken: w.ClsToken, DistToken: w.DistToken, PosEmbed: w.PosEmbed,
		NormW: w.NormW, NormB: w.NormB, HeadW: w.HeadW, HeadB: w.HeadB,
		Layers: make([]actors.Layer, len(c.Layers))}
	for l := range c.Layers {
		cl := &c.Layers[l]
		e := est.Layers[l]
		wk := hd * len(cl.Heads)
		pack := func(name string, x []float32, rows, cols int, mask []bool) (*kernels.BlockSparse, error) {
			var keep func(br, bc int) bool
			if mask != nil {
				keep = func(br, bc int) bool { return mask[br*(cols/b)+bc] }
			}
			s, err := kernels.PackBlockSparse(x, rows, cols, b, keep)
			if err != nil {
				return nil, fmt.Errorf("layer %d %s: %w", l, name, err)
			}
			return s, nil
		}
		L := actors.Layer{Heads: len(cl.Heads), Hidden: len(cl.Neurons), QB: cl.QB, KB: cl.KB, VB: cl.VB, OB: cl.ProjB,
			FC2B: cl.FC2B, Norm1W: cl.Norm1W, Norm1B: cl.Norm1B, Norm2W: cl.Norm2W, Norm2B: cl.Norm2B,
			Drop: cl.Drop, Kept: vit.KeptTokens(e.TokensIn, c.Pruning.Keep), TokensIn: e.TokensIn, TokensOut: e.TokensOut}
		var err error
		if L.Q, err = pack("q", cl.QW, d, wk, cl.QMask); err != nil {
			return nil, err
		}
		if L.K, err = pack("k", cl.KW, d, wk, cl.KMask); err != nil {
			return nil, err
		}
		if L.V, err = pack("v", cl.VW, d, wk, cl.VMask); err != nil {
			return nil, err
		}
		if L.O, err = pack("o", cl.ProjW, wk, d, cl.ProjMask); err != nil {
			return nil, err
		}
		// FC1 and FC2 are padded with zero neurons to a multiple of b.
		hid := len(cl.Neurons)
		hp := (hid + b - 1) / b * b
		fc1, fc2 := cl.FC1W, cl.FC2W
		L.FC1B = cl.FC1B
		if hp != hid {
			fc1 = make([]float32, d*hp)
			for i := range d {
				copy(fc1[i*hp:i*hp+hid], cl.FC1W[i*hid:(i+1)*hid])
			}
			fc2 = make([]float32, hp*d)
			copy(fc2, cl.FC2W)
			L.FC1B = make([]float32, hp)
			copy(L.FC1B, cl.FC1B)
		}
		if L.FC1, err = pack("fc1", fc1, d, hp, nil); err != nil {
			return nil, err
		}
		if L.FC2, err = pack("fc2", fc2, hp, d, nil); err != nil {
			return nil, err
		}
		for _, op := range e.Ops {
			L.Costs[op.Op] = actors.OpCost{Mapping: actorMapping[op.Mapping], Snapshots: op.Snapshots, Cycles: op.Cycles}
		}
		m.Layers[l] = L
	}
	return m, nil
}

// wire creates a graph of units that runs images on a, and returns the
// graph, its units (not yet added) and the controller. Each unit has a job
// FIFO from the controller and an answer FIFO back (depths from the
// description: activation and output depths for the CHMs, the SFU depth for
// the special-function units, patch embedding and classifier, the token
// dropping depth for its module); the controller waits for each answer, so
// those hold one job at a time. The weight FIFOs (loader -> CHM, one block
// per element) are where depth matters: it bounds how far the loader runs ahead.
func (a *Accelerator) wire(images [][]float32) (*runtime.Graph, []unit, *actors.Controller, error) {
	g, f, ac, model := runtime.NewGraph(), a.desc.FIFO, a.config, a.model
	var units []unit
	var err error
	ctrl := &actors.Controller{Model: model, Schedule: a.schedule, Images: images, CHMs: make([]actors.Port[*actors.MPCAJob], ac.Geometry.H)}
	ctrlPorts := []runtime.Port{}
	unitPorts := func(in, out runtime.Port) []runtime.ActorOption {
		ctrlPorts = append(ctrlPorts, in, out)
		return []runtime.ActorOption{runtime.Reads(in), runtime.Writes(out)}
	}
	var weights []*runtime.FIFO[actors.WeightBlock]
	for i := range ac.Geometry.H {
		p := &ctrl.CHMs[i]
		if err == nil {
			p.In, err = runtime.NewFIFO[*actors.MPCAJob](g, fmt.Sprintf("ctrl->chm%d", i), f.ActivationDepth, f.LatencyCycles)
		}
		if err == nil {
			p.Out, err = runtime.NewFIFO[*actors.MPCAJob](g, fmt.Sprintf("chm%d->ctrl", i), f.OutputDepth, f.LatencyCycles)
		}
		if err != nil {
			return nil, nil, nil, err
		}
		chm := &actors.CHM{Geometry: ac.Geometry, Policy: ac.Policy, Jobs: p.In, Done: p.Out}
		opts := unitPorts(p.In, p.Out)
		if ac.Streamed {
			chm.Weights, err = runtime.NewFIFO[actors.WeightBlock](g, fmt.Sprintf("weights->chm%d", i), f.WeightDepth, f.LatencyCycles)
			if err != nil {
				return nil, nil, nil, err
			}
			weights = append(weights, chm.Weights)
			opts = append(opts, runtime.Reads(chm.Weights))
		}
		units = append(units, unit{fmt.Sprintf("chm%d", i), chm.Run, opts})
	}
	if ac.Streamed {
		for ch := range min(ac.Memory.Channels, ac.Geometry.H) {
			ld := &actors.Loader{Memory: ac.Memory, Block: a.block, Schedule: a.schedule, Model: model, Images: len(images)}
			var outs []runtime.Port
			for i := ch; i < ac.Geometry.H; i += ac.Memory.Channels {
				ld.CHMs = append(ld.CHMs, i)
				ld.Out = append(ld.Out, weights[i])
				outs = append(outs, weights[i])
			}
			units = append(units, unit{fmt.Sprintf("loader%d", ch), ld.Run, []runtime.ActorOption{runtime.Writes(outs...)}})
		}
	}
	for _, s := range []struct {
		kind actors.SFUKind
		cost actors.UnitCost
		port *actors.Port[*actors.SFUJob]
	}{{actors.LayerNormUnit, ac.LayerNorm, &ctrl.LayerNorm}, {actors.SoftmaxUnit, ac.Softmax, &ctrl.Softmax},
		{actors.GELUUnit, ac.GELU, &ctrl.GELU}, {actors.ResidualUnit, ac.Residual, &ctrl.Residual}} {
		if *s.port, err = newPort[*actors.SFUJob](g, s.kind.String(), f.SFUDepth, f.LatencyCycles); err != nil {
			return nil, nil, nil, err
		}
		u := &actors.SFU{Kind: s.kind, Cost: s.cost, Free: ac.Free, In: s.port.In, Out: s.port.Out}
		units = append(units, unit{s.kind.String(), u.Run, unitPorts(s.port.In, s.port.Out)})
	}
	td, err := newPort[*actors.DropJob](g, "tokendrop", f.TokenDropDepth, f.LatencyCycles)
	if err != nil {
		return nil, nil, nil, err
	}
	ctrl.TokenDrop = td
	tdu := &actors.TokenDropper{Cost: ac.TokenDrop, Free: ac.Free, In: td.In, Out: td.Out}
	units = append(units, unit{"tokendrop", tdu.Run, unitPorts(td.In, td.Out)})
	pe, err := newPort[*actors.EmbedJob](g, "patchembed", f.SFUDepth, f.LatencyCycles)
	if err != nil {
		return nil, nil, nil, err
	}
	ctrl.PatchEmbed = pe
	peu := &actors.PatchEmbed{Model: model, Cost: ac.PatchEmbed, Free: ac.Free, In: pe.In, Out: pe.Out}
	units = append(units, unit{"patchembed", peu.Run, unitPorts(pe.In, pe.Out)})
	cl, err := newPort[*actors.ClassifyJob](g, "classifier", f.SFUDepth, f.LatencyCycles)
	if err != nil {
		return nil, nil, nil, err
	}
	ctrl.Classifier = cl
	clu := &actors.Classifier{Model: model, Cost: ac.Classifier, LayerNorm: ac.LayerNorm, Free: ac.Free, In: cl.In, Out: cl.Out}
	units = append(units, unit{"classifier", clu.Run, unitPorts(cl.In, cl.Out)})

	// The controller writes every unit's job FIFO and reads every answer FIFO.
	var reads, writes []runtime.Port
	for i := 0; i < len(ctrlPorts); i += 2 {
		writes, reads = append(writes, ctrlPorts[i]), append(reads, ctrlPorts[i+1])
	}
	units = append([]unit{{"controller", ctrl.Run, []runtime.ActorOption{runtime.Reads(reads...), runtime.Writes(writes...)}}}, units...)
	return g, units, ctrl, nil
}

// newPort makes the FIFO pair ctrl->name and name->ctrl.
func newPort[J any](g *runtime.Graph, name string, depth, latency int) (actors.Port[J], error) {
	var p actors.Port[J]
	var err error
	if p.In, err = runtime.NewFIFO[J](g, "ctrl->"+name, depth, latency); err != nil {
		return p, err
	}
	p.Out, err = runtime.NewFIFO[J](g, name+"->ctrl", depth, latency)
	return p, err
}
