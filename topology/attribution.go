package topology

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	"vitflow/actors"
	"vitflow/kernels"
	"vitflow/runtime"
)

// Cause is one reason the critical path of a run spent cycles.
type Cause string

// The causes, in the order reports list them.
const (
	CauseMPCAFluid     Cause = "MPCA compute at the fluid bound"
	CauseMPCAAbove     Cause = "MPCA compute above the fluid bound (imbalance, padding)"
	CauseMemory        Cause = "waiting for weights (memory)"
	CauseLayerNorm1    Cause = "layernorm1"
	CauseSoftmax       Cause = "softmax"
	CauseResidual1     Cause = "residual1"
	CauseLayerNorm2    Cause = "layernorm2"
	CauseGELU          Cause = "gelu"
	CauseResidual2     Cause = "residual2"
	CauseTokenDrop     Cause = "token dropping module"
	CauseEmbedClassify Cause = "patch embedding and classifier"
	CauseControl       Cause = "controller"
	CauseLatency       Cause = "FIFO latency between units"
)

// Causes lists every Cause in report order.
var Causes = []Cause{CauseMPCAFluid, CauseMPCAAbove, CauseMemory, CauseLayerNorm1, CauseSoftmax, CauseResidual1,
	CauseLayerNorm2, CauseGELU, CauseResidual2, CauseTokenDrop, CauseEmbedClassify, CauseControl, CauseLatency}

// stageCause is the cause of a unit's own work on the critical path.
var stageCause = map[actors.Stage]Cause{
	actors.StageControl: CauseControl, actors.StageMemory: CauseMemory, actors.StageEmbed: CauseEmbedClassify,
	actors.StageLayerNorm1: CauseLayerNorm1, actors.StageSoftmax: CauseSoftmax, actors.StageResidual1: CauseResidual1,
	actors.StageTokenDrop: CauseTokenDrop, actors.StageLayerNorm2: CauseLayerNorm2, actors.StageGELU: CauseGELU,
	actors.StageResidual2: CauseResidual2, actors.StageClassifier: CauseEmbedClassify,
}

// sortBackpressure orders full FIFOs by their cycles on the critical path,
// most first (ties by name).
func sortBackpressure(lp []LinkPath) {
	slices.SortFunc(lp, func(x, y LinkPath) int { return cmp.Or(cmp.Compare(y.Cycles, x.Cycles), cmp.Compare(x.Name, y.Name)) })
}

// IsSFU reports whether c is a special-function unit's time.
func (c Cause) IsSFU() bool {
	switch c {
	case CauseLayerNorm1, CauseSoftmax, CauseResidual1, CauseLayerNorm2, CauseGELU, CauseResidual2:
		return true
	}
	return false
}

// Attribution is a run's critical path, the chain of work and waits that
// ends at its last event, by cause: every cycle of the makespan once.
type Attribution struct {
	Makespan int64
	// Causes are in Causes order and add up to Makespan exactly.
	Causes []CauseCycles
	// Units gives every unit's work on the path and the busy cycles that
	// overlap hid (busy, off the path).
	Units []UnitPath
	// Backpressure lists the full FIFOs the path went through from a
	// blocked writer to the reader that freed the space, with the cycles
	// the writer waited there, most first: a deeper FIFO would have let the
	// writer go on.
	Backpressure []LinkPath
	// Bottleneck is one sentence naming what limits the run.
	Bottleneck string
}

// CauseCycles is one cause's share of the critical path.
type CauseCycles struct {
	Cause  Cause
	Cycles int64
}

// UnitPath is one unit's part in the critical path.
type UnitPath struct {
	Name string
	// Critical is the unit's time on the path: its work and its pipeline
	// latency (Pipeline of it), which a link carries while the unit takes
	// its next element; Busy its work over the run; Hidden its work off the
	// path, which overlap hid: Busy - (Critical - Pipeline).
	Critical, Pipeline, Busy, Hidden int64
}

// LinkPath is a FIFO whose backpressure was on the critical path.
type LinkPath struct {
	Name   string
	Depth  int
	Bytes  int64
	Cycles int64
}

// Cycles returns the cycles of cause c.
func (a Attribution) Cycles(c Cause) int64 {
	for _, x := range a.Causes {
		if x.Cause == c {
			return x.Cycles
		}
	}
	return 0
}

