package main

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"vitflow/report"
	"vitflow/runtime"
	"vitflow/topology"
)

// TestFillSimulation checks the conversion of a simulation's results on a
// hand-made result, independent of the simulator.
func TestFillSimulation(t *testing.T) {
	loads := func(ideal, static, balanced float64) []topology.PELoad {
		return []topology.PELoad{{Policy: "ideal", Max: ideal, Mean: ideal}, {Policy: "static", Max: static, Mean: ideal},
			{Policy: "balanced", Max: balanced, Mean: ideal}}
	}
	layer := topology.LayerResult{Index: 0, TokensIn: 50, TokensOut: 27, HeadsKept: 4, Cycles: 900, Estimate: 700,
		Ops: []topology.OpResult{
			{Op: topology.OpQ, Cycles: 500, Estimate: 400, Compute: 450, Memory: 30, Latency: 20,
				Load: topology.PELoad{Policy: "static", Max: 450, Mean: 400}, Loads: loads(400, 450, 410)},
			{Op: topology.OpFC1, Cycles: 320, Estimate: 300, Compute: 300, Latency: 20,
				Load: topology.PELoad{Policy: "static", Max: 300, Mean: 300}, Loads: loads(300, 300, 300)},
		},
		Stages: []topology.StageResult{{Name: "softmax", Cycles: 40, Work: 38, Latency: 2}, {Name: "tokendrop", Cycles: 40, Work: 40}},
	}
	desc, err := topology.Preset("small")
	require.NoError(t, err)
	desc.Balance = topology.PolicyStatic
	res := &topology.SimResult{
		Desc: desc, Block: 16, Cycles: 2000, CyclesPerImage: 1000,
		Images: []topology.ImageResult{
			{Logits: []float32{0, 2, 1}, Top1: 1, Cycles: 1000, Embed: 60, Classify: 40, Layers: []topology.LayerResult{layer}},
			{Logits: []float32{3, 2, 1}, Top1: 0, Cycles: 1000},
		},
		Estimate: topology.Estimation{Cycles: 700},
		Stats:    &runtime.Stats{Makespan: 2000, Actors: []runtime.ActorStats{{Name: "chm0", Busy: 1500, Utilisation: 0.75}}},
		Gap:      topology.Gap{Imbalance: 100, Memory: 60, SFU: 80, TokenDrop: 80, EmbedClassify: 200, Latency: 80},
	}
	rep := &report.Report{Labels: []int{1, 1}}
	fillSimulation(rep, res)

	assert.Equal(t, []int{1, 0}, rep.Top1)
	require.NotNil(t, rep.Accuracy)
	assert.Equal(t, 0.5, *rep.Accuracy)
	assert.Equal(t, "static", rep.Balance)
	assert.Equal(t, int64(2000), rep.CyclesTotal)
	assert.Equal(t, 5.0, rep.LatencyUSPerImage, "1000 cycles at 200 MHz")
	assert.Equal(t, 200000.0, rep.ImagesPerSecond)
	assert.Equal(t, int64(700), rep.EstimatorCyclesPerImage)
	assert.Equal(t, int64(60), rep.EmbedCycles)

	require.Len(t, rep.Layers, 1)
	l := rep.Layers[0]
	assert.Equal(t, int64(900), l.Cycles)
	assert.InDelta(t, 750.0/700, l.PEImbalance, 1e-12)
	require.Len(t, l.Ops, 4)
	assert.Equal(t, report.Op{Name: "q", Kind: report.KindMPCA, Cycles: 500, EstimatorCycles: 400, Compute: 450, Memory: 30,
		Latency: 20, PEImbalance: 450.0 / 400}, l.Ops[0])
	assert.Equal(t, report.KindSFU, l.Ops[2].Kind)
	assert.Equal(t, report.Op{Name: "tokendrop", Kind: report.KindTokenDrop, Cycles: 40, Compute: 40}, l.Ops[3])

	assert.Equal(t, []report.Imbalance{
		{Policy: "ideal", MaxOverMean: 1, ComputeCycles: 700},
		{Policy: "static", MaxOverMean: 750.0 / 700, ComputeCycles: 750, Used: true},
		{Policy: "balanced", MaxOverMean: 710.0 / 700, ComputeCycles: 710},
	}, rep.Imbalance)

	var sum int64
	for _, g := range rep.Gap {
		sum += g.Cycles
		assert.Equal(t, float64(g.Cycles)/2, g.PerImage)
	}
	assert.Equal(t, res.Gap.Total(), sum)
	assert.Equal(t, []report.Unit{{Name: "chm0", Busy: 1500, Utilization: 0.75}}, rep.Units)
}
