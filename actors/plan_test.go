package actors

import (
	"context"
	"errors"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"vitflow/kernels"
	"vitflow/runtime"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

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

// oneLayer is a model of one dim-wide layer whose Q, K, V and O keep each
// block with probability density (seeded).
func oneLayer(t *testing.T, dim, headDim, b, tokens int, density float64, seed uint64) *Model {
	t.Helper()
	r := rand.New(rand.NewPCG(seed, 1))
	masked := func() *kernels.BlockSparse {
		return packed(t, dim, dim, b, func(int, int) bool { return r.Float64() < density })
	}
	L := Layer{Heads: dim / headDim, Q: masked(), K: masked(), V: masked(), O: masked(),
		FC1: packed(t, dim, 2*dim, b, nil), FC2: packed(t, 2*dim, dim, b, nil), Hidden: 2 * dim,
		TokensIn: tokens, TokensOut: tokens}
	return &Model{Dim: dim, HeadDim: headDim, Tokens: tokens, Layers: []Layer{L}}
}

// TestPlanInvariants checks every policy on random masks and geometries:
// each output block is computed once, the snapshots complete every unit
// once and after all its blocks, no PE beats the fluid bound, balanced is
// never busier than static, and each CHM's weight order lists its columns once.
func TestPlanInvariants(t *testing.T) {
	const dim, hd, b, tokens = 128, 32, 16, 40
	for _, g := range []Geometry{{T: 3, C: 2, H: 4, P: 8}, {T: 1, C: 4, H: 1, P: 8}, {T: 2, C: 2, H: 3, P: 4}} {
		for seed := range uint64(4) {
			m := oneLayer(t, dim, hd, b, tokens, 0.5, seed)
			plans := map[Policy]*Plan{}
			for _, pol := range []Policy{Ideal, Static, Balanced} {
				p, err := NewPlan(Config{Geometry: g, Block: b, Policy: pol, Free: true}, m)
				require.NoError(t, err)
				plans[pol] = p
			}
			for o := range NumOps {
				for pol, p := range plans {
					op := &p.Layers[0][o]
					seen := map[[2]int32]int{}
					done := map[int32]int{}
					last := map[int32]int{}
					var work int64
					for k, s := range op.Snapshots {
						for _, blk := range s.Blocks {
							seen[[2]int32{blk.Unit, blk.Col}]++
							last[blk.Unit] = k
							work += blk.Work
							require.Less(t, int(blk.PE), g.PEs())
							require.Less(t, int(blk.CHM), g.H)
						}
						for _, u := range s.Done {
							done[u]++
							assert.GreaterOrEqual(t, k, last[u], "%v %s %s: unit %d done before its last block", g, pol, o, u)
						}
					}
					assert.Len(t, done, op.Units, "%v %s %s: every unit completes", g, pol, o)
					for u, n := range done {
						assert.Equal(t, 1, n, "%v %s %s unit %d completes once", g, pol, o, u)
					}
					assert.Equal(t, op.Work, work)
					if o.Linear() {
						for k, n := range seen {
							assert.Equal(t, 1, n, "%v %s %s block %v", g, pol, o, k)
						}
						for chm, cols := range op.ColOrder {
							uniq := map[int32]bool{}
							for _, c := range cols {
								assert.False(t, uniq[c], "chm%d streams column %d twice", chm, c)
								uniq[c] = true
							}
						}
					}
					assert.GreaterOrEqual(t, op.Loads[pol].Max, float64(op.Fluid)-1, "%v %s %s: the busiest PE is at or above the fluid bound", g, pol, o)
				}
				st, ba := plans[Static].Layers[0][o].Loads, plans[Balanced].Layers[0][o].Loads
				assert.LessOrEqual(t, ba[Balanced].Max, st[Static].Max, "%v %s: balanced no busier than static", g, o)
			}
		}
	}
}

// TestIdealRoundsCostTheMean: under the ideal policy a linear op's rounds
// cost the mean non-zero work of its matrix per block, rounded so that the
// rounds add up to ceil(rounds * mean).
func TestIdealRoundsCostTheMean(t *testing.T) {
	m := oneLayer(t, 128, 32, 16, 40, 0.4, 9)
	g := Geometry{T: 2, C: 2, H: 2, P: 8}
	p, err := NewPlan(Config{Geometry: g, Block: 16, Policy: Ideal, Free: true}, m)
	require.NoError(t, err)
	op := &p.Layers[0][OpQ]
	w := m.Layers[0].Q
	num, den := int64(w.NNZBlocks())*g.PairCycles(16), int64(w.Cols/16)
	var sum int64
	for _, s := range op.Snapshots {
		sum += s.Cost
	}
	n := int64(len(op.Snapshots))
	assert.Equal(t, (n*num+den-1)/den, sum)
}

// TestProgram checks the program's order against the data dependencies,
// that it is the same whatever the loops hold, and that a loop too small for a snapshot is a
// LoopError that says how large it must be.
func TestProgram(t *testing.T) {
	m := oneLayer(t, 128, 32, 16, 40, 0.5, 2)
	m.Layers = append(m.Layers, m.Layers[0])
	p, err := NewPlan(Config{Geometry: Geometry{T: 2, C: 2, H: 2, P: 8}, Block: 16, Policy: Static, Free: true}, m)
	require.NoError(t, err)
	prog, err := NewProgram(m, p, Loops{Attention: 8, MLP: 8, Residual: 8, Layer: 8})
	require.NoError(t, err)
	total := 0
	for l := range p.Layers {
		for o := range NumOps {
			total += len(p.Layers[l][o].Snapshots)
		}
	}
	require.Len(t, prog, total, "every snapshot once")
	roomy, err := NewProgram(m, p, Loops{Attention: 1 << 20, MLP: 1 << 20, Residual: 1 << 20, Layer: 1 << 20})
	require.NoError(t, err)
	assert.Equal(t, prog, roomy, "the order does not depend on the loops' capacities")
	pos := map[Step]int{}
	for i, st := range prog {
		pos[st] = i
	}
	lastOf := func(l int, o Op) int {
		return pos[Step{Layer: int32(l), Op: o, Snapshot: int32(len(p.Layers[l][o].Snapshots) - 1)}]
	}
	firstOf := func(l int, o Op) int { return pos[Step{Layer: int32(l), Op: o}] }
	for l := range m.Layers {
		assert.Less(t, lastOf(l, OpK), firstOf(l, OpQK), "Q·K^T needs all of K")
		assert.Less(t, lastOf(l, OpV), firstOf(l, OpAV), "A·V needs all of V")
		assert.Less(t, firstOf(l, OpQK), firstOf(l, OpAV))
		assert.Less(t, firstOf(l, OpFC1), firstOf(l, OpFC2))
	}
	assert.Less(t, firstOf(0, OpFC2), firstOf(1, OpQ))

	_, err = NewProgram(m, p, Loops{Attention: 1, MLP: 8, Residual: 8, Layer: 8})
	var le *LoopError
	require.True(t, errors.As(err, &le), "%v", err)
	assert.Equal(t, "attention", le.Loop)
	assert.Equal(t, 1, le.Holds)
	_, err = NewProgram(m, p, Loops{Attention: le.Needs, MLP: 8, Residual: 8, Layer: 8})
	assert.NoError(t, err, "the capacity the error names is enough")
	_, err = NewProgram(m, p, Loops{Attention: le.Needs - 1, MLP: 8, Residual: 8, Layer: 8})
	assert.Error(t, err, "and the smallest")
}

// TestWalk checks the critical path on hand-made pipelines: a producer
// works p cycles per element into a FIFO of depth 1 and latency 3, a
// consumer works c. Every cycle of the makespan is counted once. With a
// slow consumer the path is its work after the first element; with both
// fast, the FIFO's round trip limits the rate and the path crosses the
// producer's waits on the full FIFO.
func TestWalk(t *testing.T) {
	for _, tc := range []struct {
		name      string
		p, c      int64
		work, lat map[Stage]int64 // expected work by stage
		latency   int64
		crossed   bool
	}{
		{name: "slow consumer", p: 10, c: 20, work: map[Stage]int64{StageEmbed: 10, StageGELU: 80}, latency: 3},
		{name: "round trip", p: 1, c: 1, crossed: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := runtime.NewGraph()
			var net Net
			prod, cons := net.AddActor("producer"), net.AddActor("consumer")
			recs := []*Recorder{{}, {}}
			link, err := NewLink[int](g, &net, "p->c", prod, cons, 1, 3, 0, StageEmbed, 4)
			require.NoError(t, err)
			g.AddActor("producer", func(ctx *runtime.Ctx) error {
				for i := range 4 {
					recs[prod].work(ctx, tc.p, StageEmbed, 0)
					if err := link.send(ctx, recs[prod], i); err != nil {
						return err
					}
				}
				return nil
			}, runtime.Writes(link.F))
			g.AddActor("consumer", func(ctx *runtime.Ctx) error {
				for range 4 {
					if _, err := link.recv(ctx, recs[cons]); err != nil {
						return err
					}
					recs[cons].work(ctx, tc.c, StageGELU, 0)
				}
				return nil
			}, runtime.Reads(link.F))
			stats, err := g.Run(context.Background(), runtime.Options{})
			require.NoError(t, err)
			cp, err := Walk(&net, recs)
			require.NoError(t, err)
			assert.Equal(t, stats.Makespan, cp.Makespan)
			by := map[Stage]int64{}
			var sum, latency int64
			for _, p := range cp.Parts {
				sum += p.Cycles
				if p.Kind == PathWork {
					by[p.Stage] += p.Cycles
				} else {
					latency += p.Cycles
				}
			}
			assert.Equal(t, cp.Makespan, sum)
			if tc.work != nil {
				assert.Equal(t, tc.work, by)
				assert.Equal(t, tc.latency, latency)
			}
			assert.Equal(t, tc.crossed, len(cp.Crossed) > 0, "crossed %v", cp.Crossed)
		})
	}
}