// First is the cause with the most cycles other than the MPCA's compute at
// its fluid bound, which every run has and the estimator counts too (the
// earlier cause in Causes order on a tie).
func (a Attribution) First() CauseCycles {
	var best CauseCycles
	for _, c := range a.Causes {
		if c.Cause != CauseMPCAFluid && c.Cycles > best.Cycles {
			best = c
		}
	}
	return best
}

// stageColumns are the per-layer columns of the non-MPCA parts of the path.
var stageColumns = []string{actors.StageLayerNorm1.String(), actors.StageSoftmax.String(), actors.StageResidual1.String(),
	actors.StageTokenDrop.String(), actors.StageLayerNorm2.String(), actors.StageGELU.String(), actors.StageResidual2.String(),
	actors.StageMemory.String(), ColumnLatency}

// ColumnLatency names the per-layer column of FIFO latency on the path
// (StageResult.Name); the other columns are the MPCA's ops and the stages.
const ColumnLatency = "fifo-latency"

// result assembles the units' records, the runtime's statistics and the
// critical path into a SimResult.
func (a *Accelerator) result(bt *built, stats *runtime.Stats) (*SimResult, error) {
	path, err := actors.Walk(bt.net, bt.recs)
	if err != nil {
		return nil, fmt.Errorf("simulate: %w", err)
	}
	m, est := a.model, a.estimate
	n := bt.embed.Images
	r := &SimResult{TimingOnly: m.TimingOnly, Desc: a.desc, Block: a.block, Policy: a.policy, Estimate: est, Stats: stats,
		Cycles: stats.Makespan, Images: make([]ImageResult, n), MPCABusy: bt.mpca.Busy}
	r.CyclesPerImage = float64(r.Cycles) / float64(n)
	sizable := LinkNames(a.desc.MPCA.H)
	for _, k := range bt.net.Links {
		r.Links = append(r.Links, LinkInfo{Name: k.Name, Depth: k.Depth, Latency: k.Latency, Pipeline: k.Pipeline,
			ElementBytes: k.Bytes, Bytes: int64(k.Depth) * k.Bytes, Sizable: slices.Contains(sizable, k.Name)})
	}

	// The critical path by image, layer and column, and by unit.
	type key struct{ image, layer int32 }
	columns := map[key]map[string]int64{}
	col := func(img, l int32, name string, n int64) {
		k := key{img, l}
		if columns[k] == nil {
			columns[k] = map[string]int64{}
		}
		columns[k][name] += n
	}
	causes := map[Cause]int64{}
	critical := make([]int64, len(bt.net.Actors))
	pipeline := make([]int64, len(bt.net.Actors)) // the part of critical that is pipeline latency
	back := map[int32]int64{}
	type opKey struct {
		image, layer int32
		op           actors.Op
	}
	mpca := map[opKey]int64{}
	for _, p := range path.Parts {
		switch p.Kind {
		case actors.PathWork:
			critical[p.Actor] += p.Cycles
			if p.Link >= 0 {
				pipeline[p.Actor] += p.Cycles
			}
			if p.Stage == actors.StageMPCA {
				mpca[opKey{p.Image, p.Layer, p.Op}] += p.Cycles
				if p.Layer >= 0 {
					col(p.Image, p.Layer, p.Op.String(), p.Cycles)
				}
				continue
			}
			causes[stageCause[p.Stage]] += p.Cycles
			// The patch embedding and the classifier belong to no layer,
			// even when a layer's first unit waits on their pipeline.
			if p.Layer >= 0 && p.Stage != actors.StageEmbed && p.Stage != actors.StageClassifier {
				col(p.Image, p.Layer, p.Stage.String(), p.Cycles)
			}
		case actors.PathLatency:
			causes[CauseLatency] += p.Cycles
			if p.Layer >= 0 {
				col(p.Image, p.Layer, ColumnLatency, p.Cycles)
			}
		}
	}
	for _, p := range path.Crossed {
		back[p.Link] += p.Cycles
	}
	// The MPCA's time on the path, op by op: up to the op's fluid bound it
	// is compute no schedule could avoid; beyond it, imbalance and padding.
	for k, c := range mpca {
		if k.layer < 0 {
			causes[CauseMPCAAbove] += c
			continue
		}
		fluid := min(c, a.plan.Layers[k.layer][k.op].Fluid)
		causes[CauseMPCAFluid] += fluid
		causes[CauseMPCAAbove] += c - fluid
	}
	att := &r.Path
	att.Makespan = path.Makespan
	for _, c := range Causes {
		att.Causes = append(att.Causes, CauseCycles{Cause: c, Cycles: causes[c]})
	}
	for i, name := range bt.net.Actors {
		st := stats.Actors[i]
		att.Units = append(att.Units, UnitPath{Name: name, Critical: critical[i], Pipeline: pipeline[i], Busy: st.Busy,
			Hidden: max(st.Busy-(critical[i]-pipeline[i]), 0)})
	}
	for id, c := range back {
		k := bt.net.Links[id]
		att.Backpressure = append(att.Backpressure, LinkPath{Name: k.Name, Depth: k.Depth, Bytes: int64(k.Depth) * k.Bytes, Cycles: c})
	}
	sortBackpressure(att.Backpressure)
	att.Bottleneck = bottleneck(att)

	var work int64
	for l := range m.Layers {
		for o := range actors.NumOps {
			work += a.plan.Layers[l][o].Work
		}
	}
	g := a.desc.MPCA
	if r.Cycles > 0 {
		r.PEUtilisation = float64(work) * float64(n) / (float64(g.T*g.C*g.H) * float64(r.Cycles))
	}

	for i := range r.Images {
		logits := bt.classifier.Logits[i]
		img := ImageResult{Logits: logits, Top1: kernels.Argmax(logits), Start: bt.embed.Start[i], End: bt.classifier.End[i],
			Layers: make([]LayerResult, len(m.Layers))}
		img.Cycles = img.End - img.Start
		for l := range m.Layers {
			L := &m.Layers[l]
			e := est.Layers[l]
			cols := columns[key{int32(i), int32(l)}]
			lr := LayerResult{Index: l, TokensIn: L.TokensIn, TokensOut: L.TokensOut, HeadsKept: L.Heads, Hidden: L.Hidden,
				Kept: bt.tokendrop.Kept[i][l], Estimate: e.Cycles}
			for k, op := range Ops {
				p := &a.plan.Layers[l][k]
				span := bt.mpca.Ops[i][l][k]
				res := OpResult{Op: op, Mapping: p.Mapping, Start: span.Start, End: span.End,
					Critical: cols[op.String()], Estimate: e.Op(op).Cycles, Work: p.Work, Fluid: p.Fluid,
					Busiest: int64(p.Loads[a.config.Policy].Max)}
				for pol, name := range []Policy{PolicyIdeal, PolicyStatic, PolicyBalanced} {
					pl := PELoad{Policy: name, Max: p.Loads[pol].Max, Mean: p.Loads[pol].Mean}
					res.Loads = append(res.Loads, pl)
					if name == a.policy {
						res.Load = pl
					}
				}
				lr.Ops = append(lr.Ops, res)
			}
			for _, c := range stageColumns {
				lr.Stages = append(lr.Stages, StageResult{Name: c, Critical: cols[c]})
			}
			for _, v := range cols {
				lr.Critical += v
			}
			img.Layers[l] = lr
		}
		r.Images[i] = img
	}
	return r, nil
}

