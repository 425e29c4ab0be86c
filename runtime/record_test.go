package runtime

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sync/errgroup"
)

// retimeAgrees re-times rec at caps and runs build(caps) for real: both
// deadlock, or both succeed with the same makespan. It reports whether the
// re-timing applied (false: a decision by time changed).
func retimeAgrees(t *testing.T, rec *Record, caps []int, build func(caps []int) *Graph) bool {
	t.Helper()
	got, err := rec.Retime(caps)
	if errors.Is(err, ErrChoiceChanged) {
		return false
	}
	s, runErr := build(caps).Run(context.Background(), Options{})
	if runErr != nil {
		require.ErrorIs(t, runErr, ErrDeadlock, "caps %v", caps)
		require.ErrorIs(t, err, ErrDeadlock, "caps %v: the run deadlocks", caps)
		var d *DeadlockError
		require.ErrorAs(t, err, &d)
		assert.NotEmpty(t, d.Cycle, "caps %v", caps)
		return true
	}
	require.NoError(t, err, "caps %v", caps)
	require.Equal(t, s.Makespan, got, "caps %v", caps)
	return true
}

// TestRetimeRandomGraphs records seeded random DAGs once and re-times them
// at random capacities: the makespan is the real run's every time.
func TestRetimeRandomGraphs(t *testing.T) {
	changed := 0
	for seed := range uint64(12) {
		build := func(caps []int) *Graph { return randomGraphCaps(t, seed, 40, make([]int64, 8), caps) }
		s, err := build(nil).Run(context.Background(), Options{Record: true})
		require.NoError(t, err)
		rec := s.Record
		got, err := rec.Retime(rec.Capacities())
		require.NoError(t, err)
		require.Equal(t, s.Makespan, got, "seed %d: at the recorded capacities", seed)
		r := rand.New(rand.NewPCG(seed, 9))
		for range 6 {
			caps := rec.Capacities()
			for i := range caps {
				caps[i] = 1 + r.IntN(6)
			}
			require.True(t, retimeAgrees(t, rec, caps, build), "no actor decides by time")
			if m, err := rec.Retime(caps); err == nil && m != s.Makespan {
				changed++
			}
		}
	}
	assert.Positive(t, changed, "some capacities change the makespan")
}

// poolGraph is a source of n jobs, a pool of two PEs with clocks of their
// own, and a sink. The pool sends each result once it is done: byFinish, in
// the order they finish and as soon as its clock has passed them (decisions
// by time), else in job order, waiting for each. A send that waits for room
// stalls both PEs (IfBefore).
func poolGraph(t testing.TB, n int, caps []int, byFinish bool, got *[]int) *Graph {
	if caps == nil {
		caps = []int{4, 4}
	}
	g := NewGraph()
	in := mustFIFOT[int](t, g, "in", caps[0], 2)
	out := mustFIFOT[int](t, g, "out", caps[1], 1)
	g.AddActor("source", func(ctx *Ctx) error {
		for i := range n {
			ctx.Work(cost(i, 1), "gen")
			if err := in.Send(ctx, i); err != nil {
				return err
			}
		}
		return nil
	}, Writes(in))
	g.AddActor("pool", func(ctx *Ctx) error {
		pe := []Tick{TickAt(0), TickAt(0)}
		floor := TickAt(0)
		type job struct {
			v   int
			end Tick
		}
		var done []job // in the order they finish
		send := func(all bool) error {
			for len(done) > 0 && (all || !ctx.Before(ctx.Clock(), done[0].end)) {
				j := done[0]
				done = done[1:]
				to := ctx.Max(ctx.Clock(), j.end)
				ctx.Work(to.At-ctx.Now(), "wait")
				ctx.Rebase(to)
				before := ctx.Clock()
				if err := out.Send(ctx, j.v); err != nil {
					return err
				}
				floor = ctx.IfBefore(before, ctx.Clock(), ctx.Clock(), floor)
			}
			return nil
		}
		for {
			v, vis, err := in.RecvTick(ctx)
			if errors.Is(err, ErrClosed) {
				return send(true)
			}
			if err != nil {
				return err
			}
			k := v % 2
			end := ctx.Max(pe[k], vis, floor).Add(4 * cost(v, 2))
			pe[k] = end
			i := len(done)
			for byFinish && i > 0 && ctx.Before(end, done[i-1].end) {
				i--
			}
			done = slices.Insert(done, i, job{v, end})
			ctx.Work(1, "dispatch")
			if err := send(!byFinish); err != nil {
				return err
			}
		}
	}, Reads(in), Writes(out))
	g.AddActor("sink", func(ctx *Ctx) error {
		for {
			v, err := out.Recv(ctx)
			if errors.Is(err, ErrClosed) {
				return nil
			}
			if err != nil {
				return err
			}
			*got = append(*got, v)
			ctx.Work(3*cost(v, 3), "sink")
		}
	}, Reads(out))
	return g
}

