package report

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"vitflow/runtime"
	"vitflow/topology"
	"vitflow/vit"
)

func TestGroup(t *testing.T) {
	tests := []struct {
		n    int64
		want string
	}{{0, "0"}, {999, "999"}, {1000, "1,000"}, {-1234567, "-1,234,567"}, {100000, "100,000"}}
	for _, tt := range tests {
		assert.Equal(t, tt.want, group(tt.n))
	}
	assert.Equal(t, "12.5", groupf(12.5))
	assert.Equal(t, "1,235", groupf(1234.5))
	assert.Equal(t, "7", groupf(7))
}

func sampleStats() *runtime.Stats {
	return &runtime.Stats{
		Makespan: 1000,
		Actors: []runtime.ActorStats{
			{Name: "chm0", Busy: 900, Utilisation: 0.9,
				Starved: []runtime.PortCycles{{FIFO: "act0", Cycles: 20}, {FIFO: "w0", Cycles: 60}},
				Blocked: []runtime.PortCycles{{FIFO: "out0", Cycles: 10}}},
			{Name: "loader", Busy: 500, Utilisation: 0.5,
				Blocked: []runtime.PortCycles{{FIFO: "w0", Cycles: 300}, {FIFO: "w1", Cycles: 300}}},
			{Name: "softmax", Busy: 100, Utilisation: 0.1},
			{Name: "chm1", Busy: 900, Utilisation: 0.9},
		},
		FIFOs: []runtime.FIFOStats{
			{Name: "w0", Capacity: 4, Elements: 40, MaxOccupancy: 4, FullFraction: 0.3, EmptyFraction: 0.1},
			{Name: "act0", Capacity: 2, Elements: 9, MaxOccupancy: 1, EmptyFraction: 0.7},
			{Name: "w1", Capacity: 4, Elements: 40, MaxOccupancy: 4, FullFraction: 0.3, EmptyFraction: 0.2},
		},
	}
}

func TestUnitsAndFIFOs(t *testing.T) {
	s := sampleStats()
	units := Units(s)
	require.Len(t, units, 4)
	assert.Equal(t, Unit{Name: "chm0", Busy: 900, Starved: 80, Blocked: 10, Utilization: 0.9, StarvedOn: "w0", BlockedOn: "out0"}, units[0])
	assert.Equal(t, "w0", units[1].BlockedOn, "ties go to the first port")
	assert.Empty(t, units[2].StarvedOn)

	fifos := FIFOs(s)
	require.Len(t, fifos, 3)
	assert.Equal(t, FIFO{Name: "w0", Capacity: 4, Elements: 40, MaxOccupancy: 4, FullFraction: 0.3, EmptyFraction: 0.1}, fifos[0])

	names := func(us []Unit) (out []string) {
		for _, u := range us {
			out = append(out, u.Name)
		}
		return out
	}
	assert.Equal(t, []string{"chm0", "chm1", "loader"}, names(Busiest(units, 3)), "ties by name")
	assert.Equal(t, []string{"loader", "chm0"}, names(MostBlocked(units, 5)), "units never blocked are left out")
	full := FullestFIFOs(fifos, 5)
	require.Len(t, full, 2)
	assert.Equal(t, "w0", full[0].Name)
	assert.Equal(t, "w1", full[1].Name)
}

