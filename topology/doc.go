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
// # The estimator and its schedule
//
// The MPCA has h CHMs, each a t×c array of PEs, each PE a p×p systolic array.
// An op produces b×b output blocks; a PE computes one output block by
// accumulating block products over the ceil(N/b) blocks of the reduction,
// and one b×b by b×b product costs ceil(b/p)^2 * b cycles.
//
// A snapshot is one round in which every PE of every CHM in use produces one
// output block (for the row sums: every PE of one PE column produces one
// b-vector of row sums). The op's Mapping decides which output blocks go to
// which CHM; within a CHM the blocks are dealt to the t*c PEs in turn, so
// the CHM with the most blocks needs Cost.Snapshots snapshots and PE 0 of CHM 0
// is always a busiest PE. An op's Cost.Cycles is the time of that busiest
// PE; all PEs run in parallel and ops run one after another, so an image
// takes the sum of its ops' cycles (Estimate).
//
// For a linear layer, Cycles = ceil(Snapshots * ceil(N/b) * ceil(b/p)^2 * b * phi):
// a snapshot's block products are charged at the weight's average block
// density phi, which is the ideal policy's assumption that every PE gets
// exactly the average number of non-zero blocks (a fraction of a block
// product, in cycles, since the ceiling comes last). A simulation that
// reproduces the estimator (ideal fidelity, ideal policy) therefore charges
// per op, not per real non-zero block: every PE in use works through the op's
// Snapshots snapshots, snapshot i costing Cost.SnapshotCycles(i) and emitting
// the PE's i-th real output block if it has one (padding slots of the mapping,
// partial row or column blocks and the masks' actual non-zero counts do not
// change the charge), so each PE's work in the op is exactly Cycles:
//
//	sum over i < Snapshots of floor((i+1)*Cycles/Snapshots) - floor(i*Cycles/Snapshots) = Cycles
//
// The head-wise products and row sums are dense, so each of their snapshots
// costs the same whole number of cycles and SnapshotCycles is exact there too.
// Under the static and balanced policies a PE is charged instead
// ceil(b/p)^2 * b cycles per real non-zero block pair it computes, so
// imbalance comes from the masks.
//
// # Simulation
//
// NewAccelerator packs a model's pruned weights into block-sparse form, plans
// each op's mapping and PE schedule, and Accelerator.Run executes a batch of
// images on a fresh graph of actors (package actors) on the runtime: real
// logits, cycles per image, layer and op beside the estimator's, PE loads
// under every policy, the runtime's unit and FIFO statistics, and the gap to
// the estimator split by cause (Gap). Simulate does both in one call.
package topology
