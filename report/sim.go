package report

import (
	"bytes"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"

	"vitflow/actors"
	"vitflow/topology"
)

// AddSimulation fills in the simulated part of r from a run's results:
// predictions and accuracy (when r.Labels are set; none from a
// timing-only run, which r.TimingOnly then says), latency and throughput,
// the critical path by cause and the gap to the estimator, image 0 layer by
// layer, PE load under every policy, and the units and FIFOs. The error is
// TopologySettings'.
func AddSimulation(r *Report, res *topology.SimResult) error {
	r.TimingOnly = res.TimingOnly
	if !res.TimingOnly {
		for _, img := range res.Images {
			r.Top1 = append(r.Top1, img.Top1)
			r.Logits = append(r.Logits, img.Logits)
		}
		r.SetAccuracy()
	}
	clock := res.Desc.ClockMHz
	r.Balance = string(res.Policy)
	r.CyclesTotal = res.Cycles
	r.CyclesPerImage = res.CyclesPerImage
	r.LatencyUSPerImage = res.CyclesPerImage / clock
	if res.CyclesPerImage > 0 {
		r.ImagesPerSecond = clock * 1e6 / res.CyclesPerImage
	}
	hw, err := TopologySettings(res.Desc)
	if err != nil {
		return err
	}
	r.Hardware = hw
	r.EstimatorCyclesPerImage = res.Estimate.Cycles
	r.EstimatorUSPerImage = topology.Microseconds(res.Estimate.Cycles, clock)
	r.PEUtilization = res.PEUtilisation

	n := float64(len(res.Images))
	att := res.Path
	// The MPCA's part of the gap: its time on the critical path minus the
	// estimator's. Below the estimate, say why: some PE was busy for less
	// time than the estimate (a schedule tighter than the lock-step
	// snapshots), or busy but off the path (hidden behind another cause).
	onPath := att.Cycles(topology.CauseMPCAFluid) + att.Cycles(topology.CauseMPCAAbove)
	est := res.Estimate.Cycles * int64(len(res.Images))
	busy := res.MPCABusy
	gap := func(cause string, c int64) GapCause {
		return GapCause{Cause: cause, Cycles: c, PerImage: float64(c) / n}
	}
	if onPath >= est {
		r.Gap = append(r.Gap, gap("MPCA compute beyond the estimator's snapshots", onPath-est))
	} else {
		if hidden := min(busy, est) - onPath; hidden > 0 {
			r.Gap = append(r.Gap, gap("MPCA compute hidden off the critical path", -hidden))
		}
		if tighter := est - max(busy, onPath); tighter > 0 {
			r.Gap = append(r.Gap, gap("MPCA schedule tighter than the estimator's lock-step snapshots", -tighter))
		}
	}
	for _, c := range att.Causes {
		g := gap(string(c.Cause), c.Cycles)
		r.CriticalPath = append(r.CriticalPath, g)
		if c.Cause != topology.CauseMPCAFluid && c.Cause != topology.CauseMPCAAbove {
			r.Gap = append(r.Gap, g)
		}
	}
	for _, b := range att.Backpressure {
		r.Backpressure = append(r.Backpressure, Backpressure{FIFO: b.Name, Depth: b.Depth, Bytes: b.Bytes, Cycles: b.Cycles})
	}
	r.Bottleneck = att.Bottleneck
	r.TraceCut = res.Stats.TraceCut

	img := res.Images[0]
	type sum struct{ max, mean, fluid float64 }
	loads := map[topology.Policy]*sum{}
	var policies []topology.Policy
	for _, l := range img.Layers {
		rl := Layer{Index: l.Index, TokensIn: l.TokensIn, TokensOut: l.TokensOut, HeadsKept: l.HeadsKept,
			Cycles: l.Critical, EstimatorCycles: l.Estimate}
		var layerMax, layerMean float64
		for _, o := range l.Ops {
			rl.Ops = append(rl.Ops, Op{Name: o.Op.String(), Kind: KindMPCA, Cycles: o.Critical, EstimatorCycles: o.Estimate,
				Fluid: o.Fluid, Busiest: o.Busiest, PEImbalance: o.Load.Imbalance(), Loads: policyLoads(o.Loads)})
			layerMax += o.Load.Max
			layerMean += o.Load.Mean
			for _, pl := range o.Loads {
				s, ok := loads[pl.Policy]
				if !ok {
					s = &sum{}
					loads[pl.Policy] = s
					policies = append(policies, pl.Policy)
				}
				s.max += pl.Max
				s.mean += pl.Mean
				s.fluid += float64(o.Fluid)
			}
		}
		rl.PEImbalance = topology.PELoad{Max: layerMax, Mean: layerMean}.Imbalance()
		for _, s := range l.Stages {
			kind := KindSFU
			switch s.Name {
			case actors.StageTokenDrop.String():
				kind = KindTokenDrop
			case actors.StageMemory.String():
				kind = KindMemory
			case topology.ColumnLatency:
				kind = KindLatency
			}
			rl.Ops = append(rl.Ops, Op{Name: s.Name, Kind: kind, Cycles: s.Critical})
		}
		r.Layers = append(r.Layers, rl)
	}
	for _, p := range policies {
		s := loads[p]
		r.Imbalance = append(r.Imbalance, Imbalance{Policy: string(p), MaxOverMean: topology.PELoad{Max: s.max, Mean: s.mean}.Imbalance(),
			ComputeCycles: int64(s.max + 0.5), FluidCycles: int64(s.fluid + 0.5), Used: p == res.Policy})
	}
	r.Units = Units(res.Stats)
	for i := range r.Units {
		for _, u := range att.Units {
			if u.Name == r.Units[i].Name {
				r.Units[i].Critical, r.Units[i].Hidden = u.Critical, u.Hidden
			}
		}
	}
	r.FIFOs = FIFOs(res.Stats)
	for i := range r.FIFOs {
		for _, k := range res.Links {
			if k.Name == r.FIFOs[i].Name {
				r.FIFOs[i].Bytes, r.FIFOs[i].ElementBytes, r.FIFOs[i].SetBy = k.Bytes, k.ElementBytes, "model"
				if k.Sizable {
					r.FIFOs[i].SetBy = "topology"
				}
			}
		}
	}
	return nil
}

