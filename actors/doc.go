// Package actors holds the hardware units of the modelled ViT accelerator
// (DESIGN.md section 3), each an actor of package runtime that does its real
// part of the inference with package kernels and charges cycles from its own
// cost model:
//
//   - Controller: runs the layer program of every image (patch embedding, per
//     encoder layer LN1, Q, K, V, Q·K^T, softmax, row sums, A·V, W_O,
//     residual, token dropping, LN2, FC1, GELU, FC2, residual, then the
//     classifier), dispatching each stage to its unit and waiting for it.
//   - CHM: one compute head module, a T×C array of P×P systolic PEs. It
//     computes the output block-columns (or heads) its share of a Schedule
//     gives it, really, and charges the busiest PE's work.
//   - Loader: streams the CHMs' non-zero weight blocks from off-chip memory,
//     in the order the CHMs consume them, at the memory's bandwidth.
//   - SFU: a special-function unit (LayerNorm, softmax, GELU, residual add).
//   - TokenDropper: top-k token selection, fusion and re-packing.
//   - PatchEmbed and Classifier: the dense engines at either end.
//
// The assignment of output blocks to CHMs and PEs (NewSchedule) is static:
// it depends on the masks, the token counts and the policy, not on the image,
// so it is computed once when the accelerator is built. The package knows
// nothing of the vit or topology packages: package topology translates a
// model and a description into a Model and a Config and wires the units.
package actors
