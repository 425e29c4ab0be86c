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
	// The sweep mapping cuts the weights into head-width slices of whole blocks.
	if m.HeadDim < 1 || m.HeadDim%cfg.Block != 0 {
		return nil, fmt.Errorf("schedule: block size %d does not divide the head width %d", cfg.Block, m.HeadDim)
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

// planOp plans op o of layer l under every policy and keeps cfg.Policy's plan.
func planOp(cfg Config, m *Model, l int, o Op) (OpPlan, error) {
	cost := m.Layers[l].Costs[o]
	p := OpPlan{Op: o, Cost: cost}
	for _, pol := range []Policy{Ideal, Static, Balanced} {
		blocks, cols, err := layout(cfg, m, l, o, pol == Balanced)
		if err != nil {
			return OpPlan{}, err
		}
		var loads []int64
		plans := make([]CHMPlan, len(blocks))
		for chm := range blocks {
			var pe []int64
			plans[chm], pe = planCHM(pol, cost, cfg.Geometry.PEs(), blocks[chm], cost.Mapping != RowWise)
			plans[chm].Cols = cols[chm]
			loads = append(loads, pe...)
		}
		p.Loads[pol] = summarise(loads)
		if pol == cfg.Policy {
			p.CHMs = plans
			for _, c := range plans {
				p.Compute = max(p.Compute, c.Compute)
			}
		}
	}
	return p, nil
}

// layout places op o's output blocks on the CHMs by the op's mapping and, in
// each CHM, on snapshot slots: a group of blocks (a head slice, a head, or a
// CHM's share of block-columns) is dealt column-major to the T*C PEs (the T
// PEs of PE column 0 for the row sums) from the group's first snapshot. With
// spread, a linear op's block-columns go instead heaviest first to the CHM
// with the least work so far (the balanced policy's first level). It returns
// per CHM the blocks and the block-columns (linear ops) or heads it computes.
func layout(cfg Config, m *Model, l int, o Op, spread bool) ([][]slotted, [][]int, error) {
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
			return nil, nil, fmt.Errorf("no weight matrix")
		}
		if w.B != b {
			return nil, nil, fmt.Errorf("weight blocks of %d, accelerator tiles of %d", w.B, b)
		}
		r := rows(L.TokensIn)
		if o == OpFC1 || o == OpFC2 {
			r = rows(L.TokensOut)
		}
		ncols := w.Cols / b
		nnz := func(c int) int64 { return int64(w.ColStart[c+1] - w.ColStart[c]) }
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
		switch {
		case spread:
			byWeight := make([]int, ncols)
			for c := range byWeight {
				byWeight[c] = c
			}
			slices.SortStableFunc(byWeight, func(a, b int) int { return cmp.Compare(nnz(b), nnz(a)) })
			load := make([]int64, g.H)
			groups := make([][]int, g.H)
			for _, c := range byWeight {
				best := 0
				for k := range load {
					if load[k] < load[best] {
						best = k
					}
				}
				load[best] += nnz(c) + 1 // +1: an empty column still takes a slot
				groups[best] = append(groups[best], c)
			}
			for chm, group := range groups {
				slices.Sort(group)
				place(chm, 0, group)
			}
		case cost.Mapping == Sweep:
			hdb := m.HeadDim / b
			perSlice := ceilDiv(r*hdb, tc)
			for s := 0; s*hdb < ncols; s++ {
				var group []int
				for c := s * hdb; c < min((s+1)*hdb, ncols); c++ {
					group = append(group, c)
				}
				place(s%g.H, (s/g.H)*perSlice, group)
			}
		case cost.Mapping == Expand:
			for chm := range g.H {
				var group []int
				for c := chm; c < ncols; c += g.H {
					group = append(group, c)
				}
				place(chm, 0, group)
			}
		default:
			return nil, nil, fmt.Errorf("linear op with mapping %d", cost.Mapping)
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
				// PE (j mod T, 0) of the row-major T×C array.
				blocks[chm] = append(blocks[chm], slotted{snap: base + j/g.T, pe: (j % g.T) * g.C, col: -1, cycles: c})
			}
		}
	}
	return blocks, cols, nil
}

// planCHM orders one CHM's blocks under policy and returns the plan and the
// work of each of its PEs. Ideal and Static keep the mapping's slots;
// Balanced re-slots the blocks (see balance).
func planCHM(policy Policy, cost OpCost, tc int, blocks []slotted, allPEs bool) (CHMPlan, []int64) {
	load := make([]int64, tc)
	order := slices.Clone(blocks)
	switch policy {
	case Balanced:
		order = balance(blocks, tc, allPEs, load)
	default:
		slices.SortStableFunc(order, func(a, b slotted) int {
			return cmp.Or(cmp.Compare(a.snap, b.snap), cmp.Compare(a.pe, b.pe))
		})
		for _, s := range order {
			if policy == Ideal {
				load[s.pe] = cost.Cycles
			} else {
				load[s.pe] += s.cycles
			}
		}
	}
	var plan CHMPlan
	for i, s := range order {
		for len(plan.SnapStart) <= s.snap {
			plan.SnapStart = append(plan.SnapStart, i)
		}
		plan.Steps = append(plan.Steps, Step{PE: int32(s.pe), Col: s.col, Cycles: s.cycles})
	}
	if len(order) > 0 {
		plan.SnapStart = append(plan.SnapStart, len(order))
		plan.Compute = slices.Max(load)
	}
	seen := map[int32]bool{}
	for _, s := range plan.Steps {
		if s.Col >= 0 && !seen[s.Col] {
			seen[s.Col] = true
			plan.ColOrder = append(plan.ColOrder, s.Col)
		}
	}
	return plan, load
}

// balance is longest-processing-time-first list scheduling: blocks, heaviest
// first (ties in mapping order), each to the least-loaded PE (ties to the
// lower index), among all PEs when allPEs, else among the PEs the mapping
// uses (the row sums keep to their PE column). It fills load and returns the
// blocks re-slotted, snap being a block's position in its PE's list, in
// snapshot-major order.
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
