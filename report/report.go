// Package report holds the results of one vitflow run in a form people and
// programs can read: the Report type, which encodes as the command's JSON
// report, and its renderings: aligned text tables, plots (drawn with
// gonum.org/v1/plot as SVG), and one self-contained HTML page with the
// plots inline and sortable tables. Compare sets reports side by side (read
// back with ReadReport) as text or as a page of its own.
//
// A Report is plain data. The command fills it from the model, the reference
// forward pass and the analytical estimator, and AddSimulation adds a
// simulated run (its critical path, units and FIFOs), so that a library user
// who runs a simulation gets the same report.
package report

import (
	"cmp"
	"slices"

	"vitflow/runtime"
)

// Report is everything one run measured. Fields that only a simulated run
// knows (cycles, units, FIFOs, imbalance, gap) are absent from the JSON of a
// reference run.
type Report struct {
	// Model is the model preset, e.g. "mnist-tiny".
	Model string `json:"model"`
	// Weights is "embedded", "random" or the path of the safetensors file.
	Weights string `json:"weights"`
	// Variant names the embedded weights used, when Weights is "embedded";
	// VariantAbout describes them and VariantTestAccuracy is their reference
	// accuracy on the whole MNIST test set, measured when they were trained.
	Variant             string   `json:"variant,omitempty"`
	VariantAbout        string   `json:"variant_about,omitempty"`
	VariantTestAccuracy *float64 `json:"variant_test_accuracy,omitempty"`
	// Seed seeded the random weights and random images, if any were used.
	Seed    uint64  `json:"seed"`
	Pruning Pruning `json:"pruning"`

	// Topology names the accelerator description (a preset or a file).
	Topology string `json:"topology"`
	// Fidelity is "ideal" or "detailed".
	Fidelity string `json:"fidelity"`
	// Balance is the load-balancing policy the run used.
	Balance  string  `json:"balance"`
	ClockMHz float64 `json:"clock_mhz"`
	// Hardware is every setting of the accelerator description, by its
	// key in a topology file (see TopologySettings).
	Hardware []Setting `json:"hardware,omitempty"`
	// Reference is true when only the golden forward pass ran, no accelerator.
	Reference bool `json:"reference"`
	// TimingOnly is true when the simulation computed no values (topology's
	// timing-only mode): there are no Top1, Logits or Accuracy to report.
	TimingOnly bool `json:"timing_only,omitempty"`

	// Inputs says where the images came from, e.g. "MNIST test images 0-15".
	Inputs string `json:"inputs"`
	Images int    `json:"images"`
	// Top1 is the predicted class of each image.
	Top1 []int `json:"top1"`
	// Labels are the true classes, when known (MNIST).
	Labels []int `json:"labels,omitempty"`
	// Accuracy is the fraction of Top1 equal to Labels, when labels are known.
	Accuracy *float64 `json:"accuracy,omitempty"`
	// Logits of each image, when asked for.
	Logits [][]float32 `json:"logits,omitempty"`

	// CyclesTotal is the simulated time of all images, one after another.
	CyclesTotal int64 `json:"cycles_total,omitempty"`
	// CyclesPerImage is CyclesTotal / Images.
	CyclesPerImage    float64 `json:"cycles_per_image,omitempty"`
	LatencyUSPerImage float64 `json:"latency_us_per_image,omitempty"`
	// ImagesPerSecond is the throughput at the simulated clock.
	ImagesPerSecond float64 `json:"images_per_second,omitempty"`
	// EstimatorCyclesPerImage is the analytical estimate (see docs/DESIGN.md section 3)
	// of one image under the run's real masks and token counts.
	EstimatorCyclesPerImage int64   `json:"estimator_cycles_per_image"`
	EstimatorUSPerImage     float64 `json:"estimator_us_per_image"`

	// PEUtilization is the PEs' real work over their number times the makespan.
	PEUtilization float64 `json:"pe_utilization,omitempty"`

	// Layers break down image 0 layer by layer: the critical path's cycles
	// in each op and unit, beside the estimator's.
	Layers []Layer `json:"layers"`
	// Units and FIFOs are the runtime statistics of the simulated accelerator.
	Units []Unit `json:"units,omitempty"`
	FIFOs []FIFO `json:"fifos,omitempty"`
	// Imbalance is the PE load imbalance of image 0 under each policy.
	Imbalance []Imbalance `json:"imbalance,omitempty"`
	// CriticalPath attributes every cycle of the run to a cause along its
	// critical path; the causes add up to CyclesTotal.
	CriticalPath []GapCause `json:"critical_path,omitempty"`
	// Gap is the simulated cycles minus the estimator's, by cause (the
	// estimator counts MPCA compute only); it adds up to the whole gap.
	Gap []GapCause `json:"gap,omitempty"`
	// Backpressure lists the full FIFOs the critical path went through.
	Backpressure []Backpressure `json:"backpressure,omitempty"`
	// Bottleneck is one sentence naming what limits the run.
	Bottleneck string `json:"bottleneck,omitempty"`
	// TraceCut is the cycle where the run's trace stops because its event
	// cap was reached (absent when the trace is whole or none was written).
	TraceCut int64 `json:"trace_cut,omitempty"`

	// MACs counts one image's multiply-accumulates as the paper
	// does: the patch embedding and the linear layers, zero blocks inside
	// kept heads counted as dense. AttentionMACs counts Q·K^T and A·V,
	// which that count leaves out.
	MACs          Counts `json:"macs"`
	AttentionMACs Counts `json:"attention_macs"`
	// Params counts the stored parameters.
	Params Counts `json:"params"`
}

