package topology

import (
	"bytes"
	"context"
	"maps"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"vitflow/vit"
)

// builder builds an accelerator on a description: with the numerics or
// timing-only (the same cycles, faster).
type builder func(Description) (*Accelerator, error)

func fullBuild(w *vit.Weights, p *vit.Pruning) builder {
	return func(d Description) (*Accelerator, error) { return NewAccelerator(w, p, 0, d) }
}

func timingBuild(w *vit.Weights, p *vit.Pruning) builder {
	return func(d Description) (*Accelerator, error) { return NewTimingAccelerator(w.Config, p, 0, d) }
}

// sizeFIFOs builds an accelerator on d and sizes its FIFOs for imgs.
func sizeFIFOs(t *testing.T, build builder, d Description, imgs [][]float32) (*Accelerator, *Sizing) {
	t.Helper()
	a, err := build(d)
	require.NoError(t, err)
	z, err := SizeFIFOs(context.Background(), a, imgs, SizeOptions{})
	require.NoError(t, err)
	var text bytes.Buffer
	require.NoError(t, z.WriteText(&text))
	t.Logf("%s\n%s", d.Name, text.String())
	return a, z
}

// runDepths simulates imgs on a with the sizable links at depths (by
// name): the cycles, or the error that stops it (a loop too small, a
// deadlock).
func runDepths(t *testing.T, a *Accelerator, depths map[string]int, imgs [][]float32) (int64, error) {
	t.Helper()
	f := a.desc.FIFO
	f.Depths = depths
	b, err := a.withFIFO(f)
	if err != nil {
		return 0, err
	}
	res, err := b.Run(context.Background(), imgs)
	if err != nil {
		return 0, err
	}
	return res.Cycles, nil
}

// depthsOf names a candidate's depths.
func depthsOf(z *Sizing, depths []int) map[string]int {
	m := make(map[string]int, len(depths))
	for i, l := range z.Links {
		m[l.Name] = depths[i]
	}
	return m
}

// checkSizing: the chosen depths run within the bound, from a fresh build
// of the sized description; the unbounded latency is a run with every
// sizable FIFO at the topology's maximum depth; and each FIFO one element
// shallower breaks the bound or cannot run at all.
func checkSizing(t *testing.T, build builder, a *Accelerator, z *Sizing, imgs [][]float32) {
	t.Helper()
	tol := DefaultTolerance
	assert.Equal(t, int64(math.Floor(float64(z.Unbounded)*(1+tol))), z.Bound)
	open := map[string]int{}
	for _, l := range z.Links {
		open[l.Name] = maxDepth
	}
	unbounded, err := runDepths(t, a, open, imgs)
	require.NoError(t, err)
	assert.Equal(t, unbounded, z.Unbounded)

	sized, err := build(z.Description)
	require.NoError(t, err)
	res, err := sized.Run(context.Background(), imgs)
	require.NoError(t, err)
	assert.Equal(t, z.Cycles, res.Cycles)
	assert.LessOrEqual(t, float64(res.Cycles), float64(z.Unbounded)*(1+tol), "within 1%% of unbounded FIFOs")

	for _, l := range z.Links {
		if l.Depth == 1 {
			continue
		}
		depths := maps.Clone(z.Description.FIFO.Depths)
		depths[l.Name]--
		c, err := runDepths(t, a, depths, imgs)
		if err == nil {
			assert.Greater(t, c, z.Bound, "%s at %d: one element shallower is within the bound", l.Name, l.Depth-1)
		}
	}
}

// checkCandidates re-simulates on a every candidate the sizer re-timed or
// simulated (the sizer's own runs were timing-only; a may have the
// numerics): the same cycles, or both cannot run.
func checkCandidates(t *testing.T, a *Accelerator, z *Sizing, imgs [][]float32) {
	t.Helper()
	n := 0
	for _, c := range z.Candidates {
		if c.By == ByLoopCheck {
			continue
		}
		n++
		got, err := runDepths(t, a, depthsOf(z, c.Depths), imgs)
		if c.Err != nil {
			assert.Error(t, err, "%v: re-timing says it cannot run (%v)", c.Depths, c.Err)
			continue
		}
		require.NoError(t, err, "%v", c.Depths)
		assert.Equal(t, got, c.Cycles, "%v: by %s %d, simulated %d", c.Depths, c.By, c.Cycles, got)
	}
	t.Logf("%d candidates re-simulated", n)
}

