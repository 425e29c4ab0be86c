package topology

import (
	"context"
	"fmt"
	"io"

	"vitflow/actors"
	"vitflow/kernels"
	"vitflow/runtime"
	"vitflow/vit"
)

// SimInput is what Simulate runs: a model, its pruning, an accelerator and a batch of images.
type SimInput struct {
	// Weights is the model; its Config names the shape.
	Weights *vit.Weights
	// Pruning is the static and dynamic pruning (nil = dense). Its Block is
	// the MPCA's tile side b; for a dense model (nil or no masks) b is
	// DenseBlock.
	Pruning *vit.Pruning
	// DenseBlock is the tile side b used when Pruning has no block masks
	// (0 means 16, or the head width if 16 does not divide it).
	DenseBlock int
	// Desc is the accelerator.
	Desc Description
	// Images are preprocessed images (CHW, see vit.DecodeImage), processed
	// one after another.
	Images [][]float32
	// Trace, if non-nil, receives the run's Perfetto trace-event JSON.
	Trace io.Writer
	// MaxTraceEvents caps the trace (0: the runtime's default).
	MaxTraceEvents int
}

// SimResult is everything a simulated run measured.
type SimResult struct {
	// Desc is the accelerator that ran; Block the tile side b; Policy the
	// load-balancing policy that ran (ideal in ideal fidelity).
	Desc   Description
	Block  int
	Policy Policy
	// Images holds one result per input image, in order.
	Images []ImageResult
	// Cycles is the whole batch's makespan; CyclesPerImage is Cycles / len(Images).
	Cycles         int64
	CyclesPerImage float64
	// Estimate is the analytical estimator's view of one image of the same
	// model, pruning (measured from the masks, MaskPruning) and geometry.
	Estimate Estimation
	// Stats are the runtime's statistics: per unit busy/starved/blocked
	// cycles and utilisation, per FIFO occupancy.
	Stats *runtime.Stats
	// Gap is the sum over images of each image's Gap.
	Gap Gap
}

// ImageResult is one image's run.
type ImageResult struct {
	Logits []float32
	Top1   int
	// Start and End are the cycles at which the image entered the patch
	// embedding and its logits left the classifier; Cycles = End - Start.
	Start, End, Cycles int64
	// Embed and Classify are the cycles of the patch embedding and the
	// classifier stages (0 in ideal fidelity, FIFO latency aside).
	Embed, Classify int64
	Layers          []LayerResult
	// Gap decomposes Cycles - Estimate.Cycles by cause.
	Gap Gap
}

// LayerResult is one encoder layer of one image.
type LayerResult struct {
	Index               int
	TokensIn, TokensOut int
	HeadsKept, Hidden   int
	// Cycles is the layer's time, from its first stage's dispatch to its
	// last stage's completion; Estimate is the estimator's.
	Cycles, Estimate int64
	// Ops are the MPCA ops in Ops order.
	Ops []OpResult
	// Stages are the special-function and token dropping stages in program
	// order (layernorm1, softmax, residual1, tokendrop, layernorm2, gelu, residual2).
	Stages []StageResult
}

// Op returns the result of op o.
func (l LayerResult) Op(o Op) OpResult {
	for _, r := range l.Ops {
		if r.Op == o {
			return r
		}
	}
	return OpResult{Op: o}
}

// OpResult is one MPCA op of one layer.
type OpResult struct {
	Op      Op
	Mapping Mapping
	// Cycles is the op's time from dispatch to the controller receiving its
	// last output; Estimate is the estimator's cycles for it.
	Cycles, Estimate int64
	// Compute is the busiest PE's work (under the ideal policy, the
	// estimator's charge); Memory is the time the CHMs waited for weights
	// beyond that; Latency is the FIFO latency of dispatch and completion.
	// Cycles = Compute + Memory + Latency.
	Compute, Memory, Latency int64
	// Load is the PE load under the policy that ran; Loads gives it under
	// every policy (ideal, static, balanced) for the same masks.
	Load  PELoad
	Loads []PELoad
}