// Pruning is the static and dynamic pruning a run applied.
type Pruning struct {
	// Source says where the masks came from: "magnitude" (one-shot by weight
	// magnitude), "file" (the weights file's metadata), "embedded" (the
	// embedded model's), or "none".
	Source string `json:"source"`
	// Block is the side of the square weight blocks (0 when not block-pruned).
	Block int `json:"block,omitempty"`
	// Density is the kept fraction asked for (1 for none).
	Density float64 `json:"density"`
	// Keep is the token keep rate k of the TD layers (1: no token dropping).
	Keep     float64 `json:"keep"`
	TDLayers []int   `json:"td_layers"`
}

// Layer is one encoder layer of image 0.
type Layer struct {
	Index     int   `json:"index"`
	TokensIn  int   `json:"tokens_in"`
	TokensOut int   `json:"tokens_out"`
	HeadsKept int   `json:"heads_kept"`
	Cycles    int64 `json:"cycles,omitempty"`
	// EstimatorCycles is the analytical estimate of the layer.
	EstimatorCycles int64 `json:"estimator_cycles"`
	// PEImbalance is the busiest PE's work over the mean PE's, summed over
	// the layer's MPCA ops, under the policy that ran (1 is perfect).
	PEImbalance float64 `json:"pe_imbalance,omitempty"`
	// Ops are the MPCA ops and then the other stages, each in execution order.
	Ops []Op `json:"ops"`
}

// Op is one column of a layer: an MPCA op such as "q" or "fc1", another
// unit such as "softmax" or "tokendrop", or "memory" or "fifo-latency".
type Op struct {
	Name string `json:"name"`
	// Kind is KindMPCA, KindSFU, KindTokenDrop, KindMemory or KindLatency.
	Kind string `json:"kind"`
	// Cycles is the op's or unit's share of the critical path.
	Cycles          int64 `json:"cycles,omitempty"`
	EstimatorCycles int64 `json:"estimator_cycles"`
	// MPCA ops: Fluid is the op's work spread over every PE (no schedule
	// beats it), Busiest the busiest PE's work under the policy that ran.
	Fluid   int64 `json:"fluid,omitempty"`
	Busiest int64 `json:"busiest_pe,omitempty"`
	// PEImbalance is max/mean PE load of an MPCA op under the policy that ran.
	PEImbalance float64 `json:"pe_imbalance,omitempty"`
	// Loads are an MPCA op's PE loads under every policy, the one that ran
	// among them, for the same masks.
	Loads []PolicyLoad `json:"loads,omitempty"`
}

// PolicyLoad is the busiest and the mean PE's work, in cycles, under one
// load-balancing policy.
type PolicyLoad struct {
	Policy string  `json:"policy"`
	Max    float64 `json:"max"`
	Mean   float64 `json:"mean"`
}

// Setting is one setting of the accelerator description: its key in a
// topology file (e.g. "mpca.t") and its value as TOML writes it.
type Setting struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// The kinds of Op.
const (
	KindMPCA      = "mpca"      // a product on the compute array
	KindSFU       = "sfu"       // a special-function unit: LayerNorm, softmax, GELU, residual add
	KindTokenDrop = "tokendrop" // the token dropping module
	KindMemory    = "memory"    // waiting for weights
	KindLatency   = "latency"   // FIFO latency between units
)