// TestRetimeTicks re-times an actor that keeps PE clocks (Max, Rebase,
// IfBefore): in job order, at every capacity, the makespan is the real
// run's; in the order jobs finish, wherever its decisions hold it is the
// real run's, and where one changes Retime says so instead of guessing.
func TestRetimeTicks(t *testing.T) {
	for _, byFinish := range []bool{false, true} {
		build := func(caps []int) *Graph {
			var got []int
			return poolGraph(t, 60, caps, byFinish, &got)
		}
		s, err := build([]int{64, 64}).Run(context.Background(), Options{Record: true})
		require.NoError(t, err)
		rec := s.Record
		exact, changed, slower := 0, 0, 0
		for _, a := range []int{1, 2, 3, 8, 64} {
			for _, b := range []int{1, 2, 4, 8, 24, 64} {
				if !retimeAgrees(t, rec, []int{a, b}, build) {
					changed++
					continue
				}
				exact++
				if m, err := rec.Retime([]int{a, b}); err == nil && m > s.Makespan {
					slower++
				}
			}
		}
		t.Logf("by finish %v: %d re-timed exactly (%d slower than recorded), %d with a decision changed", byFinish, exact, slower, changed)
		if byFinish {
			assert.Positive(t, changed, "some capacity changes a decision, and the re-timing says so")
			assert.Positive(t, exact)
		} else {
			assert.Zero(t, changed, "no decision by time")
			assert.Positive(t, slower, "shallow FIFOs slow some runs down, and the re-timing sees it")
		}
	}
}

// TestRetimeDeadlock: a source that fills one FIFO before the other, read
// the other way round, deadlocks below the number of elements; Retime finds
// the wait cycle instead of waiting for a watchdog.
func TestRetimeDeadlock(t *testing.T) {
	const n = 6
	build := func(caps []int) *Graph {
		g := NewGraph()
		x, y := mustFIFOT[int](t, g, "x", caps[0], 1), mustFIFOT[int](t, g, "y", caps[1], 1)
		g.AddActor("source", func(ctx *Ctx) error {
			for _, f := range []*FIFO[int]{x, y} {
				for i := range n {
					ctx.Work(1, "gen")
					if err := f.Send(ctx, i); err != nil {
						return err
					}
				}
			}
			return nil
		}, Writes(x, y))
		g.AddActor("join", func(ctx *Ctx) error {
			for range n {
				if _, err := y.Recv(ctx); err != nil {
					return err
				}
				if _, err := x.Recv(ctx); err != nil {
					return err
				}
				ctx.Work(2, "join")
			}
			return nil
		}, Reads(x, y))
		return g
	}
	s, err := build([]int{n, 1}).Run(context.Background(), Options{Record: true})
	require.NoError(t, err)
	_, err = s.Record.Retime([]int{n - 1, 1})
	var d *DeadlockError
	require.ErrorAs(t, err, &d)
	assert.Len(t, d.Cycle, 2)
	assert.Contains(t, err.Error(), `source (cycle 6) waits to send on fifo "x" (5/5 elements)`)
	require.True(t, retimeAgrees(t, s.Record, []int{n - 1, 1}, build))
	require.True(t, retimeAgrees(t, s.Record, []int{n, 3}, build))
}

// TestNoWaitCapacities: at the capacities where no send of an unhindered
// run waits, re-timing gives that run again.
func TestNoWaitCapacities(t *testing.T) {
	for seed := range uint64(6) {
		caps := make([]int, 64)
		for i := range caps {
			caps[i] = 256
		}
		s, err := randomGraphCaps(t, seed, 40, make([]int64, 8), caps).Run(context.Background(), Options{Record: true})
		require.NoError(t, err)
		free := s.Record.NoWaitCapacities()
		got, err := s.Record.Retime(free)
		require.NoError(t, err)
		assert.Equal(t, s.Makespan, got, "seed %d", seed)
		for i, c := range free {
			assert.LessOrEqual(t, c, s.FIFOs[i].MaxOccupancy+1, "seed %d fifo %d", seed, i)
		}
	}
}

