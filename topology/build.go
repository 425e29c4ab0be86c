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

// machine is a built accelerator, ready to run once.
type machine struct {
	graph      *runtime.Graph
	units      []unit
	controller *actors.Controller
	schedule   *actors.Schedule
	block      int
	estimate   Estimation
	policy     Policy
}

// block returns the tile side of in: the pruning's, else DenseBlock or a default.
func (in SimInput) block() int {
	if in.Pruning != nil && in.Pruning.Layers != nil {
		return in.Pruning.Block
	}
	if in.DenseBlock != 0 {
		return in.DenseBlock
	}
	if in.Weights != nil && in.Weights.Config.HeadDim()%16 != 0 {
		return in.Weights.Config.HeadDim()
	}
	return 16
}

// check validates in; every error says which input is wrong.
func (in SimInput) check() error {
	if in.Weights == nil {
		return fmt.Errorf("simulate: no weights")
	}
	cfg := in.Weights.Config
	if err := in.Desc.Validate(); err != nil {
		return fmt.Errorf("simulate: %w", err)
	}
	b := in.block()
	if b <= 0 || cfg.Dim%b != 0 || cfg.HeadDim()%b != 0 {
		return fmt.Errorf("simulate: block size %d does not divide the model's dim %d and head width %d", b, cfg.Dim, cfg.HeadDim())
	}
	if in.Pruning != nil && in.Pruning.Layers == nil && in.DenseBlock != 0 && in.Pruning.Block != 0 && in.Pruning.Block != in.DenseBlock {
		return fmt.Errorf("simulate: pruning block %d and dense block %d disagree", in.Pruning.Block, in.DenseBlock)
	}
	if len(in.Images) == 0 {
		return fmt.Errorf("simulate: no images")
	}
	if len(in.Images) > maxSimImages {
		return fmt.Errorf("simulate: %d images, at most %d a run", len(in.Images), maxSimImages)
	}
	want := cfg.InChans * cfg.ImageSize * cfg.ImageSize
	for i, img := range in.Images {
		if len(img) != want {
			return fmt.Errorf("simulate: image %d has %d values, model %s wants %d (%d×%d×%d)",
				i, len(img), cfg.Name, want, cfg.InChans, cfg.ImageSize, cfg.ImageSize)
		}
		for j, v := range img {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				return fmt.Errorf("simulate: image %d: value %d is %v", i, j, v)
			}
		}
	}
	if in.MaxTraceEvents < 0 {
		return fmt.Errorf("simulate: max trace events %d is negative", in.MaxTraceEvents)
	}
	return nil
}

// build validates in and wires the accelerator's units into a graph.
func build(in SimInput) (*machine, error) {
	if err := in.check(); err != nil {
		return nil, err
	}
	w, d := in.Weights, in.Desc
	cfg := w.Config
	b := in.block()
	c, err := w.Compact(in.Pruning)
	if err != nil {
		return nil, fmt.Errorf("simulate: %w", err)
	}
	p := c.Pruning
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
	m := &machine{graph: runtime.NewGraph(), schedule: sched, block: b, estimate: est, policy: d.Balance}
	if d.Fidelity == FidelityIdeal {
		m.policy = PolicyIdeal
	}
	if err := m.wire(in, d, ac, model); err != nil {
		return nil, fmt.Errorf("simulate: %w", err)
	}
	return m, nil
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
		Keep: c.Pruning.Keep, Layers: make([]actors.Layer, len(c.Layers))}
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
			Drop: cl.Drop, TokensIn: e.TokensIn, TokensOut: e.TokensOut}
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

