package actors

import (
	"cmp"
	"fmt"
	"slices"
)

// Step is one output block in a CHM's schedule: the PE (0..T*C-1) that
// computes it, its weight block-column (linear ops; -1 otherwise) and its
// cycles on that PE.
type Step struct {
	PE     int32
	Col    int32
	Cycles int64
}

// CHMPlan is one CHM's share of one op.
type CHMPlan struct {
	// Cols are the output block-columns this CHM computes (linear ops, every
	// row), or the kept heads it computes (Q·K^T, row sums, A·V).
	Cols []int
	// Steps are the CHM's output blocks in snapshot-major order: every PE's
	// first block, then every PE's second block, and so on. Snapshot i is
	// Steps[SnapStart[i]:SnapStart[i+1]].
	Steps     []Step
	SnapStart []int
	// ColOrder lists the weight block-columns in the order the CHM first
	// needs them, which is the order the loader streams them in.
	ColOrder []int32
	// Compute is the CHM's time for the op with every weight at hand: its
	// busiest PE's work, or the estimator's cycles under the ideal policy.
	Compute int64
}

// Used reports whether the CHM takes part in the op.
func (p *CHMPlan) Used() bool { return len(p.Cols) > 0 }

// Load summarises the PEs' work in one op, in cycles, over all T*C*H PEs
// (idle PEs count as 0).
type Load struct{ Max, Mean float64 }

// OpPlan is the static schedule of one op of one layer.
type OpPlan struct {
	Op   Op
	Cost OpCost
	CHMs []CHMPlan
	// Compute is the busiest CHM's Compute.
	Compute int64
	// Loads are the PE loads under each policy (indexed by Policy) for the
	// same masks; the schedule runs Loads[Schedule.Policy].
	Loads [3]Load
}

// Schedule is the controller's static assignment of every op's output
// blocks to CHMs (by the op's mapping) and to PEs (by the policy).
type Schedule struct {
	Policy Policy
	Layers [][NumOps]OpPlan
}

// NewSchedule plans every op of every layer of m on cfg.
func NewSchedule(cfg Config, m *Model) (*Schedule, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Schedule{Policy: cfg.Policy, Layers: make([][NumOps]OpPlan, len(m.Layers))}
	for l := range m.Layers {
		for o := range NumOps {
			p, err := planOp(cfg, m, l, o)
			if err != nil {
				return nil, fmt.Errorf("schedule layer %d op %s: %w", l, o, err)
			}
			s.Layers[l][o] = p
		}
	}
	return s, nil
}

// slotted is an output block placed by its mapping: PE pe in snapshot snap.
type slotted struct {
	snap, pe int
	col      int32
	cycles   int64
}

func planOp(cfg Config, m *Model, l int, o Op) (OpPlan, error) {
	g, b := cfg.Geometry, cfg.Block
	L := &m.Layers[l]
	cost := L.Costs[o]
	rows := func(tokens int) int { return ceilDiv(tokens, b) }
	blocks := make([][]slotted, g.H)
	cols := make([][]int, g.H)
	tc := g.PEs()
	pair := g.PairCycles(b)

	switch {
	case o.Linear():
		w := L.Weight(o)
		if w == nil {
			return OpPlan{}, fmt.Errorf("no weight matrix")
		}
		if w.B != b {
			return OpPlan{}, fmt.Errorf("weight blocks of %d, accelerator tiles of %d", w.B, b)
		}
		r := rows(L.TokensIn)
		if o == OpFC1 || o == OpFC2 {
			r = rows(L.TokensOut)
		}
		ncols := w.Cols / b
		nnz := func(c int) int64 { return int64(w.ColStart[c+1] - w.ColStart[c]) }
		// place deals one group of block-columns (a head slice, or a CHM's
		// whole share) to the CHM's PEs column-major, from snapshot base.
		place := func(chm, base int, group []int) {
			j := 0
			for _, c := range group {
				cols[chm] = append(cols[chm], c)
				for range r {
					blocks[chm] = append(blocks[chm], slotted{snap: base + j/tc, pe: j % tc, col: int32(c), cycles: nnz(c) * pair})
					j++
				}
			}
		}
		switch cost.Mapping {
		case Sweep:
			hdb := m.HeadDim / b
			perSlice := ceilDiv(r*hdb, tc)
			for s := 0; s*hdb < ncols; s++ {
				var group []int
				for c := s * hdb; c < min((s+1)*hdb, ncols); c++ {
					group = append(group, c)
				}
				place(s%g.H, (s/g.H)*perSlice, group)
			}
		case Expand:
			for chm := range g.H {
				var group []int
				for c := chm; c < ncols; c += g.H {
					group = append(group, c)
				}
				place(chm, 0, group)
			}
		default:
			return OpPlan{}, fmt.Errorf("linear op with mapping %d", cost.Mapping)
		}
	case o == OpQK || o == OpAV:
		n, r := L.TokensIn, rows(L.TokensIn)
		wb, red := rows(n), ceilDiv(m.HeadDim, b) // Q·K^T: W = tokens, N = head width
		if o == OpAV {
			wb, red = ceilDiv(m.HeadDim, b), rows(n)
		}
		perHead := ceilDiv(r*wb, tc)
		for h := range L.Heads {
			chm, base := h%g.H, (h/g.H)*perHead
			cols[chm] = append(cols[chm], h)
			for j := range r * wb {
				blocks[chm] = append(blocks[chm], slotted{snap: base + j/tc, pe: j % tc, col: -1, cycles: int64(red) * pair})
			}
		}
	case o == OpRowSum:
		r := rows(L.TokensIn)
		perHead := ceilDiv(r, g.T)
		c := int64(rows(L.TokensIn)) * int64(ceilDiv(b, g.P)*b)
		for h := range L.Heads {
			chm, base := h%g.H, (h/g.H)*perHead
			cols[chm] = append(cols[chm], h)
			for j := range r {
				// One PE column: PE (j mod T, 0) of the row-major T×C array.
				blocks[chm] = append(blocks[chm], slotted{snap: base + j/g.T, pe: (j % g.T) * g.C, col: -1, cycles: c})
			}
		}
	}

	p := OpPlan{Op: o, Cost: cost, CHMs: make([]CHMPlan, g.H)}
	var loads [3][]int64
	for i := range loads {
		loads[i] = make([]int64, 0, g.H*tc)
	}
	for chm := range g.H {
		plan, pe := planCHM(cfg.Policy, cost, tc, blocks[chm])
		plan.Cols = cols[chm]
		p.CHMs[chm] = plan
		p.Compute = max(p.Compute, plan.Compute)
		for pol := range loads {
			loads[pol] = append(loads[pol], pe[pol]...)
		}
	}
	for pol := range loads {
		p.Loads[pol] = summarise(loads[pol])
	}
	return p, nil
}

