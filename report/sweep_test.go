package report

import (
	"bytes"
	"math"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"vitflow/topology"
)

func TestParetoFront(t *testing.T) {
	for _, tc := range []struct {
		name  string
		x, y  []float64
		front []int
	}{
		{"one", []float64{1}, []float64{1}, []int{0}},
		{"dominated", []float64{1, 2}, []float64{1, 2}, []int{0}},
		{"trade-off", []float64{3, 1, 2}, []float64{1, 3, 2}, []int{1, 2, 0}},
		{"equal x keeps the lower y", []float64{1, 1}, []float64{2, 1}, []int{1}},
		{"ties keep the first", []float64{1, 1}, []float64{1, 1}, []int{0}},
		{"NaN left out", []float64{math.NaN(), 2}, []float64{0, 5}, []int{1}},
	} {
		assert.Equal(t, tc.front, ParetoFront(tc.x, tc.y), tc.name)
	}
}

func testSweep() *Sweep {
	acc := func(x float64) *float64 { return &x }
	row := func(i int, h, d string, lat float64, a float64, bytes int64) SweepRow {
		return SweepRow{Index: i, Hash: "h" + h + d, Settings: []Setting{{"mpca.h", h}, {"balance", d}},
			CyclesPerImage: lat * 300, LatencyUS: lat, ImagesPerSecond: 1e6 / lat, Accuracy: acc(a),
			Resources: topology.Resources{OnChipBytes: bytes, DSPs: 100}}
	}
	return &Sweep{Model: "mnist-tiny", Weights: "embedded dense", Topology: "u250", Inputs: "MNIST", Images: 4,
		Axes: []string{"mpca.h", "balance"},
		Rows: []SweepRow{
			row(0, "2", "static", 40, 0.9, 1000),
			row(1, "2", "balanced", 35, 0.8, 3000),
			row(2, "4", "static", 30, 0.7, 2000),
			{Index: 3, Settings: []Setting{{"mpca.h", "4"}, {"balance", "balanced"}}, Error: "it broke"},
		}}
}

func TestSweepFronts(t *testing.T) {
	s := testSweep()
	names := func(rows []SweepRow) []int {
		var out []int
		for _, r := range rows {
			out = append(out, r.Index)
		}
		return out
	}
	assert.Equal(t, []int{2, 1, 0}, names(s.AccuracyFront()), "each faster point is less accurate")
	assert.Equal(t, []int{2, 0}, names(s.MemoryFront()), "point 1 is slower and larger than point 2")
	var b bytes.Buffer
	require.NoError(t, s.WriteText(&b))
	text := b.String()
	assert.Contains(t, text, "4 points, 1 failed")
	assert.Contains(t, text, "failed: mpca.h=4 balance=balanced: it broke")
	assert.Contains(t, text, "fastest: mpca.h=4 balance=static")
}

func TestSweepPlotsAndPage(t *testing.T) {
	s := testSweep()
	plots, err := s.Plots()
	require.NoError(t, err)
	var names []string
	for _, p := range plots {
		names = append(names, p.Name)
		svg, err := p.SVG()
		require.NoError(t, err)
		assert.True(t, bytes.Contains(svg, []byte("<svg")), p.Name)
		png, err := p.PNG()
		require.NoError(t, err)
		assert.True(t, bytes.HasPrefix(png, []byte("\x89PNG")), p.Name)
	}
	assert.Equal(t, []string{"accuracy-latency", "memory-latency", "latency-mpca.h", "latency-balance"}, names)
	var b bytes.Buffer
	require.NoError(t, s.WriteHTML(&b))
	page := b.String()
	assert.Equal(t, 4, strings.Count(page, "<figure"))
	assert.Contains(t, page, "<td>it broke</td>")

	// Without accuracy there is no accuracy plot; with no point run, no plot at all.
	for i := range s.Rows {
		s.Rows[i].Accuracy = nil
	}
	plots, err = s.Plots()
	require.NoError(t, err)
	assert.Equal(t, "memory-latency", plots[0].Name)
	s.Rows = s.Rows[3:]
	_, err = s.Plots()
	assert.ErrorIs(t, err, ErrNothingToPlot)
	b.Reset()
	require.NoError(t, s.WriteHTML(&b), "a sweep whose points all failed still has a page")
}
