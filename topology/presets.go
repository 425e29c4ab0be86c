package topology

import (
	"fmt"
	"strings"
)

// presets are built by functions so that every caller gets its own value.
var presets = []struct {
	name string
	make func() Description
}{
	{"paper", paper},
	{"u250", u250},
	{"small", small},
}

// PresetNames lists the built-in descriptions.
func PresetNames() []string {
	names := make([]string, len(presets))
	for i, p := range presets {
		names[i] = p.name
	}
	return names
}

// Preset returns the built-in description called name.
func Preset(name string) (Description, error) {
	for _, p := range presets {
		if p.name == name {
			return p.make(), nil
		}
	}
	return Description{}, fmt.Errorf("unknown topology preset %q (have %s)", name, strings.Join(PresetNames(), ", "))
}

// paper is the accelerator of the paper (docs/DESIGN.md section 3) as its authors' estimator
// sees it: the u250 MPCA with weights on chip, free special-function units and
// token dropping, and ideal load balance. The detailed-only fields keep the
// u250 values so that switching fidelity to detailed gives a sane machine.
func paper() Description {
	d := u250()
	d.Name = "paper"
	d.Fidelity = FidelityIdeal
	d.Balance = PolicyIdeal
	d.Memory.WeightsOnChip = true
	return d
}

// u250 is a Xilinx Alveo U250-class card (XCU250: 12,288 DSP48E2 slices, four
// DDR4-2400 DIMMs, four SLRs) running the paper's MPCA. Assumptions, since the
// paper names no board, data type or memory system:
func u250() Description {
	return Description{
		Name:     "u250",
		Fidelity: FidelityDetailed,
		// 300 MHz is the paper's MPCA clock; a DSP-based systolic design closes
		// timing there on UltraScale+.
		ClockMHz: 300,
		Balance:  PolicyBalanced,
		// t=12, c=2, h=4, p=8: 6,144 16-bit MACs a cycle, one DSP48E2 each, so
		// half the card's DSPs; the rest is left for the special-function units.
		MPCA: Geometry{T: 12, C: 2, H: 4, P: 8},
		FIFO: FIFOs{
			// 2 cycles: a register slice on each link (links cross SLRs).
			LatencyCycles: 2,
			// 1,024 weight blocks per CHM (512 KiB of URAM at b=16 and 16-bit
			// weights; 2 MiB for the four CHMs, of the card's ~45 MB): a CHM's
			// PEs are weight-stationary, each holding its block-columns for
			// the whole op, so a CHM needs all of an op's columns early. This
			// holds one op's non-zero blocks for a DeiT-S CHM (FC1 at density
			// 1: 576), so the loader fetches the next op while this one
			// computes. At 64 blocks the MPCA waits for memory at every op.
			WeightDepth: 1024,
			// Row blocks into the MPCA (LayerNorm, softmax, GELU outputs): 32
			// row blocks of up to 1,536 values (96 KiB at b=16), enough for
			// Q·K^T to run a few row blocks ahead of A·V and FC1 ahead of FC2
			// while softmax and GELU work.
			ActivationDepth: 32,
			// Row blocks out of the MPCA, the same size and the same reason.
			OutputDepth: 32,
			// Links between the other units: 16 row blocks, small LUTRAM
			// FIFOs since those units stream at similar rates.
			SFUDepth: 16,
			// Into and out of the token dropping module, which takes and gives
			// whole sequences: 16 row blocks.
			TokenDropDepth: 16,
		},
		Memory: Memory{
			WeightsOnChip: false,
			// DDR4-2400 on a 64-bit channel: 2400 MT/s * 8 B = 19.2 GB/s, four
			// channels 76.8 GB/s = 256 B/cycle at 300 MHz peak; long sequential
			// weight bursts sustain about 80% (refresh, row switches, AXI
			// overhead): 204.8 B/cycle.
			BandwidthBytesPerCycle: 204.8,
			// About 200 ns from read request to first data through the memory
			// controller and the AXI interconnect: 60 cycles at 300 MHz.
			LatencyCycles: 60,
			Channels:      4,
		},
		// 16-bit fixed point weights and activations.
		Data: Data{BytesPerWeight: 2, BytesPerActivation: 2},
		// Softmax: 16 exp lanes per CHM (LUT + DSP exponentials), 64 elements a
		// cycle; 24 cycles through exp, accumulate, reciprocal and scale.
		// (The row sums themselves run on the MPCA, as in the paper.)
		Softmax: Unit{ElementsPerCycle: 64, LatencyCycles: 24},
		// LayerNorm: 32 elements a cycle; 40 cycles for the mean/variance
		// adder trees over D=384 (9 levels each), reciprocal square root and scale.
		LayerNorm: Unit{ElementsPerCycle: 32, LatencyCycles: 40},
		// GELU: piecewise-polynomial erf, 64 elements a cycle, 8 cycles deep.
		GELU: Unit{ElementsPerCycle: 64, LatencyCycles: 8},
		// Residual add: 64 adders, 2 cycles.
		Residual: Unit{ElementsPerCycle: 64, LatencyCycles: 2},
		TokenDrop: TokenDrop{
			// A streaming insertion top-k: one score a cycle, compared against
			// every held slot in parallel; a 64-comparator bitonic network as
			// the alternative.
			Selection:      SelectStreaming,
			ScoresPerCycle: 1,
			Comparators:    64,
			// 16 cycles to average the CLS row over the kept heads (adder tree) and start.
			LatencyCycles: 16,
			// Fusion and re-packing at 64 elements a cycle, matching the residual path.
			FusionMACsPerCycle:     64,
			RepackElementsPerCycle: 64,
		},
		// Patch embedding is a dense 196×768 by 768×384 GEMM: assumed to run
		// on the MPCA at its peak, with 64 cycles of pipeline fill.
		PatchEmbed: MACUnit{MACsPerCycle: 6144, LatencyCycles: 64},
		// The classifier multiplies one token: a b-row block that holds a
		// single real row uses 1/16 of the MPCA (6144/16 = 384 MACs a cycle).
		Classifier: MACUnit{MACsPerCycle: 384, LatencyCycles: 64},
	}
}

