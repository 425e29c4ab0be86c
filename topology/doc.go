// Package topology describes the modelled accelerator: its description (a
// human-editable TOML file or a built-in preset, every field validated), the
// analytical latency estimator of the paper's authors (see docs/DESIGN.md section 3),
// and the builder that wires a model and a description into a graph of
// hardware actors and runs it.
//
// # Descriptions
//
// A Description holds the MPCA geometry, the clock, the load-balancing policy,
// the fidelity, FIFO depths and latency, the off-chip memory, data widths,
// the special-function units, the token dropping module, and the patch
// embedding and classifier engines. Load takes a preset name (paper, u250,
// small) or a TOML file; a file may start from a preset:
//
//	base = "u250"
//	balance = "static"
//	[memory]
//	bandwidth_bytes_per_cycle = 8.0
//
// Description.WriteTOML writes a complete file to start editing from.
//
// # The estimator
//
// The MPCA has h CHMs, each a t×c array of PEs, each PE a p×p systolic array.
// An op produces b×b output blocks; a PE computes one output block by
// accumulating block products over the ceil(N/b) blocks of the reduction,
// and one b×b by b×b product costs ceil(b/p)^2 * b cycles. Estimate is the
// paper's model: each op in lock-step snapshots of the cheaper of its two
// mappings (LinearCost, HeadwiseCost, RowSumCost), a linear layer's blocks
// charged at its average block density phi, ops one after another, and
// nothing else charged. No unit of the simulation sees these numbers.
//
// # Simulation
//
// NewAccelerator packs a model's pruned weights into block-sparse form and
// has the controller plan every op (mapping, blocks of each PE) and order
// the program (package actors); Accelerator.Run streams a batch of images
// through a fresh graph of those units on the runtime. The result has real
// logits, cycles per image, each op's span, work, fluid bound and PE loads
// under every policy, the runtime's unit and FIFO statistics, and the run's
// critical path attributed to causes (Attribution), from which the report
// takes the gap to the estimator. Simulate does both in one call;
// SimResult.Append joins runs of one accelerator end to end.
//
// # Timing-only runs
//
// A sweep over hardware and pruning wants cycles, not logits.
// NewTimingAccelerator (or Simulate with SimInput.TimingOnly) builds a
// model from its shape and the masks of its pruning alone: the weight
// matrices are packed to the pattern of their kept blocks, with no values,
// and planned and ordered as NewAccelerator does. Its runs use the same
// units, which skip their kernels, send tiles of the same shape without
// values and charge the same cycles; the token dropping module keeps the
// first ceil(k(N-1)) positions instead of the best-scoring ones. The
// result says TimingOnly, with no logits and Top1 -1.
//
// A timing-only run gives exactly the full run's cycles, per-image and
// per-op times, statistics, critical path and trace when timing depends
// on the kept tokens only through their count, on the weights only
// through the masks (block kept or not, neuron kept, head kept), and no
// unit chooses by arrival time or by value. In this model all three hold:
// a special-function unit charges for a tile's rows times columns; the
// token dropping module's time (actors.TokenDropCost) and the length of
// the sequence it sends depend on how many tokens it keeps; the MPCA's
// blocks, the loaders' streams, the plan and the program come from the
// packed matrices' structure, which the masks decide (a kept block of
// zeros costs what any kept block costs), and from the token counts and
// the policy; every unit takes its inputs in an order fixed by the
// program, and none uses runtime.Select or PeekAt (the MPCA's RecvAt reads
// an element's visible time, a time, not a value). It would break with a
// data-dependent early exit, a value-based sparsity skip (zero
// activations, zero weights inside kept blocks, an attention threshold), a
// token dropper that keeps the tokens above a score threshold (their count
// then depends on values) or whose selection time depends on the scores'
// order, or a selector that takes whichever input arrives first on the
// host (a Go select, a race between goroutines): a timing-only unit
// finishes its host work sooner, so such a race can go the other way.
// The rule is stricter than it must be about arrival: a choice by
// simulated arrival time, as runtime.Select makes it, sees the same times
// in both runs and so would keep them equal, but it lets which values go
// where depend on timing, and the rule keeps a unit's order checkable by
// reading the unit alone. One more difference: a full run fails when a
// value is not finite; a timing-only run has no values to fail on.
//
// # FIFO sizing
//
// SizeFIFOs finds, for an accelerator and a batch, the smallest depth of
// every sizable FIFO that keeps the run within a tolerance (1% by default)
// of its latency with unbounded FIFOs, and what that saves on chip
// (Sizing.WriteText prints the table; Sizing.Description has the depths).
// It lowers one FIFO at a time to its smallest depth within the bound, the
// others as chosen so far; a deeper FIFO never slows a run, so one element
// less than any chosen depth breaks the bound or cannot run. Candidates
// are re-timed from a recorded run (runtime.Record), which is exact: no
// unit of this accelerator decides anything by time (docs/DESIGN.md,
// "Automatic FIFO sizing"). The sizer's runs are timing-only whatever the
// accelerator: by the rule above they give the full run's cycles, in a
// fraction of its time.
package topology