// bottleneck names the largest cause of the critical path in a sentence.
func bottleneck(a *Attribution) string {
	if a.Makespan == 0 {
		return "nothing ran"
	}
	share := func(c int64) string { return fmt.Sprintf("%.1f%%", 100*float64(c)/float64(a.Makespan)) }
	first := a.First()
	fluid := a.Cycles(CauseMPCAFluid)
	what := string(first.Cause)
	// A unit that a full FIFO in front of it kept on the path: name the FIFO.
	for _, b := range a.Backpressure {
		if strings.HasSuffix(b.Name, "->"+string(first.Cause)) {
			what += fmt.Sprintf(", behind the full FIFO %s (depth %d; its writer waited %d cycles on it)", b.Name, b.Depth, b.Cycles)
			break
		}
	}
	if first.Cycles == 0 {
		return fmt.Sprintf("The MPCA computing at its fluid bound is the whole critical path (%s).", share(fluid))
	}
	if fluid >= first.Cycles {
		return fmt.Sprintf("The MPCA's compute at its fluid bound is %s of the critical path; the largest other cause is %s (%s).",
			share(fluid), what, share(first.Cycles))
	}
	return fmt.Sprintf("The bottleneck is %s: %s of the critical path (the MPCA's compute at its fluid bound: %s).",
		what, share(first.Cycles), share(fluid))
}
