package report

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"vitflow/runtime"
	"vitflow/topology"
)

func TestOccupancyBins(t *testing.T) {
	tests := []struct {
		name string
		hist []int64
		fr   []float64
		lows []int
	}{
		{"one bin a level", []int64{1, 1, 2}, []float64{0.25, 0.25, 0.5}, []int{0, 1, 2}},
		{"levels grouped two a bin", make([]int64, 33), make([]float64, 17), []int{0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30, 32}},
		{"none", nil, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fr, lows := FIFO{Occupancy: tt.hist}.OccupancyBins()
			assert.Equal(t, tt.fr, fr)
			assert.Equal(t, tt.lows, lows)
		})
	}
	deep := make([]int64, 1025)
	deep[1024], deep[0] = 3, 1
	fr, lows := FIFO{Occupancy: deep}.OccupancyBins()
	assert.Len(t, fr, histogramBins, "33 levels a bin, the last holding levels 1023 and 1024")
	assert.Equal(t, 0.25, fr[0])
	assert.Equal(t, 0.75, fr[len(fr)-1])
	assert.Equal(t, 1023, lows[len(lows)-1])
}

func TestFIFOsOverTime(t *testing.T) {
	s := &runtime.Stats{Makespan: 10, FIFOs: []runtime.FIFOStats{{
		Name: "f", Capacity: 2, Occupancy: []int64{4, 4, 2},
		// 12 element-cycles: 6 in cycles 0-3, 6 in 4-7, none after.
		Series: []float64{6, 6}, SeriesBucket: 4,
	}}}
	f := FIFOs(s)[0]
	assert.InDelta(t, 0.8, f.MeanOccupancy, 1e-12, "(4*0 + 4*1 + 2*2) / 10")
	assert.Equal(t, []float64{1.5, 1.5, 0}, f.OccupancyOverTime, "the trailing empty bucket, cycles 8-9, is there")
	assert.Equal(t, int64(4), f.BucketCycles)
}

func TestFIFOsByMeanFill(t *testing.T) {
	fifos := []FIFO{{Name: "a", Capacity: 4, MeanOccupancy: 1}, {Name: "b", Capacity: 2, MeanOccupancy: 1},
		{Name: "c", Capacity: 8}, {Name: "d", Capacity: 4, MeanOccupancy: 1}}
	var names []string
	for _, f := range FIFOsByMeanFill(fifos, 5) {
		names = append(names, f.Name)
	}
	assert.Equal(t, []string{"b", "a", "d"}, names, "by mean fill, ties by name, unused left out")
}

func TestOpLoads(t *testing.T) {
	loads := fullReport().OpLoads()
	require.Len(t, loads, 6, "q and fc1 under three policies")
	assert.Equal(t, OpLoad{Op: "q", Policy: "static", Mean: 2.0625, Min: 2, Max: 2.125}, loads[1], "(16/8 + 17/8) / 2")
	assert.Equal(t, OpLoad{Op: "fc1", Policy: "balanced", Mean: 1.5, Min: 1.5, Max: 1.5}, loads[5])
}

func TestTopologySettings(t *testing.T) {
	d, err := topology.Preset("u250")
	require.NoError(t, err)
	settings, err := TopologySettings(d)
	require.NoError(t, err)
	keys := map[string]string{}
	for i, s := range settings {
		keys[s.Key] = s.Value
		if i > 0 {
			assert.Less(t, settings[i-1].Key, s.Key, "sorted")
		}
	}
	assert.Equal(t, `"u250"`, keys["name"])
	assert.Equal(t, "300", keys["clock_mhz"])
	assert.Contains(t, keys, "mpca.t")
	assert.Contains(t, keys, "fifo.weight_depth")
	assert.Greater(t, len(settings), 30, "every setting")
}

func TestNumberTicks(t *testing.T) {
	tests := []struct {
		lo, hi float64
		want   []string
	}{
		{0, 2600, []string{"0", "500", "1,000", "1,500", "2,000", "2,500"}},
		{0, 1, []string{"0.0", "0.2", "0.4", "0.6", "0.8", "1.0"}},
		{0, 0, []string{"0"}},
		{1, 26, []string{"5", "10", "15", "20", "25"}},
		{0, 135134, []string{"0", "25,000", "50,000", "75,000", "100,000", "125,000"}},
		{0, 1.4, []string{"0.00", "0.25", "0.50", "0.75", "1.00", "1.25"}},
	}
	for _, tt := range tests {
		var got []string
		for _, tick := range numberTicks.Ticks(tt.lo, tt.hi) {
			got = append(got, tick.Label)
		}
		assert.Equal(t, tt.want, got, "%v to %v", tt.lo, tt.hi)
	}
}