func policyLoads(loads []topology.PELoad) []PolicyLoad {
	out := make([]PolicyLoad, len(loads))
	for i, l := range loads {
		out[i] = PolicyLoad{Policy: string(l.Policy), Max: l.Max, Mean: l.Mean}
	}
	return out
}

// TopologySettings lists every setting of d by its key in a topology file
// ("mpca.t", "fifo.depths.mpca->gelu"), sorted by key, with the value as
// TOML writes it: the description's own encoding, so that the report names
// each setting the way a user sets it. An error if d cannot be encoded,
// which a validated description always can.
func TopologySettings(d topology.Description) ([]Setting, error) {
	var buf bytes.Buffer
	if err := d.WriteTOML(&buf); err != nil {
		return nil, fmt.Errorf("report: the topology's settings: %w", err)
	}
	var m map[string]any
	if _, err := toml.Decode(buf.String(), &m); err != nil {
		return nil, fmt.Errorf("report: the topology's settings: %w", err)
	}
	var out []Setting
	var walk func(prefix string, m map[string]any)
	walk = func(prefix string, m map[string]any) {
		for k, v := range m {
			key := prefix + k
			if sub, ok := v.(map[string]any); ok {
				walk(key+".", sub)
				continue
			}
			out = append(out, Setting{Key: key, Value: tomlValue(v)})
		}
	}
	walk("", m)
	slices.SortFunc(out, func(a, b Setting) int { return strings.Compare(a.Key, b.Key) })
	return out, nil
}

// tomlValue formats a decoded TOML value: strings quoted, numbers as Go
// prints them, arrays in brackets.
func tomlValue(v any) string {
	switch v := v.(type) {
	case string:
		return strconv.Quote(v)
	case []any:
		parts := make([]string, len(v))
		for i, x := range v {
			parts[i] = tomlValue(x)
		}
		return "[" + strings.Join(parts, ", ") + "]"
	default:
		return fmt.Sprint(v)
	}
}