// TestUnion checks the busy-cycle union on hand cases and, on random
// intervals, the integer-sort path against the pair sort it falls back to
// (starts at 2^40 and beyond take the fallback; a shift keeps the union).
func TestUnion(t *testing.T) {
	for _, tc := range []struct {
		name string
		iv   [][2]int64
		want int64
	}{
		{"none", nil, 0},
		{"apart", [][2]int64{{10, 20}, {0, 5}}, 15},
		{"overlapping", [][2]int64{{0, 10}, {5, 15}, {12, 14}}, 15},
		{"nested and touching", [][2]int64{{3, 4}, {0, 10}, {10, 12}}, 12},
		{"empty intervals", [][2]int64{{5, 5}, {7, 9}}, 2},
	} {
		t.Run(tc.name, func(t *testing.T) { assert.Equal(t, tc.want, union(slices.Clone(tc.iv))) })
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 20 {
		iv := make([][2]int64, 1+rng.IntN(500))
		for i := range iv {
			s := rng.Int64N(10000)
			iv[i] = [2]int64{s, s + rng.Int64N(50)}
		}
		shifted := make([][2]int64, len(iv))
		for i, w := range iv {
			shifted[i] = [2]int64{w[0] + 1<<40, w[1] + 1<<40}
		}
		assert.Equal(t, union(shifted), union(iv))
	}
}

// TestLinearRounds: the rounds the controller compares the mappings by are
// those of the layouts themselves.
func TestLinearRounds(t *testing.T) {
	work := func(int) int64 { return 1 }
	for _, g := range []Geometry{{T: 2, C: 2, H: 2, P: 8}, {T: 4, C: 6, H: 4, P: 8}, {T: 1, C: 4, H: 3, P: 8}} {
		for _, rows := range []int{1, 2, 5, 13} {
			for _, ncols := range []int{1, 3, 4, 8, 24, 48, 96} {
				for _, hdb := range []int{1, 2, 4} {
					for _, mp := range []Mapping{Sweep, Expand} {
						want := linearLayout(g, mp, rows, ncols, hdb, work).rounds
						assert.Equal(t, want, linearRounds(g, mp, rows, ncols, hdb), "%+v %s rows %d cols %d hdb %d", g, mp, rows, ncols, hdb)
					}
				}
			}
		}
	}
}
