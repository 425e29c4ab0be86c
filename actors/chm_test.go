package actors

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"vitflow/kernels"
	"vitflow/runtime"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// chmRig runs one CHM on one job of op q, with its weight blocks sent by a
// feeder at the given times (nil: weights on chip), and returns the job and
// the run's statistics.
func chmRig(t *testing.T, policy Policy, w *kernels.BlockSparse, plan *CHMPlan, cost OpCost, a []float32, m int,
	sendAt []int64, order []WeightBlock) (*MPCAJob, *runtime.Stats, error) {
	t.Helper()
	g := runtime.NewGraph()
	jobs, err := runtime.NewFIFO[*MPCAJob](g, "jobs", 1, 1)
	require.NoError(t, err)
	done, err := runtime.NewFIFO[*MPCAJob](g, "done", 1, 1)
	require.NoError(t, err)
	chm := &CHM{Geometry: Geometry{T: 1, C: 2, H: 1, P: 8}, Policy: policy, Jobs: jobs, Done: done}
	opts := []runtime.ActorOption{runtime.Reads(jobs), runtime.Writes(done)}
	if sendAt != nil {
		chm.Weights, err = runtime.NewFIFO[WeightBlock](g, "weights", 8, 1)
		require.NoError(t, err)
		opts = append(opts, runtime.Reads(chm.Weights))
		g.AddActor("feeder", func(ctx *runtime.Ctx) error {
			for i, blk := range order {
				if d := sendAt[i] - ctx.Now(); d > 0 {
					ctx.Work(d, "memory")
				}
				if err := chm.Weights.Send(ctx, blk); err != nil {
					return err
				}
			}
			return nil
		}, runtime.Writes(chm.Weights))
	}
	g.AddActor("chm", chm.Run, opts...)
	job := &MPCAJob{Op: OpQ, Plan: plan, Cost: cost, W: w, Bias: make([]float32, w.Cols), A: a, LDA: w.Rows,
		C: make([]float32, m*w.Cols), LDC: w.Cols, M: m}
	for i := range job.Bias {
		job.Bias[i] = float32(i)
	}
	var got *MPCAJob
	g.AddActor("controller", func(ctx *runtime.Ctx) error {
		if err := jobs.Send(ctx, job); err != nil {
			return err
		}
		got, err = done.Recv(ctx)
		return err
	}, runtime.Reads(done), runtime.Writes(jobs))
	stats, err := g.Run(context.Background(), runtime.Options{})
	return got, stats, err
}

// TestCHMStreamedWeights hand-checks a CHM waiting for its weights: W is
// 16×16 in 8×8 blocks, all kept; PE 0 computes block-column 0, PE 1
// block-column 1, each 2 block pairs of 8 cycles. Column 0's blocks arrive
// at 101 and column 1's at 201 (sent at 100 and 200, latency 1), so the CHM,
// which got the job at 1, finishes at 201 + 16.
func TestCHMStreamedWeights(t *testing.T) {
	wd := make([]float32, 16*16)
	for i := range wd {
		wd[i] = float32(i%7) - 3
	}
	w, err := kernels.PackBlockSparse(wd, 16, 16, 8, nil)
	require.NoError(t, err)
	a := make([]float32, 5*16)
	for i := range a {
		a[i] = float32(i%5) - 2
	}
	plan := &CHMPlan{Cols: []int{0, 1}, Steps: []Step{{PE: 0, Col: 0, Cycles: 16}, {PE: 1, Col: 1, Cycles: 16}},
		SnapStart: []int{0, 2}, ColOrder: []int32{0, 1}, Compute: 16}
	stream := []WeightBlock{{Op: OpQ, Col: 0, Index: 0}, {Op: OpQ, Col: 0, Index: 1}, {Op: OpQ, Col: 1, Index: 2}, {Op: OpQ, Col: 1, Index: 3}}
	at := []int64{100, 100, 200, 200}

	want := make([]float32, 5*16)
	kernels.MatMul(want, a, wd, 5, 16, 16)
	for r := range 5 {
		for c := range 16 {
			want[r*16+c] += float32(c)
		}
	}
	for _, tc := range []struct {
		name   string
		policy Policy
		cost   OpCost
	}{
		{"static", Static, OpCost{}},
		// One snapshot needing both columns, charged the estimator's 16 cycles.
		{"ideal", Ideal, OpCost{Snapshots: 1, Cycles: 16}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			job, stats, err := chmRig(t, tc.policy, w, plan, tc.cost, a, 5, at, stream)
			require.NoError(t, err)
			assert.Equal(t, int64(1), job.Start)
			assert.Equal(t, int64(217), job.End)
			assert.InDeltaSlice(t, want, job.C, 1e-4)
			chm := stats.Actor("chm")
			require.NotNil(t, chm)
			assert.Equal(t, []runtime.PortCycles{{FIFO: "jobs", Cycles: 1}, {FIFO: "weights", Cycles: 200}}, chm.Starved)
			assert.Equal(t, int64(16), chm.Busy)

			// On chip: just the work.
			job, _, err = chmRig(t, tc.policy, w, plan, tc.cost, a, 5, nil, nil)
			require.NoError(t, err)
			assert.Equal(t, int64(1+16), job.End)
			assert.InDeltaSlice(t, want, job.C, 1e-4)
		})
	}

	t.Run("out of order", func(t *testing.T) {
		swapped := []WeightBlock{stream[2], stream[3], stream[0], stream[1]}
		_, _, err := chmRig(t, Static, w, plan, OpCost{}, a, 5, at, swapped)
		require.Error(t, err)
		assert.ErrorContains(t, err, "chm")
		assert.ErrorContains(t, err, "out of order")
	})
}

