// Package actors holds the hardware units of the modelled ViT accelerator,
// each an actor of package runtime that does its real part of the inference
// with package kernels and charges cycles from its own cost model, and the
// vocabulary they share (ops, mappings, geometry, policies, costs, stages).
//
// The units form a dataflow: activations travel between them in row blocks
// of b tokens (Tile) through bounded timed FIFOs, and a unit starts on a row
// block as soon as it has arrived. One encoder layer (=> a FIFO; MPCA = the
// H CHMs, one shared engine):
//
//	patchembed | residual2 => layernorm1 => MPCA: Q, K, V (on chip), then Q·K^T per head
//	                          layernorm1 => residual1                  (skip: the token buffer)
//	MPCA: Q·K^T => softmax => MPCA: row sums, A·V    softmax => tokendrop (CLS rows)
//	MPCA: W_O => residual1 => layernorm2 => MPCA: FC1                  (layers keeping every token)
//	             residual1 => residual2                                (skip)
//	             residual1 => tokendrop => layernorm2, residual2       (token dropping layers)
//	MPCA: FC1 => gelu => MPCA: FC2 => residual2 => layernorm1 (next layer) | classifier
//	controller => MPCA (the program)         loader i => MPCA (CHM i's weight blocks)
//
// The barriers are the data's: Q·K^T needs all of K, A·V all of V, W_O a
// row's attention over every head, the token dropping module the whole
// sequence.
//
//   - Plan (NewPlan) is the controller's static assignment of every op's
//     output blocks to CHMs, by the mapping it picks, and to PEs, by the
//     policy; with each op's fluid bound and PE loads.
//   - The program (NewProgram) orders the ops' snapshots by the data
//     dependencies, running a producer ahead of its consumer by a window
//     the layer's shape sets; the FIFOs of each loop out of the MPCA and
//     back (Loops) must hold what the program puts on it, but do not change
//     the order. Controller issues it and carries no data.
//   - MPCA computes the snapshots: every PE has its own clock, free-running
//     under the static and balanced policies, in lock-step rounds under the
//     ideal one. An output unit leaves when its last block is done.
//   - Loader streams each CHM's non-zero weight blocks from its memory
//     channel in the order the CHM first needs them.
//   - LayerNorm1, Softmax, Residual1, LayerNorm2, GELU, Residual2: streaming
//     special-function units; TokenDropper: top-k selection, fusion and
//     re-packing; PatchEmbed and Classifier: the dense engines at either end.
//
// Every unit records how its clock moved (Recorder); Walk finds the run's
// critical path from those records. Nothing here sees the analytical
// estimator, and the package knows nothing of packages vit or topology:
// topology translates a model and a description into a Model and a Config
// and wires the units.
package actors
