package runtime

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestStatsAppend appends the statistics of a second run of the same graph
// to a first's: every count is the two added, finish times shift by the
// first makespan, and the ratios are those of the whole.
func TestStatsAppend(t *testing.T) {
	run := func(n int) *Stats {
		var got []int
		s, err := mixedGraph(t, n, &got).Run(context.Background(), Options{})
		require.NoError(t, err)
		return s
	}
	a, b := run(30), run(12)
	first, second := run(30), run(12)
	a.Append(b)

	want := first.Makespan + second.Makespan
	assert.Equal(t, want, a.Makespan)
	for i, x := range a.Actors {
		f, s := first.Actors[i], second.Actors[i]
		assert.Equal(t, first.Makespan+s.Finish, x.Finish, x.Name)
		assert.Equal(t, f.Busy+s.Busy, x.Busy, x.Name)
		assert.InDelta(t, float64(f.Busy+s.Busy)/float64(want), x.Utilisation, 1e-12, x.Name)
		assert.Equal(t, f.TotalStarved()+s.TotalStarved(), x.TotalStarved(), x.Name)
		assert.Equal(t, f.TotalBlocked()+s.TotalBlocked(), x.TotalBlocked(), x.Name)
		var fl, sl, xl int64
		for _, l := range f.ByLabel {
			fl += l.Cycles
		}
		for _, l := range s.ByLabel {
			sl += l.Cycles
		}
		for _, l := range x.ByLabel {
			xl += l.Cycles
		}
		assert.Equal(t, fl+sl, xl, x.Name)
	}
	assert.NotEmpty(t, a.Actor("pick").ByLabel, "the labels were merged")
	for i, x := range a.FIFOs {
		f, s := first.FIFOs[i], second.FIFOs[i]
		assert.Equal(t, f.Elements+s.Elements, x.Elements, x.Name)
		assert.Equal(t, max(f.MaxOccupancy, s.MaxOccupancy), x.MaxOccupancy, x.Name)
		var sum int64
		for _, c := range x.Occupancy {
			sum += c
		}
		assert.Equal(t, want, sum, "%s: the occupancy histogram covers both runs", x.Name)
		assert.InDelta(t, float64(x.Occupancy[0])/float64(want), x.EmptyFraction, 1e-12, x.Name)
		assert.InDelta(t, float64(x.Occupancy[x.Capacity])/float64(want), x.FullFraction, 1e-12, x.Name)
	}
}
