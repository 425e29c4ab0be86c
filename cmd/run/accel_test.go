package main

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"io"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"vitflow/report"
	"vitflow/topology"
)

// fast is a small simulated run: two MNIST images on the small preset, with
// seeded random weights so that the masks do not depend on training.
var fast = []string{"-variant", "random", "-topology", "small", "-images", "2"}

// fastFiles is the same without MNIST (whose loading dominates): two image files.
func fastFiles(t *testing.T) []string {
	return []string{"-topology", "small", "-image", pngFile(t), "-image", noisePNG(t)}
}

func TestSimulatedRunMatchesTheReference(t *testing.T) {
	code, stdout, stderr := invoke(append([]string{"-json", "-logits"}, fast...)...)
	require.Equal(t, 0, code, stderr)
	sim := decode(t, stdout)
	var fields map[string]json.RawMessage
	require.NoError(t, json.Unmarshal([]byte(stdout), &fields))
	for _, key := range []string{"cycles_total", "cycles_per_image", "latency_us_per_image", "images_per_second",
		"estimator_cycles_per_image", "layers", "units", "fifos", "imbalance", "critical_path", "gap", "bottleneck", "macs", "params"} {
		assert.Contains(t, fields, key)
	}

	code, stdout, stderr = invoke(append([]string{"-json", "-logits", "-reference"}, fast...)...)
	require.Equal(t, 0, code, stderr)
	ref := decode(t, stdout)

	assert.False(t, sim.Reference)
	assert.Equal(t, "small", sim.Topology)
	assert.Equal(t, ref.Top1, sim.Top1)
	assert.Equal(t, ref.Labels, sim.Labels)
	require.Len(t, sim.Logits, 2)
	for i := range sim.Logits {
		require.Len(t, sim.Logits[i], len(ref.Logits[i]))
		scale := 0.0
		for _, x := range ref.Logits[i] {
			scale = math.Max(scale, math.Abs(float64(x)))
		}
		for j := range sim.Logits[i] {
			assert.InDelta(t, ref.Logits[i][j], sim.Logits[i][j], 1e-4*scale, "image %d logit %d", i, j)
		}
	}

	assert.Positive(t, sim.CyclesTotal)
	assert.InDelta(t, float64(sim.CyclesTotal)/2, sim.CyclesPerImage, 1e-9)
	assert.InDelta(t, sim.CyclesPerImage/200, sim.LatencyUSPerImage, 1e-9, "small runs at 200 MHz")
	assert.Equal(t, ref.EstimatorCyclesPerImage, sim.EstimatorCyclesPerImage)
	require.Len(t, sim.Layers, 4)
	for _, l := range sim.Layers {
		assert.Positive(t, l.Cycles, "layer %d", l.Index)
		assert.GreaterOrEqual(t, l.PEImbalance, 1.0, "layer %d", l.Index)
		var sum int64
		for _, o := range l.Ops {
			sum += o.Cycles
			if o.Kind == report.KindMPCA {
				assert.LessOrEqual(t, o.Fluid, o.Busiest, "layer %d op %s: no PE beats the fluid bound", l.Index, o.Name)
			}
		}
		assert.Equal(t, l.Cycles, sum, "layer %d: its columns add up", l.Index)
	}
	var path int64
	for _, c := range sim.CriticalPath {
		path += c.Cycles
	}
	assert.Equal(t, sim.CyclesTotal, path, "the critical path's causes add up to the run")
	assert.Equal(t, ref.Layers[0].TokensOut, sim.Layers[0].TokensOut)
	assert.NotEmpty(t, sim.Units)
	assert.NotEmpty(t, sim.FIFOs)
	policies := map[string]bool{}
	used := 0
	for _, im := range sim.Imbalance {
		policies[im.Policy] = true
		if im.Used {
			used++
			assert.Equal(t, "balanced", im.Policy, "the small preset balances")
		}
	}
	assert.Equal(t, map[string]bool{"ideal": true, "static": true, "balanced": true}, policies)
	assert.Equal(t, 1, used)
	// Real masks cost more than the ideal average; for these masks the
	// balanced policy recovers part of what static assignment loses.
	compute := map[string]int64{}
	for _, im := range sim.Imbalance {
		compute[im.Policy] = im.ComputeCycles
	}
	assert.Less(t, compute["ideal"], compute["balanced"])
	assert.Less(t, compute["balanced"], compute["static"])
	assert.NotEmpty(t, sim.Bottleneck)
}

func TestBalanceFlagOverridesTheTopology(t *testing.T) {
	code, stdout, stderr := invoke(append([]string{"-json", "-balance", "static"}, fastFiles(t)...)...)
	require.Equal(t, 0, code, stderr)
	r := decode(t, stdout)
	assert.Equal(t, "static", r.Balance)
	for _, im := range r.Imbalance {
		assert.Equal(t, im.Policy == "static", im.Used, im.Policy)
	}
}

