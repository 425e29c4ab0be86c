package runtime

import (
	"context"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestOccupancySeries checks that a FIFO's occupancy series holds what its
// histogram holds (the same element-cycles, within the makespan, in at most
// seriesBuckets buckets), alone and after Append.
func TestOccupancySeries(t *testing.T) {
	run := func(n int) *Stats {
		var got []int
		s, err := mixedGraph(t, n, &got).Run(context.Background(), Options{})
		require.NoError(t, err)
		return s
	}
	check := func(s *Stats) {
		for _, f := range s.FIFOs {
			var want, got float64
			for k, c := range f.Occupancy {
				want += float64(k) * float64(c)
			}
			for _, a := range f.Series {
				got += a
			}
			assert.InDelta(t, want, got, 1e-6*want+1e-9, f.Name)
			assert.LessOrEqual(t, len(f.Series), seriesBuckets, f.Name)
			assert.LessOrEqual(t, int64(len(f.Series)-1)*f.SeriesBucket, s.Makespan, f.Name)
			assert.GreaterOrEqual(t, f.SeriesBucket*seriesBuckets, s.Makespan, f.Name)
		}
	}
	a := run(300)
	check(a)
	a.Append(run(120))
	check(a)
}

func TestSeriesCoarsen(t *testing.T) {
	var s series
	s.add(0, 10, 2)               // 20 element-cycles in the first 10 cycles
	s.add(10, 3*seriesBuckets, 1) // outgrows width 1 and 2
	assert.Equal(t, int64(4), s.width())
	assert.Equal(t, 4*2.0+0*1, s.area[0]-0, "bucket 0 holds cycles 0-3 at level 2")
	assert.Equal(t, 2*2.0+2*1, s.area[2], "bucket 2 holds cycles 8-11: two at level 2, two at level 1")
	assert.Equal(t, 4.0, s.area[len(s.area)-1])
}

// TestSeriesSums checks add against a cycle-by-cycle sum over spans in time
// order: short ones within a bucket, empty ones, gaps at level 0, and long
// ones that coarsen.
func TestSeriesSums(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for run := range 20 {
		var s series
		var perCycle []float64 // the level in each cycle
		for range 2000 {
			n := rng.IntN(4) // empty spans and spans within a bucket
			if rng.IntN(50) == 0 {
				n = rng.IntN(5000) // a gap or a long span
			}
			level := float64(rng.IntN(4))
			at := int64(len(perCycle))
			s.add(at, at+int64(n), level)
			for range n {
				perCycle = append(perCycle, level)
			}
		}
		want := make([]float64, len(s.area))
		for c, level := range perCycle {
			if i := int64(c) >> s.shift; level != 0 {
				require.Less(t, i, int64(len(want)), "run %d: cycle %d at level %v beyond the buckets", run, c, level)
				want[i] += level
			}
		}
		require.Equal(t, want, s.area, "run %d", run)
	}
}

// TestOccupancySpans checks the sweep's series (integer sums within a
// bucket, added to it when a span leaves it) against add over the same
// spans, and its histogram against the spans' lengths by level.
func TestOccupancySpans(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for run := range 20 {
		o := occupancy{hist: make([]int64, 4)}
		var want series
		wantHist := make([]int64, 4)
		at := int64(0)
		for i := range 3000 {
			n := int64(rng.IntN(4))
			if rng.IntN(50) == 0 {
				n = int64(rng.IntN(5000))
			}
			o.level = int64(rng.IntN(4))
			if i < 2 {
				// A span that ends at the buckets' end, then one past it
				// (that one must coarsen), and in run 0 nothing else.
				n, o.level = seriesBuckets-at+int64(i), 1
			} else if run == 0 {
				break
			}
			want.add(at, at+n, float64(o.level))
			wantHist[o.level] += n
			at += n
			o.span(at)
		}
		o.flush()
		require.Equal(t, want.shift, o.series.shift, "run %d", run)
		require.Equal(t, want.area, o.series.area, "run %d", run)
		require.Equal(t, wantHist, o.hist, "run %d", run)
	}
}
