package runtime

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	goruntime "runtime"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// randomGraph builds a seeded layered DAG: sources, then layers of actors
// each joining (one Recv per input per step) the outputs of one or two
// actors of the layer before and broadcasting to every consumer, then one
// sink per last-layer actor. Capacities 1-4, latencies 1-3 and
// data-dependent work make the timing uneven. out collects the sinks' sums.
func randomGraph(t testing.TB, seed uint64, n int, out []int64) *Graph {
	return randomGraphCaps(t, seed, n, out, nil)
}

// randomGraphCaps is randomGraph with the FIFOs' capacities caps, in
// creation order, instead of the seed's (nil: the seed's).
func randomGraphCaps(t testing.TB, seed uint64, n int, out []int64, caps []int) *Graph {
	r := rand.New(rand.NewPCG(seed, 1))
	g := NewGraph()
	type node struct {
		name string
		outs []*FIFO[int64]
	}
	layer := make([]*node, 1+r.IntN(3))
	for i := range layer {
		layer[i] = &node{name: fmt.Sprintf("src%d", i)}
	}
	sources := layer
	var fifos int
	connect := func(from *node) *FIFO[int64] {
		fifos++
		capacity, latency := 1+r.IntN(4), 1+r.IntN(3)
		if caps != nil {
			capacity = caps[fifos-1]
		}
		f := mustFIFOT[int64](t, g, fmt.Sprintf("f%d", fifos), capacity, latency)
		from.outs = append(from.outs, f)
		return f
	}
	depth := 2 + r.IntN(3)
	for d := range depth {
		next := make([]*node, 1+r.IntN(4))
		for i := range next {
			nd := &node{name: fmt.Sprintf("n%d.%d", d, i)}
			next[i] = nd
			var ins []*FIFO[int64]
			first := r.IntN(len(layer))
			ins = append(ins, connect(layer[first]))
			if second := r.IntN(len(layer)); second != first && r.IntN(2) == 0 {
				ins = append(ins, connect(layer[second]))
			}
			cost := int64(1 + r.IntN(4))
			defer func() { // outputs are known once the next layer is wired
				outs := nd.outs
				g.AddActor(nd.name, func(ctx *Ctx) error {
					for {
						var sum int64
						for _, f := range ins {
							v, err := f.Recv(ctx)
							if errors.Is(err, ErrClosed) {
								return nil
							}
							if err != nil {
								return err
							}
							sum += v
						}
						ctx.Work(cost+sum%3, "step")
						for _, f := range outs {
							if err := f.Send(ctx, sum+1); err != nil {
								return err
							}
						}
					}
				}, Reads(ports(ins)...), Writes(ports(outs)...))
			}()
		}
		layer = next // actors nobody reads from consume and drop
	}
	for i, nd := range layer {
		f := connect(nd)
		g.AddActor(fmt.Sprintf("sink%d", i), func(ctx *Ctx) error {
			for {
				v, err := f.Recv(ctx)
				if errors.Is(err, ErrClosed) {
					return nil
				}
				if err != nil {
					return err
				}
				out[i] += v
				ctx.Work(1, "sink")
			}
		}, Reads(f))
	}
	for _, nd := range sources {
		outs := nd.outs
		c := int64(1 + r.IntN(3))
		g.AddActor(nd.name, func(ctx *Ctx) error {
			for v := range int64(n) {
				ctx.Work(c, "gen")
				for _, f := range outs {
					if err := f.Send(ctx, v); err != nil {
						return err
					}
				}
			}
			return nil
		}, Writes(ports(outs)...))
	}
	return g
}

// ports converts FIFOs to the Ports that Reads and Writes take.
func ports(fs []*FIFO[int64]) []Port {
	ps := make([]Port, len(fs))
	for i, f := range fs {
		ps[i] = f
	}
	return ps
}

// TestRandomGraphs: seeded random DAGs give the same statistics and
// results under GOMAXPROCS 1 and 4 and every scheduler.
func TestRandomGraphs(t *testing.T) {
	defer goruntime.GOMAXPROCS(goruntime.GOMAXPROCS(0))
	for seed := range uint64(12) {
		var want *Stats
		var wantOut []int64
		for i, procs := range []int{1, 4, 1, 4, 1, 4, 4} {
			goruntime.GOMAXPROCS(procs)
			out := make([]int64, 8)
			sched := schedulerOptions[i/2].name
			s, err := randomGraph(t, seed, 60, out).Run(context.Background(), schedulerOptions[i/2].opt)
			require.NoError(t, err, "seed %d", seed)
			if want == nil {
				want, wantOut = s, out
				// Not trivial: every run moves data and someone waits.
				require.NotZero(t, out[0], "seed %d", seed)
				var waited int64
				for _, a := range s.Actors {
					waited += a.TotalStarved() + a.TotalBlocked()
				}
				require.Positive(t, waited, "seed %d", seed)
				continue
			}
			assert.Equal(t, want, s, "seed %d procs %d %s", seed, procs, sched)
			assert.Equal(t, wantOut, out, "seed %d procs %d %s", seed, procs, sched)
		}
	}
}