// Unit is one hardware unit (an actor) of the simulated accelerator.
type Unit struct {
	Name string `json:"name"`
	// Busy, Starved (waiting for input) and Blocked (waiting for output
	// space) are cycles over the whole run.
	Busy    int64 `json:"busy"`
	Starved int64 `json:"starved"`
	Blocked int64 `json:"blocked"`
	// Utilization is Busy / makespan.
	Utilization float64 `json:"utilization"`
	// StarvedOn and BlockedOn name the FIFO each waited on most ("" if none).
	StarvedOn string `json:"starved_on,omitempty"`
	BlockedOn string `json:"blocked_on,omitempty"`
	// Critical is the unit's time on the critical path, its work and its
	// pipeline latency; Hidden its busy cycles that overlap hid (busy, but
	// off the critical path).
	Critical int64 `json:"critical"`
	Hidden   int64 `json:"hidden"`
}

// FIFO is one link between units.
type FIFO struct {
	Name     string `json:"name"`
	Capacity int    `json:"capacity"`
	// Bytes is the on-chip memory the FIFO needs: Capacity elements of
	// ElementBytes (a weight block, or a row block of activations).
	Bytes        int64 `json:"bytes"`
	ElementBytes int64 `json:"element_bytes"`
	// SetBy is "topology" when a topology file sets the depth, "model" for
	// the links sized by the model (the token buffer's skip links, the
	// command queue), "" when unknown.
	SetBy        string `json:"set_by,omitempty"`
	Elements     int64  `json:"elements"`
	MaxOccupancy int    `json:"max_occupancy"`
	// FullFraction and EmptyFraction are fractions of the makespan.
	FullFraction  float64 `json:"full_fraction"`
	EmptyFraction float64 `json:"empty_fraction"`
	// MeanOccupancy is the time-weighted mean number of elements held.
	MeanOccupancy float64 `json:"mean_occupancy"`
	// Occupancy[k] is the number of cycles the FIFO held k elements
	// (len(Occupancy) == Capacity+1).
	Occupancy []int64 `json:"occupancy,omitempty"`
	// OccupancyOverTime[i] is the mean number of elements held during
	// cycles [i*BucketCycles, (i+1)*BucketCycles) of the run.
	OccupancyOverTime []float64 `json:"occupancy_over_time,omitempty"`
	BucketCycles      int64     `json:"bucket_cycles,omitempty"`
}

// Imbalance is the PE load imbalance under one load-balancing policy: the
// busiest PE's work over the mean, over the whole image (1 is perfect).
type Imbalance struct {
	Policy string `json:"policy"`
	// MaxOverMean is the busiest PE's work over the mean PE's, summed over
	// every MPCA op of image 0.
	MaxOverMean float64 `json:"max_over_mean"`
	// ComputeCycles is the busiest PE's work summed over those ops: the
	// MPCA's compute time under this policy, were the ops not overlapped.
	ComputeCycles int64 `json:"compute_cycles"`
	// FluidCycles is the ops' fluid bounds summed: their work spread evenly
	// over every PE, which no policy can beat.
	FluidCycles int64 `json:"fluid_cycles"`
	// Used marks the policy the run simulated.
	Used bool `json:"used"`
}

// GapCause is one cause's cycles: a part of the critical path (the parts
// add up to the run) or of the difference between the simulated cycles and
// the estimator's (the parts add up to the whole gap).
type GapCause struct {
	Cause string `json:"cause"`
	// Cycles is the part over all images; PerImage is Cycles / Images.
	Cycles   int64   `json:"cycles"`
	PerImage float64 `json:"per_image"`
}

// Backpressure is a full FIFO that the critical path went through: its
// writer waited Cycles for space, which the reader's work explains.
type Backpressure struct {
	FIFO   string `json:"fifo"`
	Depth  int    `json:"depth"`
	Bytes  int64  `json:"bytes"`
	Cycles int64  `json:"cycles"`
}

// Counts is a dense count beside the pruned one.
type Counts struct {
	Dense  int64 `json:"dense"`
	Pruned int64 `json:"pruned"`
}