// TestRetimeRefusesArrivalChoices: a run that used Select cannot be
// re-timed, since its choices follow arrivals.
func TestRetimeRefusesArrivalChoices(t *testing.T) {
	var got []int
	s, err := mixedGraph(t, 30, &got).Run(context.Background(), Options{Record: true})
	require.NoError(t, err)
	_, err = s.Record.Retime(s.Record.Capacities())
	require.Error(t, err)
	assert.Contains(t, err.Error(), "decides by arrival")
	_, err = s.Record.Retime([]int{1})
	assert.EqualError(t, err, "retime: 1 capacities for 17 fifos")
}

// TestRecordChangesNothing: a recorded run's statistics are the run's.
func TestRecordChangesNothing(t *testing.T) {
	for seed := range uint64(4) {
		s, err := randomGraph(t, seed, 40, make([]int64, 8)).Run(context.Background(), Options{})
		require.NoError(t, err)
		r, err := randomGraph(t, seed, 40, make([]int64, 8)).Run(context.Background(), Options{Record: true})
		require.NoError(t, err)
		require.NotNil(t, r.Record)
		r.Record = nil
		assert.Equal(t, s, r, "seed %d", seed)
	}
}

// TestRetimeMisuse: a Rebase to a time the clock is not at leaves a
// record that Retime refuses, saying why.
func TestRetimeMisuse(t *testing.T) {
	g := NewGraph()
	f := mustFIFOT[int](t, g, "f", 1, 1)
	g.AddActor("a", func(ctx *Ctx) error {
		ctx.Work(3, "w")
		ctx.Rebase(TickAt(2))
		return f.Send(ctx, 1)
	}, Writes(f))
	g.AddActor("b", func(ctx *Ctx) error {
		_, err := f.Recv(ctx)
		return err
	}, Reads(f))
	s, err := g.Run(context.Background(), Options{Record: true})
	require.NoError(t, err)
	_, err = s.Record.Retime([]int{1})
	assert.EqualError(t, err, `retime: actor "a" rebased its clock at cycle 3 to cycle 2`)
	_, err = s.Record.Retime([]int{0})
	assert.EqualError(t, err, `retime: fifo "f": capacity 0 out of range [1, 16777216]`)
}

// TestRetimeWideRecords: a constant past 2^31 cycles re-times exactly
// (it has a slot of its own in the flat record), also from a reused and a
// concurrent evaluation, and an event of more edges than the layout holds
// is ErrRecordTooLarge, not a wrong makespan.
func TestRetimeWideRecords(t *testing.T) {
	run := func(t *testing.T, n int, far int64) *Record {
		g := NewGraph()
		f := mustFIFO(t, g, "f", n, 1)
		g.AddActor("w", func(ctx *Ctx) error {
			for i := range n {
				ctx.Work(1, "w")
				if err := f.Send(ctx, i); err != nil {
					return err
				}
			}
			return nil
		}, Writes(f))
		g.AddActor("r", func(ctx *Ctx) error {
			ts := []Tick{TickAt(far)}
			for range n {
				_, vis, err := f.RecvTick(ctx)
				if err != nil {
					return err
				}
				ts = append(ts, vis)
			}
			to := ctx.Max(ts...)
			ctx.Work(to.At-ctx.Now(), "wait")
			ctx.Rebase(to)
			return nil
		}, Reads(f))
		s, err := g.Run(context.Background(), Options{Record: true})
		require.NoError(t, err)
		require.Equal(t, max(far, int64(n)+1), s.Makespan)
		return s.Record
	}
	rec := run(t, 4, 1<<35)
	var g errgroup.Group
	for range 4 {
		g.Go(func() error {
			for range 3 {
				if m, err := rec.Retime([]int{1}); err != nil || m != 1<<35 {
					return fmt.Errorf("%d cycles (%v), want %d", m, err, int64(1<<35))
				}
			}
			return nil
		})
	}
	require.NoError(t, g.Wait())

	rec = run(t, 300, 0)
	_, err := rec.Retime([]int{300})
	assert.ErrorIs(t, err, ErrRecordTooLarge)
}