// planCHM orders one CHM's blocks under policy and returns the plan and the
// per-PE work under every policy.
func planCHM(policy Policy, cost OpCost, tc int, blocks []slotted) (CHMPlan, [3][]int64) {
	var pe [3][]int64
	for i := range pe {
		pe[i] = make([]int64, tc)
	}
	static := slices.Clone(blocks)
	slices.SortStableFunc(static, func(a, b slotted) int {
		return cmp.Or(cmp.Compare(a.snap, b.snap), cmp.Compare(a.pe, b.pe))
	})
	for _, s := range static {
		pe[Static][s.pe] += s.cycles
		pe[Ideal][s.pe] = cost.Cycles
	}
	balanced := balance(blocks, tc, cost.Mapping != RowWise, pe[Balanced])

	plan := CHMPlan{}
	order := static
	if policy == Balanced {
		order = balanced
	}
	for i, s := range order {
		if i == 0 || s.snap != order[i-1].snap {
			for len(plan.SnapStart) <= s.snap {
				plan.SnapStart = append(plan.SnapStart, i)
			}
		}
		plan.Steps = append(plan.Steps, Step{PE: int32(s.pe), Col: s.col, Cycles: s.cycles})
	}
	if len(order) > 0 {
		plan.SnapStart = append(plan.SnapStart, len(order))
	}
	seen := map[int32]bool{}
	for _, s := range plan.Steps {
		if s.Col >= 0 && !seen[s.Col] {
			seen[s.Col] = true
			plan.ColOrder = append(plan.ColOrder, s.Col)
		}
	}
	if len(blocks) > 0 {
		plan.Compute = slices.Max(pe[policy])
	}
	return plan, pe
}

// balance is longest-processing-time-first list scheduling: blocks, heaviest
// first (ties in mapping order), each to the least-loaded PE (ties to the
// lower index), among all PEs when allPEs, else among the PEs the mapping
// uses (the row sums keep to their PE column). It fills load and returns the
// blocks re-slotted: snap is the block's position in its PE's list.
func balance(blocks []slotted, tc int, allPEs bool, load []int64) []slotted {
	if len(blocks) == 0 {
		return nil
	}
	usable := make([]bool, tc)
	for k := range usable {
		usable[k] = allPEs
	}
	for _, s := range blocks {
		usable[s.pe] = true
	}
	byWeight := slices.Clone(blocks)
	slices.SortStableFunc(byWeight, func(a, b slotted) int { return cmp.Compare(b.cycles, a.cycles) })
	count := make([]int, tc)
	out := make([]slotted, 0, len(blocks))
	for _, s := range byWeight {
		best := -1
		for k := range tc {
			if usable[k] && (best < 0 || load[k] < load[best]) {
				best = k
			}
		}
		load[best] += s.cycles
		out = append(out, slotted{snap: count[best], pe: best, col: s.col, cycles: s.cycles})
		count[best]++
	}
	slices.SortStableFunc(out, func(a, b slotted) int {
		return cmp.Or(cmp.Compare(a.snap, b.snap), cmp.Compare(a.pe, b.pe))
	})
	return out
}

func summarise(loads []int64) Load {
	var l Load
	if len(loads) == 0 {
		return l
	}
	var sum int64
	for _, v := range loads {
		sum += v
		l.Max = max(l.Max, float64(v))
	}
	l.Mean = float64(sum) / float64(len(loads))
	return l
}