func sampleReport() *Report {
	acc := 0.5
	s := sampleStats()
	return &Report{
		Model: "mnist-tiny", Weights: "random", Seed: 1,
		Pruning:  Pruning{Source: "magnitude", Block: 16, Density: 0.5, Keep: 0.5, TDLayers: []int{0, 1}},
		Topology: "small", Fidelity: "detailed", Balance: "balanced", ClockMHz: 200,
		Inputs: "MNIST test images 0-1", Images: 2, Top1: []int{7, 3}, Labels: []int{7, 2}, Accuracy: &acc,
		CyclesTotal: 2000, CyclesPerImage: 1000, LatencyUSPerImage: 5, ImagesPerSecond: 200000,
		EstimatorCyclesPerImage: 800, EstimatorUSPerImage: 4,
		Layers: []Layer{{Index: 0, TokensIn: 50, TokensOut: 27, HeadsKept: 4, Cycles: 1000, EstimatorCycles: 800, PEImbalance: 1.25,
			Ops: []Op{
				{Name: "q", Kind: KindMPCA, Cycles: 700, EstimatorCycles: 600, Fluid: 500, Busiest: 650},
				{Name: "fc1", Kind: KindMPCA, Cycles: 250, EstimatorCycles: 200, Fluid: 200, Busiest: 250},
				{Name: "softmax", Kind: KindSFU, Cycles: 30},
				{Name: "gelu", Kind: KindSFU, Cycles: 12},
				{Name: "tokendrop", Kind: KindTokenDrop, Cycles: 8},
			}}},
		Units: withPath(Units(s)), FIFOs: FIFOs(s),
		Imbalance: []Imbalance{{Policy: "ideal", MaxOverMean: 1, ComputeCycles: 800},
			{Policy: "static", MaxOverMean: 1.5, ComputeCycles: 1200}, {Policy: "balanced", MaxOverMean: 1.25, ComputeCycles: 1000, FluidCycles: 800, Used: true}},
		CriticalPath: []GapCause{{Cause: "MPCA compute at the fluid bound", Cycles: 1400, PerImage: 700},
			{Cause: "MPCA compute above the fluid bound (imbalance, padding)", Cycles: 300, PerImage: 150},
			{Cause: "softmax", Cycles: 200, PerImage: 100}, {Cause: "FIFO latency between units", Cycles: 100, PerImage: 50}},
		Gap: []GapCause{{Cause: "MPCA compute beyond the estimator's snapshots", Cycles: 100, PerImage: 50},
			{Cause: "softmax", Cycles: 200, PerImage: 100}, {Cause: "FIFO latency between units", Cycles: 100, PerImage: 50}},
		Backpressure: []Backpressure{{FIFO: "mpca->softmax", Depth: 1, Bytes: 6336, Cycles: 120}},
		Bottleneck:   "The bottleneck is softmax: 10.0% of the critical path.",
		MACs:         Counts{Dense: 9_880_000, Pruned: 2_690_000},
		Params:       Counts{Dense: 205_000, Pruned: 106_000},
	}
}

// withPath puts chm0 on the critical path.
func withPath(units []Unit) []Unit {
	units[0].Critical, units[0].Hidden = 850, 50
	return units
}

func TestWriteText(t *testing.T) {
	var out bytes.Buffer
	require.NoError(t, sampleReport().WriteText(&out))
	text := out.String()
	for _, want := range []string{
		"mnist-tiny, random weights (seed 1): predictions are meaningless",
		"b=16 density 0.5 (one-shot magnitude), token keep 0.5 at layers 0,1",
		"small: detailed fidelity, balanced load balancing, 200 MHz",
		"accuracy  1/2 = 50.0%",
		"1,000 cycles/image = 5.00 us at 200 MHz, 200,000 images/s (2,000 cycles for 2 images)",
		"simulated is 1.250x it (+25.0%)",
		"balanced  1.250     1,000       +25.0%            +25.0%  <- this run",
		"chm0                        850      42.5%  900   50",
		"bottleneck  The bottleneck is softmax: 10.0% of the critical path.",
		"MPCA compute above the fluid bound (imbalance, padding)  150           15.0%",
		"MPCA compute beyond the estimator's snapshots  50",
		"mpca->softmax                    1      6.2 KiB  120",
	} {
		assert.Contains(t, text, want)
	}
	// The sim and est lines of layer 0, a column for each op and unit on the path.
	lines := strings.Split(text, "\n")
	var layer []string
	for i, l := range lines {
		if strings.HasPrefix(l, "layer ") {
			layer = strings.Fields(l)
			assert.Equal(t, []string{"0", "50->27", "4", "1.250", "sim", "1,000", "700", "250", "30", "12", "8"}, strings.Fields(lines[i+1]))
			assert.Equal(t, []string{"est", "800", "600", "200", "0", "0", "0"}, strings.Fields(lines[i+2]))
		}
	}
	assert.Equal(t, []string{"layer", "tokens", "heads", "PE", "max/mean", "total", "q", "fc1", "softmax", "gelu", "tokendrop"}, layer)
	assert.Contains(t, text, "most blocked units")
	assert.Contains(t, text, "fullest FIFOs")
}

