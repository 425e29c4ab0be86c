package actors

import (
	"cmp"
	"fmt"
	goruntime "runtime"
	"slices"

	"golang.org/x/sync/errgroup"
)

// Block is one output block of an MPCA op as the controller assigns it: a
// b×b tile of the op's output, computed by one PE.
type Block struct {
	CHM, PE int32
	// Unit is the output unit the block belongs to: the row block of a
	// linear op, head*rows+row of Q·K^T, the row sums and A·V.
	Unit int32
	// Col is the weight block-column of a linear op, -1 otherwise.
	Col int32
	// Work is the block's cycles on its PE with the real masks:
	// PairCycles for each non-zero weight block it multiplies.
	Work int64
}

// Snapshot is one step of an op in the MPCA's program. Under the ideal
// policy it is a lock-step round in which every PE of every CHM produces at
// most one output block and which lasts Cost; under the free-running
// policies it is a group of blocks that the PEs take in turn, each PE on
// its own clock.
type Snapshot struct {
	Blocks []Block
	// Cost is the round's cycles under the ideal policy: every output block
	// costs the mean non-zero work of its weight matrix.
	Cost int64
	// Done lists, in order, the output units whose last block is in this
	// snapshot: they are complete once it has run.
	Done []int32
}

// Load summarises the PEs' work in one op, in cycles, over all T*C*H PEs
// (idle PEs count as 0).
type Load struct{ Max, Mean float64 }

// OpPlan is how one op of one layer runs on the MPCA.
type OpPlan struct {
	Op      Op
	Mapping Mapping
	// Units is the number of output units (see Block.Unit); Rows the row
	// blocks of the op's output.
	Units, Rows int
	Snapshots   []Snapshot
	// Work is the op's real work over all blocks; Fluid is Work spread
	// evenly over every PE of the MPCA (rounded up): no schedule can finish
	// the op sooner.
	Work, Fluid int64
	// Loads are the PE loads under each policy (indexed by Policy) for the
	// same masks; the plan runs Loads[Plan.Policy].
	Loads [3]Load
	// ColOrder lists, per CHM, the weight block-columns of a linear op in
	// the order the CHM first needs them: the order its loader streams them.
	ColOrder [][]int32
}

// Plan is the controller's static assignment of every op's output blocks
// to CHMs (by the mapping it picks) and PEs (by the policy). It depends on
// the masks, the token counts and the policy, not on the image.
type Plan struct {
	Policy Policy
	Layers [][NumOps]OpPlan
}

// NewPlan plans every op of every layer of m on cfg. For each linear op the
// controller lays the output blocks out both ways and keeps the mapping
// with fewer lock-step snapshots (sweep on a tie), as the paper's
// controller does.
func NewPlan(cfg Config, m *Model) (*Plan, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	// The sweep mapping cuts the weights into head-width slices of whole blocks.
	if m.HeadDim < 1 || m.HeadDim%cfg.Block != 0 {
		return nil, fmt.Errorf("plan: block size %d does not divide the head width %d", cfg.Block, m.HeadDim)
	}
	p := &Plan{Policy: cfg.Policy, Layers: make([][NumOps]OpPlan, len(m.Layers))}
	// Layers plan independently, on every core; the first failing one's
	// error wins, whatever the timing.
	errs := make([]error, len(m.Layers))
	var g errgroup.Group
	g.SetLimit(goruntime.GOMAXPROCS(0))
	for l := range m.Layers {
		g.Go(func() error {
			for o := range NumOps {
				op, err := planOp(cfg, m, l, o)
				if err != nil {
					errs[l] = fmt.Errorf("plan layer %d op %s: %w", l, o, err)
					return nil
				}
				p.Layers[l][o] = op
			}
			return nil
		})
	}
	g.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return p, nil
}

// slot is an output block placed by its mapping: PE pe of its CHM in
// lock-step round snap.
type slot struct {
	Block
	snap int
}

// layout is an op's output blocks on the CHMs by one mapping: per CHM, in
// the mapping's order.
type layout struct {
	mapping Mapping
	chms    [][]slot
	rounds  int // lock-step rounds of the busiest CHM
}

func (lo *layout) add(chm, snap, pe int, b Block) {
	b.CHM, b.PE = int32(chm), int32(pe)
	lo.chms[chm] = append(lo.chms[chm], slot{Block: b, snap: snap})
	lo.rounds = max(lo.rounds, snap+1)
}