// TestCHMStreamedWeightsUnevenPEs: every weight block is visible at 1, when
// the job arrives, so a static CHM must finish at 1 + Compute whatever the
// PEs' loads. PE 0 takes columns 0 (100 cycles) and 2 (8), PE 1 columns 1 (8)
// and 3 (100). Taking the steps in snapshot order used to start PE 1's column
// 3 only when PE 0 wanted column 2, at 101, and end at 201.
func TestCHMStreamedWeightsUnevenPEs(t *testing.T) {
	wd := make([]float32, 8*32)
	for i := range wd {
		wd[i] = float32(i%5) - 2
	}
	w, err := kernels.PackBlockSparse(wd, 8, 32, 8, nil)
	require.NoError(t, err)
	a := make([]float32, 3*8)
	for i := range a {
		a[i] = float32(i%3) - 1
	}
	plan := &CHMPlan{Cols: []int{0, 1, 2, 3}, SnapStart: []int{0, 2, 4}, ColOrder: []int32{0, 1, 2, 3}, Compute: 108,
		Steps: []Step{{PE: 0, Col: 0, Cycles: 100}, {PE: 1, Col: 1, Cycles: 8}, {PE: 0, Col: 2, Cycles: 8}, {PE: 1, Col: 3, Cycles: 100}}}
	var stream []WeightBlock
	for c := range int32(4) {
		stream = append(stream, WeightBlock{Op: OpQ, Col: c, Index: c})
	}
	job, _, err := chmRig(t, Static, w, plan, OpCost{}, a, 3, []int64{0, 0, 0, 0}, stream)
	require.NoError(t, err)
	assert.Equal(t, int64(1), job.Start)
	assert.Equal(t, int64(1+108), job.End)
}