// TestSizeFIFOsMNISTTiny sizes an accelerator with weights, whose
// candidates the sizer runs timing-only, and checks the depths and every
// candidate with full runs.
func TestSizeFIFOsMNISTTiny(t *testing.T) {
	w, p, imgs := mnistTiny(t)
	for _, name := range []string{"u250", "small"} {
		d := preset(t, name, FidelityDetailed)
		a, z := sizeFIFOs(t, fullBuild(w, p), d, imgs)
		checkSizing(t, fullBuild(w, p), a, z, imgs)
		checkCandidates(t, a, z, imgs)
		assert.Positive(t, z.Retimed)
		assert.Zero(t, z.Simulated, "no unit decides by time: every candidate re-times")
		assert.Equal(t, len(z.Candidates), z.Retimed+z.Simulated+z.LoopChecked)
		assert.Equal(t, z.DescriptionBytes-z.Bytes, z.Saved)

		// The same sizing twice.
		z2, err := SizeFIFOs(context.Background(), a, imgs, SizeOptions{})
		require.NoError(t, err)
		assert.Equal(t, z.Links, z2.Links)
		assert.Equal(t, z.Candidates, z2.Candidates)

		// The sized description is a file a user can keep.
		var file bytes.Buffer
		require.NoError(t, z.Description.WriteTOML(&file))
		back, err := Parse("sized.toml", file.Bytes())
		require.NoError(t, err)
		assert.Equal(t, z.Description.FIFO, back.FIFO)
	}
}

// TestSizeFIFOsDeiTSmall sizes u250's FIFOs for DeiT-S and checks the
// depths and every candidate by simulation, timing-only (which has the
// full run's cycles: TestTimingOnlyMatchesFullRun; TestSizeFIFOsMNISTTiny
// checks the sizer's timing-only runs against full ones).
func TestSizeFIFOsDeiTSmall(t *testing.T) {
	if testing.Short() {
		t.Skip("sizes DeiT-S (seconds)")
	}
	w, p, imgs := deitSmallRun(t)
	build := timingBuild(w, p)
	a, z := sizeFIFOs(t, build, preset(t, "u250", FidelityDetailed), imgs)
	checkSizing(t, build, a, z, imgs)
	checkCandidates(t, a, z, imgs)
	assert.Zero(t, z.Simulated, "no unit decides by time: every candidate re-times")
	assert.Positive(t, z.Saved, "u250's FIFOs are deeper than DeiT-S needs")
}

func TestSizeFIFOsBadInput(t *testing.T) {
	w, p, imgs := mnistTiny(t)
	a, err := NewAccelerator(w, p, 0, preset(t, "small", FidelityDetailed))
	require.NoError(t, err)
	for _, tol := range []float64{-0.01, math.NaN(), math.Inf(1), 11} {
		_, err := SizeFIFOs(context.Background(), a, imgs, SizeOptions{Tolerance: tol})
		require.Error(t, err, "%v", tol)
		assert.NotContains(t, err.Error(), "\n")
		assert.True(t, strings.HasPrefix(err.Error(), "size fifos: tolerance"), err.Error())
	}
	_, err = SizeFIFOs(context.Background(), a, nil, SizeOptions{})
	assert.EqualError(t, err, "size fifos: simulate: no images")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = SizeFIFOs(ctx, a, imgs, SizeOptions{})
	assert.ErrorIs(t, err, context.Canceled)
}

// BenchmarkRetimeDeiTSmall re-times the sizer's record of DeiT-S on u250
// (every sizable FIFO unbounded) at the depths where no send waits: the
// cost of evaluating one candidate.
func BenchmarkRetimeDeiTSmall(b *testing.B) {
	w, p, imgs := deitSmallRun(b)
	a, err := NewTimingAccelerator(w.Config, p, 0, preset(b, "u250", FidelityDetailed))
	require.NoError(b, err)
	s, err := newSizer(context.Background(), a, imgs)
	require.NoError(b, err)
	caps := slices.Clone(s.caps)
	for i, k := range s.index {
		caps[k] = s.start[i]
	}
	for b.Loop() {
		m, err := s.rec.Retime(caps)
		if err != nil || m != s.unbounded {
			b.Fatalf("%d cycles (%v), want %d", m, err, s.unbounded)
		}
	}
	b.ReportMetric(float64(s.rec.Events()), "events")
}

// TestSizeFIFOsSimulatesWhatCannotRetime: a model of 128 heads gives W_O a
// block start of 257 operands, more than the re-timing's layout holds
// (runtime.ErrRecordTooLarge), so the sizer simulates every candidate,
// and still sizes within the bound.
func TestSizeFIFOsSimulatesWhatCannotRetime(t *testing.T) {
	cfg, err := vit.Preset("mnist-tiny")
	require.NoError(t, err)
	cfg.Depth, cfg.Heads, cfg.Dim, cfg.MLPHidden = 1, 128, 2048, 2048
	p := &vit.Pruning{Block: 16, Keep: 1}
	d := preset(t, "small", FidelityDetailed)
	a, err := NewTimingAccelerator(cfg, p, 0, d)
	require.NoError(t, err)
	imgs := make([][]float32, 1)
	z, err := SizeFIFOs(context.Background(), a, imgs, SizeOptions{})
	require.NoError(t, err)
	assert.Zero(t, z.Retimed, "nothing re-times")
	assert.Positive(t, z.Simulated)
	assert.LessOrEqual(t, z.Cycles, z.Bound)
	t.Logf("%d candidates: %d simulated, %d refused by the loop check", len(z.Candidates), z.Simulated, z.LoopChecked)
}