// PELoad summarises the work of the MPCA's PEs in one op, in cycles, over all
// t*c*h PEs (idle ones count as 0).
type PELoad struct {
	Policy    Policy
	Max, Mean float64
}

// Imbalance is Max/Mean (1 = perfectly even; 0 when no PE works).
func (l PELoad) Imbalance() float64 {
	if l.Mean == 0 {
		return 0
	}
	return l.Max / l.Mean
}

// StageResult is one non-MPCA stage (a special-function unit or the token
// dropping module) of one layer.
type StageResult struct {
	Name string
	// Cycles = Work + Latency: the unit's own time and the FIFO latency.
	Cycles, Work, Latency int64
}

// Gap decomposes a simulated time minus the estimator's by cause; the
// fields add up to it exactly.
type Gap struct {
	// Imbalance is the busiest PE's work beyond the estimator's charge
	// (negative when real masks beat the average).
	Imbalance int64
	// Memory is the time CHMs waited for weights from off-chip memory.
	Memory int64
	// SFU is the softmax, LayerNorm, GELU and residual units' time.
	SFU int64
	// TokenDrop is the token dropping module's time.
	TokenDrop int64
	// EmbedClassify is the patch embedding's and the classifier's time.
	EmbedClassify int64
	// Latency is the FIFO latency of handing data between units, which the
	// estimator does not see.
	Latency int64
}

// Total is the sum of the causes.
func (g Gap) Total() int64 {
	return g.Imbalance + g.Memory + g.SFU + g.TokenDrop + g.EmbedClassify + g.Latency
}

func (g *Gap) add(o Gap) {
	g.Imbalance += o.Imbalance
	g.Memory += o.Memory
	g.SFU += o.SFU
	g.TokenDrop += o.TokenDrop
	g.EmbedClassify += o.EmbedClassify
	g.Latency += o.Latency
}

// Simulate runs in.Images through the accelerator in.Desc executing the
// model in.Weights pruned by in.Pruning: NewAccelerator, then
// Accelerator.Run. Every unit is an actor of the runtime that computes its
// real part of the inference with kernels and charges cycles from its cost
// model (package actors). It validates its input first (every error names
// what is wrong) and fails fast, naming the failing unit, if a unit fails or
// ctx ends. To run several batches on one model, build it once with
// NewAccelerator.
//
// In ideal fidelity the policy is ideal whatever Desc.Balance says, weights
// are on chip and the special-function units, token dropping, patch
// embedding and classifier cost nothing, so that an image takes the
// estimator's cycles plus the FIFO latency of handing each stage to its unit
// and back (Gap.Latency).
func Simulate(ctx context.Context, in SimInput) (*SimResult, error) {
	return simulate(ctx, in, nil)
}

// simulate is Simulate with a hook that may replace a unit's body (tests).
func simulate(ctx context.Context, in SimInput, wrap wrapper) (*SimResult, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("simulate: %w", err)
	}
	a, err := NewAccelerator(in.Weights, in.Pruning, in.DenseBlock, in.Desc)
	if err != nil {
		return nil, err
	}
	return a.run(ctx, in.Images, in.Trace, in.MaxTraceEvents, wrap)
}

// wrapper may replace the body of the unit called name.
type wrapper func(name string, body func(*runtime.Ctx) error) func(*runtime.Ctx) error

// Run simulates images, one after another, on a fresh graph of a's units.
// trace, if non-nil, receives the Perfetto trace-event JSON, at most
// maxTraceEvents events (0: the runtime's default). Results are the same
// whatever else runs concurrently.
func (a *Accelerator) Run(ctx context.Context, images [][]float32, trace io.Writer, maxTraceEvents int) (*SimResult, error) {
	return a.run(ctx, images, trace, maxTraceEvents, nil)
}