func TestTokenDropper(t *testing.T) {
	// 5 tokens of width 2, 2 heads; CLS attention (row 0) per head.
	const n, d = 5, 2
	x := []float32{9, 9, 1, 10, 2, 20, 3, 30, 4, 40}
	probs := make([]float32, 2*n*n)
	copy(probs[0:n], []float32{0, 0.1, 0.4, 0.2, 0.3})
	copy(probs[n*n:n*n+n], []float32{0, 0.3, 0.4, 0.0, 0.3})
	// Scores (tokens 1..4): 0.2, 0.4, 0.1, 0.3: keep tokens 2 and 4, fuse 1 and 3.
	g := runtime.NewGraph()
	in, err := runtime.NewFIFO[*DropJob](g, "in", 1, 1)
	require.NoError(t, err)
	out, err := runtime.NewFIFO[*DropJob](g, "out", 1, 1)
	require.NoError(t, err)
	cost := TokenDropCost{Selection: Streaming, ScoresPerCycle: 1, Latency: 3, FusionMACsPerCycle: 1, RepackElementsPerCycle: 2}
	u := &TokenDropper{Cost: cost, In: in, Out: out}
	g.AddActor("tokendrop", u.Run, runtime.Reads(in), runtime.Writes(out))
	job := &DropJob{X: x, N: n, Dim: d, Probs: probs, Heads: 2, Kept: 2}
	g.AddActor("controller", func(ctx *runtime.Ctx) error {
		if err := in.Send(ctx, job); err != nil {
			return err
		}
		_, err := out.Recv(ctx)
		return err
	}, runtime.Reads(out), runtime.Writes(in))
	_, err = g.Run(context.Background(), runtime.Options{})
	require.NoError(t, err)
	assert.Equal(t, []int{2, 4}, job.KeptIdx)
	fused := []float32{0.2*1 + 0.1*3, 0.2*10 + 0.1*30}
	assert.InDeltaSlice(t, []float32{9, 9, 2, 20, 4, 40, fused[0], fused[1]}, job.Out, 1e-6)
	// 3 + (4 scores + 2 drained) + 2 dropped * 2 MACs + 2 kept * 2 / 2.
	assert.Equal(t, int64(3+6+4+2), job.Work)

	// A job that cannot be dropped fails the unit, naming it.
	g = runtime.NewGraph()
	in, _ = runtime.NewFIFO[*DropJob](g, "in", 1, 1)
	out, _ = runtime.NewFIFO[*DropJob](g, "out", 1, 1)
	u = &TokenDropper{Cost: cost, In: in, Out: out}
	g.AddActor("tokendrop", u.Run, runtime.Reads(in), runtime.Writes(out))
	g.AddActor("controller", func(ctx *runtime.Ctx) error {
		if err := in.Send(ctx, &DropJob{X: x, N: n, Dim: d, Probs: probs, Heads: 2, Kept: 4}); err != nil {
			return err
		}
		_, err := out.Recv(ctx)
		return err
	}, runtime.Reads(out), runtime.Writes(in))
	_, err = g.Run(context.Background(), runtime.Options{})
	require.Error(t, err)
	assert.ErrorContains(t, err, "tokendrop")
	assert.False(t, errors.Is(err, runtime.ErrDeadlock))
}

// TestLoaderTiming hand-checks the memory model: a block of 8×8 2-byte
// weights at 51.2 bytes/cycle takes 2.5 cycles of channel time, charged as
// whole cycles (2, 3, 2, 3, ...), after the latency that starts the op's stream.
func TestLoaderTiming(t *testing.T) {
	none := func(int, int) bool { return false }
	m := oneLayer(t, 32, 16, 8, 8, 1, Expand, 1)
	L := &m.Layers[0]
	L.Q = packed(t, 32, 32, 8, func(br, bc int) bool { return bc == 1 && br < 3 }) // 3 blocks in column 1
	L.K, L.V, L.O = packed(t, 32, 32, 8, none), packed(t, 32, 32, 8, none), packed(t, 32, 32, 8, none)
	L.FC1, L.FC2 = packed(t, 32, 64, 8, none), packed(t, 64, 32, 8, none)
	cfg := Config{Geometry: Geometry{T: 1, C: 2, H: 1, P: 8}, Block: 8, Policy: Static, Free: true, Streamed: true,
		Memory: Memory{BytesPerCycle: 51.2, Latency: 10, Channels: 1, BytesPerWeight: 2}}
	s, err := NewSchedule(cfg, m)
	require.NoError(t, err)

	g := runtime.NewGraph()
	out, err := runtime.NewFIFO[WeightBlock](g, "weights", 8, 1)
	require.NoError(t, err)
	ld := &Loader{Memory: cfg.Memory, Block: 8, Schedule: s, Model: m, Images: 2, CHMs: []int{0},
		Out: []*runtime.FIFO[WeightBlock]{out}}
	g.AddActor("loader", ld.Run, runtime.Writes(out))
	var got []WeightBlock
	var at []int64
	g.AddActor("chm", func(ctx *runtime.Ctx) error {
		for {
			blk, err := out.Recv(ctx)
			if errors.Is(err, runtime.ErrClosed) {
				return nil
			}
			if err != nil {
				return err
			}
			got, at = append(got, blk), append(at, ctx.Now())
		}
	}, runtime.Reads(out))
	_, err = g.Run(context.Background(), runtime.Options{})
	require.NoError(t, err)
	blk := func(i int32) WeightBlock { return WeightBlock{Op: OpQ, Col: 1, Index: i} }
	assert.Equal(t, []WeightBlock{blk(0), blk(1), blk(2), blk(0), blk(1), blk(2)}, got, "two images")
	// Image 0: latency 10, blocks done at 12, 15, 17 (+1 FIFO latency).
	assert.Equal(t, []int64{13, 16, 18}, at[:3])
	// Image 1 starts with the owed half cycle: 17 + 10 + 3, + 2, + 3.
	assert.Equal(t, []int64{31, 33, 36}, at[3:])
}