func planOp(cfg Config, m *Model, l int, o Op) (OpPlan, error) {
	g, b := cfg.Geometry, cfg.Block
	L := &m.Layers[l]
	rows := ceilDiv(L.OpTokens(o), b)
	pair := g.PairCycles(b)
	p := OpPlan{Op: o, Rows: rows, Units: rows}
	var lo layout
	var meanNum, meanDen int64 // ideal cost of a block: meanNum/meanDen
	switch {
	case o.Linear():
		w := L.Weight(o)
		if w == nil {
			return OpPlan{}, fmt.Errorf("no weight matrix")
		}
		if w.B != b {
			return OpPlan{}, fmt.Errorf("weight blocks of %d, accelerator tiles of %d", w.B, b)
		}
		ncols := w.Cols / b
		work := func(c int) int64 { return int64(w.ColStart[c+1]-w.ColStart[c]) * pair }
		mp := Sweep
		if linearRounds(g, Expand, rows, ncols, m.HeadDim/b) < linearRounds(g, Sweep, rows, ncols, m.HeadDim/b) {
			mp = Expand
		}
		lo = linearLayout(g, mp, rows, ncols, m.HeadDim/b, work)
		meanNum, meanDen = int64(w.NNZBlocks())*pair, int64(max(ncols, 1))
	case o == OpQK || o == OpAV:
		wb, red := rows, m.HeadDim/b // Q·K^T: W = tokens, N = head width
		if o == OpAV {
			wb, red = m.HeadDim/b, rows
		}
		p.Units = L.Heads * rows
		lo = headLayout(g, HeadWise, L.Heads, rows, wb, g.PEs(), int64(red)*pair, func(j int) int { return j })
		meanNum, meanDen = int64(red)*pair, 1
	case o == OpRowSum:
		// A b×b block times a ones vector: ceil(b/P) passes of b cycles per
		// reduction block, on the T PEs of PE column 0.
		c := int64(rows) * int64(ceilDiv(b, g.P)*b)
		p.Units = L.Heads * rows
		lo = headLayout(g, RowWise, L.Heads, rows, 1, g.T, c, func(j int) int { return j * g.C })
		meanNum, meanDen = c, 1
	default:
		return OpPlan{}, fmt.Errorf("unknown op %d", int(o))
	}
	p.Mapping = lo.mapping
	for _, chm := range lo.chms {
		for _, s := range chm {
			p.Work += s.Work
		}
	}
	allPEs := int64(g.PEs() * g.H)
	p.Fluid = (p.Work + allPEs - 1) / allPEs
	usable := func(pe int) bool { return o != OpRowSum || pe%g.C == 0 }
	var chosen [][]slot
	for _, pol := range []Policy{Ideal, Static, Balanced} {
		var loads []int64
		var placed [][]slot
		for _, chm := range lo.chms {
			pl, ld := assign(pol, chm, g.PEs(), usable, meanNum, meanDen)
			placed = append(placed, pl)
			loads = append(loads, ld...)
		}
		p.Loads[pol] = summarise(loads)
		if pol == cfg.Policy {
			chosen = placed
		}
	}
	p.Snapshots = snapshots(chosen, lo.rounds, p.Units, meanNum, meanDen)
	if o.Linear() {
		p.ColOrder = colOrder(p.Snapshots, g.H)
	}
	return p, nil
}

// linearLayout lays a linear op's rows×ncols output blocks out on the CHMs:
//
//   - Expand: block-column c on CHM c mod H; a CHM's blocks row-major
//     (every column of row block 0, then row block 1, ...), dealt in turn to
//     its T*C PEs, one lock-step round per T*C blocks.
//   - Sweep: head-width slices of hdb block-columns, slice s on CHM s mod H;
//     the slices of one CHM run one after another, each from a round
//     boundary that all CHMs share, and each slice's blocks row-major.
//
// Row-major order lets a CHM start on the first row blocks while later ones
// are still arriving.
func linearLayout(g Geometry, mp Mapping, rows, ncols, hdb int, work func(c int) int64) layout {
	tc := g.PEs()
	lo := layout{mapping: mp, chms: make([][]slot, g.H)}
	place := func(chm, base int, cols []int) {
		j := 0
		for r := range rows {
			for _, c := range cols {
				lo.add(chm, base+j/tc, j%tc, Block{Unit: int32(r), Col: int32(c), Work: work(c)})
				j++
			}
		}
	}
	if mp == Expand {
		for chm := range g.H {
			var cols []int
			for c := chm; c < ncols; c += g.H {
				cols = append(cols, c)
			}
			place(chm, 0, cols)
		}
		return lo
	}
	perSlice := ceilDiv(rows*hdb, tc)
	for s := 0; s*hdb < ncols; s++ {
		var cols []int
		for c := s * hdb; c < min((s+1)*hdb, ncols); c++ {
			cols = append(cols, c)
		}
		place(s%g.H, (s/g.H)*perSlice, cols)
	}
	return lo
}