// wire creates the FIFOs and the units.
func (m *machine) wire(in SimInput, d Description, ac actors.Config, model *actors.Model) error {
	g, f := m.graph, d.FIFO
	var err error
	ctrl := &actors.Controller{Model: model, Schedule: m.schedule, Images: in.Images, CHMs: make([]actors.Port[*actors.MPCAJob], ac.Geometry.H)}
	m.controller = ctrl
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
			return err
		}
		chm := &actors.CHM{Geometry: ac.Geometry, Policy: ac.Policy, Jobs: p.In, Done: p.Out}
		opts := unitPorts(p.In, p.Out)
		if ac.Streamed {
			chm.Weights, err = runtime.NewFIFO[actors.WeightBlock](g, fmt.Sprintf("weights->chm%d", i), f.WeightDepth, f.LatencyCycles)
			if err != nil {
				return err
			}
			weights = append(weights, chm.Weights)
			opts = append(opts, runtime.Reads(chm.Weights))
		}
		m.units = append(m.units, unit{fmt.Sprintf("chm%d", i), chm.Run, opts})
	}
	if ac.Streamed {
		for ch := range min(ac.Memory.Channels, ac.Geometry.H) {
			ld := &actors.Loader{Memory: ac.Memory, Block: m.block, Schedule: m.schedule, Model: model, Images: len(in.Images)}
			var outs []runtime.Port
			for i := ch; i < ac.Geometry.H; i += ac.Memory.Channels {
				ld.CHMs = append(ld.CHMs, i)
				ld.Out = append(ld.Out, weights[i])
				outs = append(outs, weights[i])
			}
			m.units = append(m.units, unit{fmt.Sprintf("loader%d", ch), ld.Run, []runtime.ActorOption{runtime.Writes(outs...)}})
		}
	}
	for _, s := range []struct {
		kind actors.SFUKind
		cost actors.UnitCost
		port *actors.Port[*actors.SFUJob]
	}{{actors.LayerNormUnit, ac.LayerNorm, &ctrl.LayerNorm}, {actors.SoftmaxUnit, ac.Softmax, &ctrl.Softmax},
		{actors.GELUUnit, ac.GELU, &ctrl.GELU}, {actors.ResidualUnit, ac.Residual, &ctrl.Residual}} {
		if *s.port, err = newPort[*actors.SFUJob](g, s.kind.String(), f.SFUDepth, f.LatencyCycles); err != nil {
			return err
		}
		u := &actors.SFU{Kind: s.kind, Cost: s.cost, Free: ac.Free, In: s.port.In, Out: s.port.Out}
		m.units = append(m.units, unit{s.kind.String(), u.Run, unitPorts(s.port.In, s.port.Out)})
	}
	td, err := newPort[*actors.DropJob](g, "tokendrop", f.TokenDropDepth, f.LatencyCycles)
	if err != nil {
		return err
	}
	ctrl.TokenDrop = td
	tdu := &actors.TokenDropper{Cost: ac.TokenDrop, Free: ac.Free, In: td.In, Out: td.Out}
	m.units = append(m.units, unit{"tokendrop", tdu.Run, unitPorts(td.In, td.Out)})
	pe, err := newPort[*actors.EmbedJob](g, "patchembed", f.SFUDepth, f.LatencyCycles)
	if err != nil {
		return err
	}
	ctrl.PatchEmbed = pe
	peu := &actors.PatchEmbed{Model: model, Cost: ac.PatchEmbed, Free: ac.Free, In: pe.In, Out: pe.Out}
	m.units = append(m.units, unit{"patchembed", peu.Run, unitPorts(pe.In, pe.Out)})
	cl, err := newPort[*actors.ClassifyJob](g, "classifier", f.SFUDepth, f.LatencyCycles)
	if err != nil {
		return err
	}
	ctrl.Classifier = cl
	clu := &actors.Classifier{Model: model, Cost: ac.Classifier, LayerNorm: ac.LayerNorm, Free: ac.Free, In: cl.In, Out: cl.Out}
	m.units = append(m.units, unit{"classifier", clu.Run, unitPorts(cl.In, cl.Out)})

	// The controller writes every unit's job FIFO and reads every answer FIFO.
	var reads, writes []runtime.Port
	for i := 0; i < len(ctrlPorts); i += 2 {
		writes, reads = append(writes, ctrlPorts[i]), append(reads, ctrlPorts[i+1])
	}
	m.units = append([]unit{{"controller", ctrl.Run, []runtime.ActorOption{runtime.Reads(reads...), runtime.Writes(writes...)}}}, m.units...)
	return nil
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