// small is a tiny machine for fast tests: 2 CHMs of 2×2 PEs at 200 MHz, one
// DDR4-2400 channel, and shallow FIFOs (4 elements: the weight FIFOs hold
// one block-column of mnist-tiny's Q) so that backpressure shows early.
func small() Description {
	return Description{
		Name:     "small",
		Fidelity: FidelityDetailed,
		ClockMHz: 200,
		Balance:  PolicyBalanced,
		MPCA:     Geometry{T: 2, C: 2, H: 2, P: 8},
		FIFO: FIFOs{LatencyCycles: 1, WeightDepth: 4, ActivationDepth: 4, OutputDepth: 4,
			SFUDepth: 4, TokenDropDepth: 4},
		// 19.2 GB/s at 200 MHz = 96 B/cycle peak, 80% sustained; 200 ns = 40 cycles.
		Memory:    Memory{BandwidthBytesPerCycle: 76.8, LatencyCycles: 40, Channels: 1},
		Data:      Data{BytesPerWeight: 2, BytesPerActivation: 2},
		Softmax:   Unit{ElementsPerCycle: 16, LatencyCycles: 24},
		LayerNorm: Unit{ElementsPerCycle: 8, LatencyCycles: 40},
		GELU:      Unit{ElementsPerCycle: 16, LatencyCycles: 8},
		Residual:  Unit{ElementsPerCycle: 16, LatencyCycles: 2},
		TokenDrop: TokenDrop{Selection: SelectStreaming, ScoresPerCycle: 1, Comparators: 16,
			LatencyCycles: 16, FusionMACsPerCycle: 16, RepackElementsPerCycle: 16},
		PatchEmbed: MACUnit{MACsPerCycle: 512, LatencyCycles: 16},
		Classifier: MACUnit{MACsPerCycle: 32, LatencyCycles: 16},
	}
}
