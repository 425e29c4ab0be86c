package topology

import "math"

// Resources is a first-order estimate of what an accelerator needs on an
// AMD UltraScale+ FPGA (DSP48E2 slices, 36 Kbit block RAMs, 288 Kbit
// UltraRAMs), for comparing design points, not for sign-off: it counts
// multipliers and storage capacity only, not logic, routing or the
// memory ports a layout needs.
//
// The formulas:
//   - A multiplier of w-bit operands takes ceil(w/27)*ceil(w/18) DSP48E2
//     slices (27x18 multiplier tiles); two 8-bit multiplies share one slice,
//     so w <= 8 takes half a slice.
//   - MPCA slices = max(t*c*h*p*p, patch_embed.macs_per_cycle,
//     classifier.macs_per_cycle) multipliers of a weight by an activation,
//     whose width is the wider of data.bytes_per_weight and
//     data.bytes_per_activation: the patch embedding and the classifier run
//     on the MPCA's multipliers.
//   - Special-function slices, at data.bytes_per_activation: one multiplier
//     per element a cycle of softmax (the exponential's polynomial) and of
//     LayerNorm (the scale), two of GELU (its polynomial), and one per
//     fusion multiply-accumulate a cycle of the token dropping module.
//     Residual adds and comparisons are fabric logic.
//   - Storage: each FIFO (every link, the model-sized token buffer and
//     command queue included) holds depth * element bytes. One under 1 KiB
//     fits in LUTRAM; one of 32 KiB or more takes ceil(bytes/32 KiB)
//     UltraRAMs; any other ceil(bytes/4 KiB) block RAMs (the data width of a
//     36 Kbit RAM without its parity bits). Weights kept on chip
//     (memory.weights_on_chip) take ceil(bytes/32 KiB) UltraRAMs.
type Resources struct {
	DSPs      int   `json:"dsps"`
	MPCADSPs  int   `json:"mpca_dsps"`
	BRAM36    int   `json:"bram36"`
	URAMs     int   `json:"urams"`
	FIFOBytes int64 `json:"fifo_bytes"`
	// WeightBytes are the weights stored on chip (0 when they stream from
	// off-chip memory).
	WeightBytes int64 `json:"weight_bytes"`
	// OnChipBytes = FIFOBytes + WeightBytes.
	OnChipBytes int64 `json:"on_chip_bytes"`
}

// Storage granules of the estimate, in data bytes.
const (
	lutramBytes = 1 << 10
	bramBytes   = 4 << 10
	uramBytes   = 32 << 10
)

// EstimateResources estimates what d needs with the links of a built
// accelerator (SimResult.Links) and weights stored parameters (counted as
// data.bytes_per_weight each when they are on chip).
func EstimateResources(d Description, links []LinkInfo, weights int64) Resources {
	var r Resources
	macs := max(d.MPCA.MACsPerCycle(), d.PatchEmbed.MACsPerCycle, d.Classifier.MACsPerCycle)
	r.MPCADSPs = dsps(macs, max(d.Data.BytesPerWeight, d.Data.BytesPerActivation))
	sfu := d.Softmax.ElementsPerCycle + d.LayerNorm.ElementsPerCycle + 2*d.GELU.ElementsPerCycle + d.TokenDrop.FusionMACsPerCycle
	r.DSPs = r.MPCADSPs + dsps(sfu, d.Data.BytesPerActivation)
	for _, k := range links {
		r.FIFOBytes += k.Bytes
		switch {
		case k.Bytes < lutramBytes:
		case k.Bytes >= uramBytes:
			r.URAMs += int(ceilDiv64(k.Bytes, uramBytes))
		default:
			r.BRAM36 += int(ceilDiv64(k.Bytes, bramBytes))
		}
	}
	if d.Memory.WeightsOnChip {
		r.WeightBytes = int64(math.Ceil(float64(weights) * d.Data.BytesPerWeight))
		r.URAMs += int(ceilDiv64(r.WeightBytes, uramBytes))
	}
	r.OnChipBytes = r.FIFOBytes + r.WeightBytes
	return r
}

// dsps is the DSP48E2 slices of n multipliers of operands of the given bytes.
func dsps(n int, bytes float64) int {
	bits := int(math.Ceil(bytes * 8))
	if bits <= 8 {
		return (n + 1) / 2
	}
	return n * ceilDiv(bits, 27) * ceilDiv(bits, 18)
}

func ceilDiv64(a, b int64) int64 { return (a + b - 1) / b }