// SetAccuracy sets Accuracy from Top1 and Labels, when every image has a label.
func (r *Report) SetAccuracy() {
	if len(r.Labels) != len(r.Top1) || len(r.Top1) == 0 {
		return
	}
	acc := float64(r.correct()) / float64(len(r.Top1))
	r.Accuracy = &acc
}

// correct counts the images whose Top1 is their label.
func (r *Report) correct() int {
	n := 0
	for i, c := range r.Top1 {
		if c == r.Labels[i] {
			n++
		}
	}
	return n
}

// Units converts a run's actor statistics, in the order the actors were added.
func Units(s *runtime.Stats) []Unit {
	units := make([]Unit, len(s.Actors))
	for i := range s.Actors {
		a := &s.Actors[i]
		units[i] = Unit{
			Name:        a.Name,
			Busy:        a.Busy,
			Starved:     a.TotalStarved(),
			Blocked:     a.TotalBlocked(),
			Utilization: a.Utilisation,
			StarvedOn:   most(a.Starved),
			BlockedOn:   most(a.Blocked),
		}
	}
	return units
}

// most names the port with the most cycles, the first on a tie; "" if none has any.
func most(ports []runtime.PortCycles) string {
	best := runtime.PortCycles{}
	for _, p := range ports {
		if p.Cycles > best.Cycles {
			best = p
		}
	}
	return best.FIFO
}

// FIFOs converts a run's FIFO statistics, in the order the FIFOs were created.
func FIFOs(s *runtime.Stats) []FIFO {
	fifos := make([]FIFO, len(s.FIFOs))
	for i, f := range s.FIFOs {
		fifos[i] = FIFO{
			Name:          f.Name,
			Capacity:      f.Capacity,
			Elements:      f.Elements,
			MaxOccupancy:  f.MaxOccupancy,
			FullFraction:  f.FullFraction,
			EmptyFraction: f.EmptyFraction,
			Occupancy:     slices.Clone(f.Occupancy),
			BucketCycles:  f.SeriesBucket,
		}
		var held, total int64
		for k, c := range f.Occupancy {
			held += int64(k) * c
			total += c
		}
		if total > 0 {
			fifos[i].MeanOccupancy = float64(held) / float64(total)
		}
		// Means per bucket, up to the makespan: the series leaves out
		// trailing empty buckets, and the last bucket may be partial.
		if f.SeriesBucket > 0 && s.Makespan > 0 {
			n := (s.Makespan + f.SeriesBucket - 1) / f.SeriesBucket
			means := make([]float64, n)
			for j := range means {
				if j < len(f.Series) {
					span := min(f.SeriesBucket, s.Makespan-int64(j)*f.SeriesBucket)
					means[j] = f.Series[j] / float64(span)
				}
			}
			fifos[i].OccupancyOverTime = means
		}
	}
	return fifos
}

// Busiest returns up to n units by utilisation, highest first (ties by name).
func Busiest(units []Unit, n int) []Unit {
	return top(units, n, func(u Unit) float64 { return u.Utilization }, func(u Unit) string { return u.Name })
}

// MostBlocked returns up to n units that waited for space in a full output
// FIFO (backpressure), most blocked cycles first (ties by name).
func MostBlocked(units []Unit, n int) []Unit {
	var blocked []Unit
	for _, u := range units {
		if u.Blocked > 0 {
			blocked = append(blocked, u)
		}
	}
	return top(blocked, n, func(u Unit) float64 { return float64(u.Blocked) }, func(u Unit) string { return u.Name })
}

// FullestFIFOs returns up to n FIFOs that were ever full, by the fraction of
// time full, most first (ties by name).
func FullestFIFOs(fifos []FIFO, n int) []FIFO {
	var full []FIFO
	for _, f := range fifos {
		if f.FullFraction > 0 {
			full = append(full, f)
		}
	}
	return top(full, n, func(f FIFO) float64 { return f.FullFraction }, func(f FIFO) string { return f.Name })
}

func top[T any](xs []T, n int, key func(T) float64, name func(T) string) []T {
	sorted := slices.Clone(xs)
	slices.SortStableFunc(sorted, func(a, b T) int {
		if c := cmp.Compare(key(b), key(a)); c != 0 {
			return c
		}
		return cmp.Compare(name(a), name(b))
	})
	return sorted[:min(n, len(sorted))]
}