func TestTextReport(t *testing.T) {
	code, stdout, stderr := invoke(fast...)
	require.Equal(t, 0, code, stderr)
	assert.Empty(t, stderr)
	for _, want := range []string{"mnist-tiny, random weights (seed 1)", "b=16 density 0.5", "token keep 0.5 at layers 0,1,2",
		"small: detailed fidelity, balanced load balancing, 200 MHz", "2 images: MNIST test images 0-1", "accuracy", "cycles/image",
		"images/s", "estimator", "critical path", "gap to the estimator", "bottleneck", "PE load", "units on the critical path", "busiest units", "sim", "est"} {
		assert.Contains(t, stdout, want)
	}
}

func TestTraceIsWrittenAsJSON(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "run.trace.json")
	code, _, stderr := invoke("-topology", "small", "-image", pngFile(t), "-trace", path)
	require.Equal(t, 0, code, stderr)
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	var trace struct {
		TraceEvents []map[string]any `json:"traceEvents"`
	}
	require.NoError(t, json.Unmarshal(data, &trace), "the trace is JSON")
	names := map[string]bool{}
	for _, e := range trace.TraceEvents {
		if name, ok := e["name"].(string); ok {
			names[name] = true
		}
	}
	assert.Greater(t, len(trace.TraceEvents), 100)
	assert.True(t, names["thread_name"], "one track per unit")
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.Len(t, entries, 1, "no temporary file is left behind")

	code, _, stderr = invoke("-topology", "small", "-image", pngFile(t), "-trace", filepath.Join(dir, "no", "dir.json"))
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr, "run: -trace:")
}

func TestSVGChartIsWritten(t *testing.T) {
	path := filepath.Join(t.TempDir(), "layers.svg")
	code, _, stderr := invoke("-topology", "small", "-image", pngFile(t), "-svg", path)
	require.Equal(t, 0, code, stderr)
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	dec := xml.NewDecoder(bytes.NewReader(data))
	bars := 0
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		require.NoError(t, err, "the chart is well-formed XML")
		if el, ok := tok.(xml.StartElement); ok && el.Name.Local == "path" {
			bars++
		}
	}
	assert.Greater(t, bars, 4*2, "a bar per layer for the simulation and the estimator, drawn as paths")
}

func TestPrintTopologyReadsBack(t *testing.T) {
	for _, name := range topology.PresetNames() {
		code, stdout, stderr := invoke("-topology", name, "-print-topology")
		require.Equal(t, 0, code, stderr)
		got, err := topology.Parse(name+".toml", []byte(stdout))
		require.NoError(t, err)
		want, err := topology.Preset(name)
		require.NoError(t, err)
		assert.Equal(t, want, got, "the printed %s file describes the same accelerator", name)
	}
}

// TestSlowMemoryIsReportedAsTheBottleneck starves the MPCA of weights: the
// report must put the gap on memory, the loaders at the top, and the CHMs
// waiting on their weight FIFOs; with the preset's bandwidth the loaders are
// instead held back by full weight FIFOs.
func TestSlowMemoryIsReportedAsTheBottleneck(t *testing.T) {
	slow := writeFile(t, "slow.toml", "base = \"small\"\n[memory]\nbandwidth_bytes_per_cycle = 1.0\n")
	img := pngFile(t)
	code, stdout, stderr := invoke("-json", "-topology", slow, "-image", img)
	require.Equal(t, 0, code, stderr)
	r := decode(t, stdout)
	require.NotEmpty(t, r.Gap)
	largest := r.Gap[0]
	for _, g := range r.Gap {
		if g.Cycles > largest.Cycles {
			largest = g
		}
	}
	assert.Equal(t, "waiting for weights (memory)", largest.Cause)
	assert.Contains(t, r.Bottleneck, "waiting for weights (memory)")
	busiest := report.Busiest(r.Units, 1)
	require.Len(t, busiest, 1)
	assert.Contains(t, busiest[0].Name, "loader")
	for _, u := range r.Units {
		if u.Name == "mpca" {
			assert.Contains(t, u.StarvedOn, "weights->chm", "the MPCA waits for its weights")
		}
	}

	code, stdout, stderr = invoke("-json", "-topology", "small", "-image", img)
	require.Equal(t, 0, code, stderr)
	fast := decode(t, stdout)
	blocked := report.MostBlocked(fast.Units, 1)
	require.Len(t, blocked, 1)
	assert.Contains(t, blocked[0].Name, "loader")
	assert.Contains(t, blocked[0].BlockedOn, "weights->chm")
	assert.Less(t, fast.CyclesPerImage, r.CyclesPerImage)
}