func (a *Accelerator) run(ctx context.Context, images [][]float32, trace io.Writer, maxTraceEvents int, wrap wrapper) (*SimResult, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("simulate: %w", err)
	}
	if err := a.checkImages(images); err != nil {
		return nil, err
	}
	if maxTraceEvents < 0 {
		return nil, fmt.Errorf("simulate: max trace events %d is negative", maxTraceEvents)
	}
	g, units, ctrl, err := a.wire(images)
	if err != nil {
		return nil, fmt.Errorf("simulate: %w", err)
	}
	for _, u := range units {
		body := u.body
		if wrap != nil {
			body = wrap(u.name, body)
		}
		g.AddActor(u.name, body, u.opts...)
	}
	stats, err := g.Run(ctx, runtime.Options{Trace: trace, ClockMHz: a.desc.ClockMHz, MaxTraceEvents: maxTraceEvents})
	if err != nil {
		return nil, fmt.Errorf("simulate %s on %s: %w", a.name, a.desc.Name, err)
	}
	return a.result(ctrl, stats), nil
}

// result assembles the controller's records and the runtime's statistics.
func (a *Accelerator) result(ctrl *actors.Controller, stats *runtime.Stats) *SimResult {
	r := &SimResult{Desc: a.desc, Block: a.block, Policy: a.policy, Estimate: a.estimate, Stats: stats,
		Cycles: stats.Makespan, Images: make([]ImageResult, len(ctrl.Records))}
	r.CyclesPerImage = float64(r.Cycles) / float64(len(ctrl.Records))
	for i, rec := range ctrl.Records {
		img := ImageResult{Logits: rec.Logits, Top1: kernels.Argmax(rec.Logits), Start: rec.Start, End: rec.End,
			Cycles: rec.End - rec.Start, Embed: rec.Embed.Cycles, Classify: rec.Classify.Cycles,
			Layers: make([]LayerResult, len(rec.Layers))}
		gap := &img.Gap
		gap.EmbedClassify = rec.Embed.Work + rec.Classify.Work
		gap.Latency = rec.Embed.Latency + rec.Classify.Latency
		for l, lr := range rec.Layers {
			e := a.estimate.Layers[l]
			out := LayerResult{Index: l, TokensIn: lr.TokensIn, TokensOut: lr.TokensOut, HeadsKept: e.HeadsKept,
				Hidden: e.Hidden, Cycles: lr.End - lr.Start, Estimate: e.Cycles, Ops: make([]OpResult, len(Ops))}
			for k, op := range Ops {
				or := lr.Ops[k]
				plan := &a.schedule.Layers[l][k]
				res := OpResult{Op: op, Mapping: e.Op(op).Mapping, Cycles: or.Cycles, Estimate: e.Op(op).Cycles,
					Compute: or.Compute, Memory: or.Memory, Latency: or.Latency}
				for pol, name := range []Policy{PolicyIdeal, PolicyStatic, PolicyBalanced} {
					pl := PELoad{Policy: name, Max: plan.Loads[pol].Max, Mean: plan.Loads[pol].Mean}
					res.Loads = append(res.Loads, pl)
					if name == a.policy {
						res.Load = pl
					}
				}
				gap.Imbalance += or.Compute - res.Estimate
				gap.Memory += or.Memory
				gap.Latency += or.Latency
				out.Ops[k] = res
			}
			for _, s := range lr.Stages {
				out.Stages = append(out.Stages, StageResult{Name: s.Name, Cycles: s.Cycles, Work: s.Work, Latency: s.Latency})
				if s.Name == "tokendrop" {
					gap.TokenDrop += s.Work
				} else {
					gap.SFU += s.Work
				}
				gap.Latency += s.Latency
			}
			img.Layers[l] = out
		}
		r.Gap.add(img.Gap)
		r.Images[i] = img
	}
	return r
}
