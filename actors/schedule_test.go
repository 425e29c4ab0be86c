package actors

import (
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"vitflow/kernels"
)

// packed returns a rows×cols matrix of ones packed to the blocks keep keeps.
func packed(t *testing.T, rows, cols, b int, keep func(br, bc int) bool) *kernels.BlockSparse {
	t.Helper()
	w := make([]float32, rows*cols)
	for i := range w {
		w[i] = 1
	}
	s, err := kernels.PackBlockSparse(w, rows, cols, b, keep)
	require.NoError(t, err)
	return s
}

// oneLayer is a one-layer model of dim×dim linear ops whose Q, K, V and O
// keep each block with probability density (seeded), and whose ops all use
// mapping mp with the given ideal cost.
func oneLayer(t *testing.T, dim, headDim, b, tokens int, density float64, mp Mapping, seed uint64) *Model {
	t.Helper()
	r := rand.New(rand.NewPCG(seed, 1))
	masked := func() *kernels.BlockSparse {
		return packed(t, dim, dim, b, func(int, int) bool { return r.Float64() < density })
	}
	L := Layer{Heads: dim / headDim, Q: masked(), K: masked(), V: masked(), O: masked(),
		FC1: packed(t, dim, 2*dim, b, nil), FC2: packed(t, 2*dim, dim, b, nil), Hidden: 2 * dim,
		TokensIn: tokens, TokensOut: tokens}
	for o := range NumOps {
		L.Costs[o] = OpCost{Mapping: mp, Snapshots: 3, Cycles: 1000}
	}
	L.Costs[OpQK].Mapping, L.Costs[OpAV].Mapping, L.Costs[OpRowSum].Mapping = HeadWise, HeadWise, RowWise
	return &Model{Dim: dim, HeadDim: headDim, Tokens: tokens, Layers: []Layer{L}}
}

// TestScheduleInvariants checks every policy and mapping on random masks:
// each output block is computed exactly once, every PE load adds up to the
// op's work, the weight stream covers each CHM's block-columns once, and
// the balanced policy's busiest PE is never busier than the static one's.
func TestScheduleInvariants(t *testing.T) {
	g := Geometry{T: 3, C: 2, H: 4, P: 8}
	const dim, hd, b, tokens = 128, 32, 16, 40
	for _, mp := range []Mapping{Sweep, Expand} {
		for seed := range uint64(5) {
			m := oneLayer(t, dim, hd, b, tokens, 0.5, mp, seed)
			var plans [3]*Schedule
			for _, pol := range []Policy{Ideal, Static, Balanced} {
				s, err := NewSchedule(Config{Geometry: g, Block: b, Policy: pol, Free: true}, m)
				require.NoError(t, err)
				plans[pol] = s
			}
			for o := range NumOps {
				var work int64
				if w := m.Layers[0].Weight(o); w != nil {
					work = int64(w.NNZBlocks()) * int64(ceilDiv(tokens, b)) * g.PairCycles(b)
				}
				for pol, s := range plans {
					p := s.Layers[0][o]
					assert.Equal(t, plans[Static].Layers[0][o].Loads, p.Loads, "%s: loads under every policy do not depend on the one that runs", o)
					if o.Linear() {
						var cols []int
						var steps int
						for _, c := range p.CHMs {
							cols = append(cols, c.Cols...)
							steps += len(c.Steps)
							order := slices.Clone(c.ColOrder)
							slices.Sort(order)
							want := make([]int32, len(c.Cols))
							for i, col := range c.Cols {
								want[i] = int32(col)
							}
							slices.Sort(want)
							assert.Equal(t, want, order, "%s policy %d: the stream covers the CHM's columns once", o, pol)
						}
						slices.Sort(cols)
						w := m.Layers[0].Weight(o)
						assert.Len(t, cols, w.Cols/b, "%s: every block-column once", o)
						assert.Equal(t, w.Cols/b*ceilDiv(tokens, b), steps, "%s: every output block once", o)
						nPE := float64(g.PEs() * g.H)
						assert.InDelta(t, float64(work)/nPE, p.Loads[Static].Mean, 1e-9, "%s static", o)
						assert.InDelta(t, float64(work)/nPE, p.Loads[Balanced].Mean, 1e-9, "%s balanced", o)
					}
					assert.LessOrEqual(t, p.Loads[Balanced].Max, p.Loads[Static].Max, "%s", o)
					if pol == int(Ideal) {
						for _, c := range p.CHMs {
							if c.Used() {
								assert.Equal(t, p.Cost.Cycles, c.Compute, "%s: ideal charges the estimate", o)
							}
						}
					}
				}
			}
		}
	}
}

