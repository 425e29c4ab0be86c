package topology

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestAppend runs two batches on one accelerator and appends the second's
// result to the first's: every sum is the two added, times shift, and the
// path still adds up to the makespan.
func TestAppend(t *testing.T) {
	w, p, imgs := mnistTiny(t)
	acc, err := NewAccelerator(w, p, 0, preset(t, "small", FidelityDetailed))
	require.NoError(t, err)
	a, err := acc.Run(context.Background(), imgs)
	require.NoError(t, err)
	b, err := acc.Run(context.Background(), imgs[:1])
	require.NoError(t, err)
	want := a.Cycles + b.Cycles
	busy := a.Stats.Actor("mpca").Busy + b.Stats.Actor("mpca").Busy
	memory := a.Path.Cycles(CauseMemory) + b.Path.Cycles(CauseMemory)
	bStart := b.Images[0].Start

	a.Append(b)
	assert.Equal(t, want, a.Cycles)
	assert.Equal(t, want, a.Stats.Makespan)
	require.Len(t, a.Images, 3)
	assert.Equal(t, a.Cycles-b.Cycles+bStart, a.Images[2].Start)
	assert.InDelta(t, float64(want)/3, a.CyclesPerImage, 1e-9)
	assert.Equal(t, busy, a.Stats.Actor("mpca").Busy)
	assert.InDelta(t, float64(busy)/float64(want), a.Stats.Actor("mpca").Utilisation, 1e-12)
	assert.Equal(t, memory, a.Path.Cycles(CauseMemory))
	checkPath(t, a)
	assert.NotEmpty(t, a.Path.Bottleneck)
	for _, f := range a.Stats.FIFOs {
		var sum int64
		for _, c := range f.Occupancy {
			sum += c
		}
		assert.Equal(t, want, sum, "%s: the occupancy histogram covers the whole run", f.Name)
	}
}
