package topology

import (
	"cmp"
	"context"
	"fmt"

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
	// Trace asks for the run's Perfetto trace (Trace.W nil: none).
	Trace TraceOptions
	// TimingOnly times the run without computing it: Simulate builds with
	// NewTimingAccelerator from Weights.Config and the masks of Pruning,
	// reading no weight and no pixel (Images may be nil, one per image).
	// The cycles and statistics are the full run's when the package doc's
	// rule holds; there are no logits.
	TimingOnly bool
}

// SimResult is everything a simulated run measured.
type SimResult struct {
	// TimingOnly says the run computed no values (NewTimingAccelerator):
	// every image's Logits are nil, its Top1 -1, and its token dropping
	// layers' Kept stand-ins; everything else is what a full run measures.
	TimingOnly bool
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
	// Links describes every FIFO: its depth, element size and latency.
	Links []LinkInfo
	// PEUtilisation is the PEs' real work over their number times the makespan.
	PEUtilisation float64
	// MPCABusy is the cycles during which at least one PE was working.
	MPCABusy int64
	// Path attributes every cycle of the makespan to a cause along the
	// critical path.
	Path Attribution
}

// LinkInfo is one FIFO of the built accelerator.
type LinkInfo struct {
	Name     string
	Depth    int
	Latency  int64 // the link's own latency
	Pipeline int64 // the writer's pipeline latency, carried by the link
	// ElementBytes is the on-chip size of one element; Bytes = Depth * ElementBytes.
	ElementBytes, Bytes int64
	// Sizable says whether a description sets its depth (fifo.depths).
	Sizable bool
}

// ImageResult is one image's run.
type ImageResult struct {
	// Logits and Top1 are the predictions: nil and -1 in a timing-only run.
	Logits []float32
	Top1   int
	// Start and End are the cycles at which the image entered the patch
	// embedding and its logits left the classifier; Cycles = End - Start.
	Start, End, Cycles int64
	Layers             []LayerResult
}

// LayerResult is one encoder layer of one image.
type LayerResult struct {
	Index               int
	TokensIn, TokensOut int
	HeadsKept, Hidden   int
	// Kept are the input positions of the tokens a token dropping layer
	// kept, in descending score order (nil otherwise). A timing-only run
	// scores nothing and keeps positions 1 to len(Kept): as many tokens,
	// not the same ones.
	Kept []int
	// Critical is the layer's share of the critical path; Estimate the
	// estimator's cycles for it.
	Critical, Estimate int64
	// Ops are the MPCA ops in Ops order.
	Ops []OpResult
	// Stages are the cycles of the critical path spent on each other unit
	// for this layer (layernorm1, softmax, ...), on memory and on FIFO
	// latency, in a fixed order.
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
	// Start and End are when the op's first block started and its last one
	// ended on the PEs; ops overlap, so these spans do too.
	Start, End int64
	// Critical is the op's MPCA time on the critical path; Estimate the
	// estimator's cycles for it.
	Critical, Estimate int64
	// Work is the op's real PE work; Fluid that work spread over every PE:
	// no schedule finishes the op in less. Busiest is the busiest PE's work
	// under the policy that ran (under ideal: its lock-step rounds).
	Work, Fluid, Busiest int64
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

// StageResult is the critical path's cycles on one column of a layer.
type StageResult struct {
	Name     string
	Critical int64
}

// Simulate runs in.Images through the accelerator in.Desc executing the
// model in.Weights pruned by in.Pruning: NewAccelerator, then
// Accelerator.Run. Every unit is an actor of the runtime that computes its
// real part of the inference with kernels and charges cycles from its cost
// model (package actors). It validates its input first (every error names
// what is wrong) and fails fast, naming the failing unit, if a unit fails or
// ctx ends. To run several batches on one model, build it once with
// NewAccelerator. With in.TimingOnly it builds with NewTimingAccelerator
// instead, and the run computes no values (see the package doc).
//
// In ideal fidelity the policy is ideal whatever Desc.Balance says, weights
// are on chip and the special-function units, token dropping, patch
// embedding and classifier cost nothing: the PEs then work the
// estimator's lock-step snapshots, computed from the masks they are given,
// and an image takes the estimator's cycles plus the few the dataflow
// cannot hide (FIFO latency where an op waits for a whole sequence).
func Simulate(ctx context.Context, in SimInput) (*SimResult, error) {
	return simulate(ctx, in, nil)
}

// simulate is Simulate with a hook that may replace a unit's body (tests).
func simulate(ctx context.Context, in SimInput, wrap wrapper) (*SimResult, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("simulate: %w", err)
	}
	if in.TimingOnly && in.Weights == nil {
		return nil, fmt.Errorf("simulate: no weights to take the model's shape from")
	}
	a, err := NewAcceleratorFor(in.Weights, in.Pruning, in.DenseBlock, in.Desc, in.TimingOnly)
	if err != nil {
		return nil, err
	}
	return a.run(ctx, in.Images, in.Trace, wrap, false)
}

// wrapper may replace the body of the unit called name.
type wrapper func(name string, body func(*runtime.Ctx) error) func(*runtime.Ctx) error

// Run simulates images, one after another, on a fresh graph of a's units.
// Results are the same whatever else runs concurrently. On an accelerator
// built by NewTimingAccelerator the run is timing-only and the images may
// be nil: only their number counts.
func (a *Accelerator) Run(ctx context.Context, images [][]float32) (*SimResult, error) {
	return a.run(ctx, images, TraceOptions{}, nil, false)
}

// run is Run with a trace, a wrapper of the units' bodies (nil: none), and,
// when record is set, the runtime's dependency record kept in the result's
// Stats.Record for re-timing at other depths.
func (a *Accelerator) run(ctx context.Context, images [][]float32, trace TraceOptions, wrap wrapper, record bool) (*SimResult, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("simulate: %w", err)
	}
	if err := a.checkImages(images); err != nil {
		return nil, err
	}
	if err := trace.check(len(images), len(a.model.Layers)); err != nil {
		return nil, err
	}
	trace.MaxEvents = cmp.Or(trace.MaxEvents, DefaultTraceEvents)
	bt, err := a.wire(images)
	if err != nil {
		return nil, fmt.Errorf("simulate: %w", err)
	}
	opt := runtime.Options{ClockMHz: a.desc.ClockMHz, Record: record}
	if trace.W != nil {
		bt.mpca.TraceBlocks = true
		// Every occupancy change a trace of the cap could show: memory grows
		// with the FIFOs' activity (16 bytes a change), at most the cap each.
		opt.RecordOccupancy = trace.MaxEvents
	}
	for i, name := range bt.net.Actors {
		body := bt.bodies[i]
		if wrap != nil {
			body = wrap(name, body)
		}
		bt.graph.AddActor(name, body, bt.opts[i]...)
	}
	stats, err := bt.graph.Run(ctx, opt)
	if err != nil {
		return nil, fmt.Errorf("simulate %s on %s: %w", a.name, a.desc.Name, err)
	}
	res, err := a.result(bt, stats)
	if err != nil || trace.W == nil {
		return res, err
	}
	if stats.TraceCut, err = a.writeTrace(bt, stats, trace); err != nil {
		return nil, fmt.Errorf("simulate: write trace: %w", err)
	}
	return res, nil
}