// TestScheduleStatic hand-checks a static and a balanced schedule: one row
// block, 4 block-columns with 3, 1, 2 and 0 non-zero blocks, expand mapping
// over 2 CHMs of 2 PEs.
func TestScheduleStatic(t *testing.T) {
	nnz := []int{3, 1, 2, 0}
	q := packed(t, 32, 32, 8, func(br, bc int) bool { return br < nnz[bc] })
	m := oneLayer(t, 32, 16, 8, 8, 1, Expand, 1)
	m.Layers[0].Q = q
	g := Geometry{T: 1, C: 2, H: 2, P: 8} // a pair costs 8 cycles
	s, err := NewSchedule(Config{Geometry: g, Block: 8, Policy: Static, Free: true}, m)
	require.NoError(t, err)
	p := s.Layers[0][OpQ]
	// CHM 0: columns 0 and 2 on PEs 0 and 1; CHM 1: columns 1 and 3.
	assert.Equal(t, []int{0, 2}, p.CHMs[0].Cols)
	assert.Equal(t, []int{1, 3}, p.CHMs[1].Cols)
	assert.Equal(t, []Step{{PE: 0, Col: 0, Cycles: 24}, {PE: 1, Col: 2, Cycles: 16}}, p.CHMs[0].Steps)
	assert.Equal(t, []Step{{PE: 0, Col: 1, Cycles: 8}, {PE: 1, Col: 3, Cycles: 0}}, p.CHMs[1].Steps)
	assert.Equal(t, int64(24), p.Compute)
	assert.Equal(t, Load{Max: 24, Mean: 12}, p.Loads[Static])

}

// TestScheduleBalanced hand-checks what balancing recovers: 8 block-columns
// with 4, 1, 4, 1, ... non-zero blocks, one row block, expand over 2 CHMs of
// 2 PEs. Static puts every heavy column on CHM 0 (PE loads 64, 64, 16, 16);
// balanced spreads them (40 each).
func TestScheduleBalanced(t *testing.T) {
	q := packed(t, 64, 64, 8, func(br, bc int) bool { return bc%2 == 1 && br < 1 || bc%2 == 0 && br < 4 })
	m := oneLayer(t, 64, 16, 8, 8, 1, Expand, 1)
	m.Layers[0].Q = q
	g := Geometry{T: 1, C: 2, H: 2, P: 8}
	want := map[Policy]struct {
		load    Load
		compute int64
	}{Static: {Load{Max: 64, Mean: 40}, 64}, Balanced: {Load{Max: 40, Mean: 40}, 40}}
	for pol, w := range want {
		s, err := NewSchedule(Config{Geometry: g, Block: 8, Policy: pol, Free: true}, m)
		require.NoError(t, err)
		p := s.Layers[0][OpQ]
		assert.Equal(t, w.load, p.Loads[pol], "%s", pol)
		assert.Equal(t, w.compute, p.Compute, "%s", pol)
	}
}

// TestScheduleBlockWiderThanHead: the sweep mapping slices by head width, so
// a block that does not divide it is an error (it used to loop forever).
func TestScheduleBlockWiderThanHead(t *testing.T) {
	m := oneLayer(t, 64, 16, 32, 8, 1, Sweep, 1)
	_, err := NewSchedule(Config{Geometry: Geometry{T: 1, C: 2, H: 2, P: 8}, Block: 32, Policy: Static, Free: true}, m)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "does not divide the head width 16")
}