// linearRounds is linearLayout(g, mp, rows, ncols, hdb, ...).rounds without
// laying the blocks out: the controller compares the mappings by it.
func linearRounds(g Geometry, mp Mapping, rows, ncols, hdb int) int {
	tc, r := g.PEs(), 0
	if mp == Expand {
		for chm := range min(g.H, ncols) {
			r = max(r, ceilDiv(rows*ceilDiv(ncols-chm, g.H), tc))
		}
		return r
	}
	perSlice := ceilDiv(rows*hdb, tc)
	for s := 0; s*hdb < ncols; s++ {
		r = max(r, (s/g.H)*perSlice+ceilDiv(rows*min(hdb, ncols-s*hdb), tc))
	}
	return r
}

// headLayout lays out a per-head product: head j on CHM j mod H, the heads
// of one CHM one after another from shared round boundaries, a head's
// rows×wb output blocks row-major, dealt to the PEs pes (peOf maps the k-th
// of them to a PE index).
func headLayout(g Geometry, mp Mapping, heads, rows, wb, pes int, work int64, peOf func(int) int) layout {
	lo := layout{mapping: mp, chms: make([][]slot, g.H)}
	perHead := ceilDiv(rows*wb, pes)
	for h := range heads {
		chm, base := h%g.H, (h/g.H)*perHead
		j := 0
		for r := range rows {
			for range wb {
				lo.add(chm, base+j/pes, peOf(j%pes), Block{Unit: int32(h*rows + r), Col: -1, Work: work})
				j++
			}
		}
	}
	return lo
}

// assign places one CHM's blocks on its PEs under policy and returns them
// with each PE's load. Ideal and Static keep the mapping's slots (Ideal
// charging every PE in use the mean cost for each of its rounds); Balanced
// gives the blocks, heaviest first (ties in mapping order), each to the
// least-loaded usable PE (ties to the lower index), and each PE then takes
// its blocks in mapping order, so that it still streams row by row.
func assign(policy Policy, blocks []slot, tc int, usable func(int) bool, meanNum, meanDen int64) ([]slot, []int64) {
	load := make([]int64, tc)
	switch policy {
	case Ideal:
		for _, s := range blocks {
			load[s.PE]++
		}
		for k, n := range load {
			load[k] = ceilDiv64(n*meanNum, meanDen)
		}
		return blocks, load
	case Static:
		for _, s := range blocks {
			load[s.PE] += s.Work
		}
		return blocks, load
	}
	order := make([]int, len(blocks))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(blocks[b].Work, blocks[a].Work) })
	pe := make([]int32, len(blocks))
	for _, i := range order {
		best := -1
		for k := range tc {
			if usable(k) && (best < 0 || load[k] < load[best]) {
				best = k
			}
		}
		load[best] += blocks[i].Work
		pe[i] = int32(best)
	}
	out := make([]slot, len(blocks))
	count := make([]int, tc)
	for i, s := range blocks { // mapping order, so each PE's list stays in it
		s.PE = pe[i]
		s.snap = count[s.PE]
		count[s.PE]++
		out[i] = s
	}
	return out, load
}

// snapshots groups the placed blocks of every CHM by round, CHM by CHM and
// PE by PE within a round, and records where each unit completes. Ops
// without blocks (no heads, no neurons) get one empty round that completes
// every unit.
func snapshots(chms [][]slot, rounds, units int, meanNum, meanDen int64) []Snapshot {
	for _, c := range chms {
		for _, s := range c {
			rounds = max(rounds, s.snap+1)
		}
	}
	snaps := make([]Snapshot, max(rounds, 1))
	last := make([]int, units)
	for _, c := range chms {
		for _, s := range c {
			snaps[s.snap].Blocks = append(snaps[s.snap].Blocks, s.Block)
			last[s.Unit] = max(last[s.Unit], s.snap)
		}
	}
	byPE := func(x, y Block) int { return cmp.Or(cmp.Compare(x.CHM, y.CHM), cmp.Compare(x.PE, y.PE)) }
	for i := range snaps {
		b := snaps[i].Blocks
		if !slices.IsSortedFunc(b, byPE) { // the mappings' own order already is
			slices.SortStableFunc(b, byPE)
		}
		if len(b) > 0 {
			snaps[i].Cost = ceilDiv64(int64(i+1)*meanNum, meanDen) - ceilDiv64(int64(i)*meanNum, meanDen)
		}
	}
	for u, k := range last {
		snaps[k].Done = append(snaps[k].Done, int32(u))
	}
	return snaps
}

// colOrder lists each CHM's weight block-columns in the order of first use.
func colOrder(snaps []Snapshot, h int) [][]int32 {
	order := make([][]int32, h)
	seen := make([]map[int32]bool, h)
	for i := range seen {
		seen[i] = map[int32]bool{}
	}
	for _, s := range snaps {
		for _, b := range s.Blocks {
			if !seen[b.CHM][b.Col] {
				seen[b.CHM][b.Col] = true
				order[b.CHM] = append(order[b.CHM], b.Col)
			}
		}
	}
	return order
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

func ceilDiv64(a, b int64) int64 { return (a + b - 1) / b }