func TestWriteTextOfAReferenceRun(t *testing.T) {
	r := sampleReport()
	r.Reference = true
	r.CyclesTotal, r.CyclesPerImage, r.Units, r.FIFOs, r.Imbalance, r.Gap = 0, 0, nil, nil, nil, nil
	r.Labels, r.Accuracy = nil, nil
	r.Top1 = make([]int, 70)
	r.Images = 70
	var out bytes.Buffer
	require.NoError(t, r.WriteText(&out))
	text := out.String()
	assert.Contains(t, text, "reference forward pass only")
	assert.Contains(t, text, "800 cycles/image = 4.00 us")
	assert.Contains(t, text, "... 6 more (see -json)")
	assert.NotContains(t, text, "accuracy")
	assert.NotContains(t, text, "busiest units")
	assert.NotContains(t, text, " sim ")
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestWriteTextReportsWriteErrors(t *testing.T) {
	assert.EqualError(t, sampleReport().WriteText(failingWriter{}), "disk full")
}

func TestJSONRoundTrip(t *testing.T) {
	want := sampleReport()
	data, err := json.Marshal(want)
	require.NoError(t, err)
	var got Report
	require.NoError(t, json.Unmarshal(data, &got))
	assert.Equal(t, *want, got)

	var fields map[string]any
	require.NoError(t, json.Unmarshal(data, &fields))
	for _, key := range []string{"model", "weights", "topology", "fidelity", "clock_mhz", "images", "top1", "labels",
		"accuracy", "cycles_total", "cycles_per_image", "latency_us_per_image", "estimator_cycles_per_image",
		"layers", "units", "fifos", "macs", "params", "imbalance", "gap", "pruning"} {
		assert.Contains(t, fields, key)
	}
	unit := fields["units"].([]any)[0].(map[string]any)
	for _, key := range []string{"name", "busy", "starved", "blocked", "utilization"} {
		assert.Contains(t, unit, key)
	}
	fifo := fields["fifos"].([]any)[0].(map[string]any)
	for _, key := range []string{"name", "capacity", "max_occupancy", "full_fraction", "empty_fraction"} {
		assert.Contains(t, fifo, key)
	}
	layer := fields["layers"].([]any)[0].(map[string]any)
	for _, key := range []string{"index", "tokens_in", "tokens_out", "cycles", "ops"} {
		assert.Contains(t, layer, key)
	}
}

func TestSetAccuracy(t *testing.T) {
	tests := []struct {
		name         string
		top1, labels []int
		want         *float64
	}{
		{"three of four", []int{1, 2, 3, 4}, []int{1, 2, 3, 0}, ptr(0.75)},
		{"no labels", []int{1, 2}, nil, nil},
		{"no images", nil, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &Report{Top1: tt.top1, Labels: tt.labels}
			r.SetAccuracy()
			assert.Equal(t, tt.want, r.Accuracy)
		})
	}
}

func ptr(x float64) *float64 { return &x }

// TestAddSimulationTimingOnly: a timing-only run fills in the same
// simulated figures as the full run and no predictions, and the text says
// so instead of printing an accuracy.
func TestAddSimulationTimingOnly(t *testing.T) {
	cfg, err := vit.Preset("mnist-tiny")
	require.NoError(t, err)
	d, err := topology.Preset("small")
	require.NoError(t, err)
	w := vit.RandomWeights(cfg, 1)
	imgs := [][]float32{make([]float32, cfg.InChans*cfg.ImageSize*cfg.ImageSize)}
	add := func(timing bool) *Report {
		res, err := topology.Simulate(context.Background(), topology.SimInput{Weights: w, Desc: d, Images: imgs, TimingOnly: timing})
		require.NoError(t, err)
		r := &Report{Model: cfg.Name, Weights: "random", Images: 1, Labels: []int{3}}
		require.NoError(t, AddSimulation(r, res))
		return r
	}
	full, timing := add(false), add(true)
	require.NotNil(t, full.Accuracy)
	assert.True(t, timing.TimingOnly)
	assert.Nil(t, timing.Top1)
	assert.Nil(t, timing.Logits)
	assert.Nil(t, timing.Accuracy)
	full.TimingOnly, full.Top1, full.Logits, full.Accuracy = true, nil, nil, nil
	assert.Equal(t, full, timing, "the same simulated figures")

	var text bytes.Buffer
	require.NoError(t, timing.WriteText(&text))
	assert.Contains(t, text.String(), "timing only: no predictions")
	assert.NotContains(t, text.String(), "accuracy")
	assert.NotContains(t, text.String(), "top1")
	js, err := json.Marshal(timing)
	require.NoError(t, err)
	assert.Contains(t, string(js), `"timing_only":true`)
}
