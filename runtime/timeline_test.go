package runtime

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// source sends 0..n-1, doing Work(perElem) before each Send.
func source(f *FIFO[int], n int, perElem int64) func(*Ctx) error {
	return func(ctx *Ctx) error {
		for i := range n {
			ctx.Work(perElem, "produce")
			if err := f.Send(ctx, i); err != nil {
				return err
			}
		}
		return nil
	}
}

// stage receives until in is closed, doing Work(perElem) after each Recv
// and then forwarding the element to out (if not nil).
func stage(in, out *FIFO[int], perElem int64, label string) func(*Ctx) error {
	return func(ctx *Ctx) error {
		for {
			v, err := in.Recv(ctx)
			if errors.Is(err, ErrClosed) {
				return nil
			}
			if err != nil {
				return err
			}
			ctx.Work(perElem, label)
			if out != nil {
				if err := out.Send(ctx, v); err != nil {
					return err
				}
			}
		}
	}
}

func mustFIFO(t testing.TB, g *Graph, name string, capacity, latency int) *FIFO[int] {
	t.Helper()
	return mustFIFOT[int](t, g, name, capacity, latency)
}

// mustFIFOT is mustFIFO for any element type.
func mustFIFOT[T any](t testing.TB, g *Graph, name string, capacity, latency int) *FIFO[T] {
	t.Helper()
	f, err := NewFIFO[T](g, name, capacity, latency)
	require.NoError(t, err)
	return f
}

func mustRun(t testing.TB, g *Graph) *Stats {
	t.Helper()
	s, err := g.Run(context.Background(), Options{})
	require.NoError(t, err)
	return s
}

// elementCycles returns sum over k of k*Occupancy[k]: the cycles elements
// spent sent and not yet dequeued, summed over elements.
func elementCycles(f *FIFOStats) int64 {
	var n int64
	for k, c := range f.Occupancy {
		n += int64(k) * c
	}
	return n
}

// TestProducerConsumer: a producer that takes 3 cycles per element (Work(3)
// then Send) feeds 10 elements to a consumer that takes 5 (Recv then
// Work(5)), latency 1, credit latency 1. With e_k the send time and d_k the
// dequeue time of element k:
//
//	e_k = max(e_{k-1}+3, d_{k-C}+1)  (the second term only for k >= C)
//	d_k = max(d_{k-1}+5, e_k+1),     e_0 = 3, d_0 = e_0+1 = 4
//
// The consumer is the bottleneck: d_k = 4+5k for every C, so it starves 4
// cycles (waiting for element 0), is busy 50 and finishes at d_9+5 = 54,
// which is the makespan.
//
// C=1: e_1 = max(6, d_0+1=5) = 6; for k >= 2 e_k = max(e_{k-1}+3, 5(k-1)+5)
// = 5k, so e_2 = 10 (1 blocked after e_1+3 = 9) and each later send is
// blocked 2 (e_{k-1}+3 = 5k-2): blocked 1 + 7*2 = 15, finish e_9 = 45.
// Elements occupy [e_k, d_k): 1 + 3 + 8*4 = 36 cycles at occupancy 1, the
// other 54-36 = 18 at 0.
//
// C=2: e_0..e_4 = 3, 6, 9, 12, 15 (e_4 = max(15, d_2+1=15) is not
// blocked); for k >= 5 e_k = max(e_{k-1}+3, d_{k-2}+1 = 5k-5) = 5k-5, each
// blocked 2: blocked 5*2 = 10, finish e_9 = 40. Occupied cycles
// sum(d_k-e_k) = 1+3+5+7+9 + 5*9 = 70; the FIFO holds 2 at most.
//
// C=8: e_k = 3(k+1) throughout (e_8 = 27 >= d_0+1, e_9 = 30 >= d_1+1): never
// blocked, finish 30. sum(d_k-e_k) = sum(1+2k) = 100; at most 4 elements
// are in the FIFO (e.g. at t = 27: 9 sent, d_0..d_4 <= 27 read).
func TestProducerConsumer(t *testing.T) {
	tests := []struct {
		capacity                     int
		prodFinish, prodBlocked      int64
		occupiedCycles, maxOccupancy int64
	}{
		{capacity: 1, prodFinish: 45, prodBlocked: 15, occupiedCycles: 36, maxOccupancy: 1},
		{capacity: 2, prodFinish: 40, prodBlocked: 10, occupiedCycles: 70, maxOccupancy: 2},
		{capacity: 8, prodFinish: 30, prodBlocked: 0, occupiedCycles: 100, maxOccupancy: 4},
	}
	for _, tt := range tests {
		g := NewGraph()
		f := mustFIFO(t, g, "f", tt.capacity, 1)
		g.AddActor("producer", source(f, 10, 3), Writes(f))
		g.AddActor("consumer", stage(f, nil, 5, "consume"), Reads(f))
		s := mustRun(t, g)

		p, c, fs := s.Actor("producer"), s.Actor("consumer"), s.FIFO("f")
		require.NotNil(t, p)
		require.NotNil(t, c)
		require.NotNil(t, fs)
		assert.Equal(t, int64(54), s.Makespan, "C=%d makespan", tt.capacity)
		assert.Equal(t, tt.prodFinish, p.Finish, "C=%d producer finish", tt.capacity)
		assert.Equal(t, int64(30), p.Busy, "C=%d producer busy", tt.capacity)
		assert.Equal(t, []PortCycles{{"f", tt.prodBlocked}}, p.Blocked, "C=%d producer blocked", tt.capacity)
		assert.Equal(t, int64(54), c.Finish, "C=%d consumer finish", tt.capacity)
		assert.Equal(t, int64(50), c.Busy, "C=%d consumer busy", tt.capacity)
		assert.Equal(t, []PortCycles{{"f", 4}}, c.Starved, "C=%d consumer starved", tt.capacity)
		assert.InDelta(t, 50.0/54, c.Utilisation, 1e-12)
		assert.Equal(t, []LabelCycles{{"consume", 50}}, c.ByLabel)

		assert.Equal(t, int64(10), fs.Elements)
		assert.Len(t, fs.Occupancy, tt.capacity+1)
		var total int64
		for _, n := range fs.Occupancy {
			total += n
		}
		assert.Equal(t, s.Makespan, total, "C=%d histogram covers the makespan", tt.capacity)
		assert.Equal(t, tt.occupiedCycles, elementCycles(fs), "C=%d occupied cycles", tt.capacity)
		assert.Equal(t, int(tt.maxOccupancy), fs.MaxOccupancy, "C=%d max occupancy", tt.capacity)
	}
	// C=1 in full: 18 cycles empty, 36 full.
	g := NewGraph()
	f := mustFIFO(t, g, "f", 1, 1)
	g.AddActor("producer", source(f, 10, 3), Writes(f))
	g.AddActor("consumer", stage(f, nil, 5, "consume"), Reads(f))
	fs := mustRun(t, g).FIFO("f")
	assert.Equal(t, []int64{18, 36}, fs.Occupancy)
	assert.InDelta(t, 36.0/54, fs.FullFraction, 1e-12)
	assert.InDelta(t, 18.0/54, fs.EmptyFraction, 1e-12)
}

// TestFastConsumer: the producer takes 5 cycles per element (Work(5) then
// Send, 4 elements: e_k = 5, 10, 15, 20, visible at 6, 11, 16, 21), the
// consumer 1 (Recv then Work(1)), C=2, L=1. The consumer waits 6 cycles for
// element 0 and 11-7 = 4 for each later one: starved 6+3*4 = 18, busy 4,
// finish 22. The producer is never blocked and finishes at 20.
func TestFastConsumer(t *testing.T) {
	g := NewGraph()
	f := mustFIFO(t, g, "f", 2, 1)
	g.AddActor("producer", source(f, 4, 5), Writes(f))
	g.AddActor("consumer", stage(f, nil, 1, "consume"), Reads(f))
	s := mustRun(t, g)
	assert.Equal(t, int64(22), s.Makespan)
	assert.Equal(t, []PortCycles{{"f", 18}}, s.Actor("consumer").Starved)
	assert.Equal(t, int64(4), s.Actor("consumer").Busy)
	assert.Equal(t, []PortCycles{{"f", 0}}, s.Actor("producer").Blocked)
	assert.Equal(t, int64(20), s.Actor("producer").Finish)
	assert.InDelta(t, 4.0/22, s.Actor("consumer").Utilisation, 1e-12)
	// Never full: each element is read the cycle it becomes visible.
	assert.Equal(t, 1, s.FIFO("f").MaxOccupancy)
	assert.Zero(t, s.FIFO("f").FullFraction)
}

// TestLatency: latency 4, capacity 2, producer Work(1) then Send (6
// elements), consumer Recv then Work(1).
//
//	e_0 = 1, e_1 = 2                    visible at 5, 6
//	d_0 = 5 (starved 5), d_1 = 6        consumer at 7
//	e_2 = max(3, d_0+1) = 6 (blocked 3), e_3 = max(7, d_1+1) = 7
//	d_2 = max(7, 10) = 10 (starved 3), d_3 = max(11, 11) = 11, at 12
//	e_4 = max(8, d_2+1) = 11 (blocked 3), e_5 = max(12, d_3+1) = 12
//	d_4 = max(12, 15) = 15 (starved 3), d_5 = 16, consumer finishes at 17
//
// Two elements per round trip of L + credit latency + 1 = 5 cycles.
func TestLatency(t *testing.T) {
	g := NewGraph()
	f := mustFIFO(t, g, "f", 2, 4)
	g.AddActor("producer", source(f, 6, 1), Writes(f))
	g.AddActor("consumer", stage(f, nil, 1, "consume"), Reads(f))
	s := mustRun(t, g)
	p, c := s.Actor("producer"), s.Actor("consumer")
	assert.Equal(t, int64(12), p.Finish)
	assert.Equal(t, []PortCycles{{"f", 6}}, p.Blocked)
	assert.Equal(t, int64(17), c.Finish)
	assert.Equal(t, []PortCycles{{"f", 11}}, c.Starved)
	assert.Equal(t, int64(17), s.Makespan)
}

// TestPipeline: source (1 cycle/element) -> s1 (2) -> s2 (4) -> s3 (1) ->
// sink (1), capacities 2, latency 1, N = 20 elements. s2 is the slowest
// stage and sets the rate. Element 0 reaches s2 at 5 (source sends at 1,
// visible 2; s1 works 2-4, sends at 4, visible 5), so s2 starves 5; after
// that s1 stays ahead (it sends element k by 4k+2 < 5+4k, when s2 wants
// it) and s3 and the sink keep up (s3 frees s2's slot k-2 at 4k+3 <=
// 9+4k), so s2 dequeues element k at 5+4k and sends it at 9+4k: busy 80,
// never blocked, finishes at 9+4*19 = 85. s3 gets element k at 10+4k and
// sends it at 11+4k; the sink reads it at 12+4k and finishes at 13+4*19 =
// 89 = 4N+9, starved 12 for element 0 and 3 for each of the others.
func TestPipeline(t *testing.T) {
	const n = 20
	g := NewGraph()
	var fs []*FIFO[int]
	for _, name := range []string{"a", "b", "c", "d"} {
		fs = append(fs, mustFIFO(t, g, name, 2, 1))
	}
	g.AddActor("source", source(fs[0], n, 1), Writes(fs[0]))
	g.AddActor("s1", stage(fs[0], fs[1], 2, "s1"), Reads(fs[0]), Writes(fs[1]))
	g.AddActor("s2", stage(fs[1], fs[2], 4, "s2"), Reads(fs[1]), Writes(fs[2]))
	g.AddActor("s3", stage(fs[2], fs[3], 1, "s3"), Reads(fs[2]), Writes(fs[3]))
	g.AddActor("sink", stage(fs[3], nil, 1, "sink"), Reads(fs[3]))
	s := mustRun(t, g)

	assert.Equal(t, int64(4*n+9), s.Makespan)
	s2 := s.Actor("s2")
	assert.Equal(t, int64(4*n), s2.Busy)
	assert.Equal(t, []PortCycles{{"b", 5}}, s2.Starved)
	assert.Equal(t, []PortCycles{{"c", 0}}, s2.Blocked)
	assert.Equal(t, int64(85), s2.Finish)
	assert.InDelta(t, 80.0/89, s2.Utilisation, 1e-12)
	sink := s.Actor("sink")
	assert.Equal(t, []PortCycles{{"d", 12 + 3*(n-1)}}, sink.Starved)
	assert.Equal(t, int64(4*n+9), sink.Finish)
	// Every stage is less utilised than the bottleneck.
	for _, a := range s.Actors {
		assert.LessOrEqual(t, a.Utilisation, s2.Utilisation, a.Name)
	}
}

// TestSelect: a at latency 1 sends at 0, 4, 8 (Send then Work(4)), visible
// at 1, 5, 9; b sends at 2, 4, 6 (Work(2) then Send), visible at 3, 5, 7.
// The merger takes whichever head is visible first, ties to a, then works
// one cycle:
//
//	t=0: a at 1 beats b (b's clock 0 + 1 = 1 ties, a wins): a0 at 1
//	t=2: b at 3, a cannot deliver before 5:             b0 at 3
//	t=4: a and b both at 5, tie to a:                   a1 at 5
//	t=6: b visible since 5, a not before 9:             b1 at 6
//	t=7: b at 7:                                        b2 at 7
//	t=8: b is closed:                                   a2 at 9
//	t=10: both closed.
//
// Starved: a 1+1+1 = 3 (t 0->1, 4->5, 8->9), b 1 (2->3).
func TestSelect(t *testing.T) {
	g := NewGraph()
	a := mustFIFO(t, g, "a", 4, 1)
	b := mustFIFO(t, g, "b", 4, 1)
	g.AddActor("srcA", func(ctx *Ctx) error {
		for i := range 3 {
			if err := a.Send(ctx, i); err != nil {
				return err
			}
			ctx.Work(4, "a")
		}
		return nil
	}, Writes(a))
	g.AddActor("srcB", source(b, 3, 2), Writes(b))
	type pick struct {
		input, value int
		at           int64
	}
	var got []pick
	g.AddActor("merger", func(ctx *Ctx) error {
		for {
			k, err := Select(ctx, a, b)
			if errors.Is(err, ErrClosed) {
				return nil
			}
			if err != nil {
				return err
			}
			v, err := []*FIFO[int]{a, b}[k].Recv(ctx)
			if err != nil {
				return err
			}
			got = append(got, pick{k, v, ctx.Now()})
			ctx.Work(1, "merge")
		}
	}, Reads(a, b))
	s := mustRun(t, g)
	assert.Equal(t, []pick{{0, 0, 1}, {1, 0, 3}, {0, 1, 5}, {1, 1, 6}, {1, 2, 7}, {0, 2, 9}}, got)
	m := s.Actor("merger")
	assert.Equal(t, int64(10), m.Finish)
	assert.Equal(t, []PortCycles{{"a", 3}, {"b", 1}}, m.Starved)
}

// TestPeekAt: the writer sends at 3 (Work(3) then Send, latency 1: visible
// at 4). A reader polling PeekAt then Work(1) sees nothing at 0, 1, 2, 3
// and the element at 4; a blocking Peek then returns it without moving the
// clock, and after the writer finishes PeekAt reports ErrClosed.
func TestPeekAt(t *testing.T) {
	g := NewGraph()
	f := mustFIFO(t, g, "f", 1, 1)
	g.AddActor("writer", source(f, 1, 3), Writes(f))
	var misses int
	var peeked, got int
	var closedErr error
	g.AddActor("reader", func(ctx *Ctx) error {
		for {
			v, ok, err := f.PeekAt(ctx)
			if err != nil {
				return err
			}
			if ok {
				peeked = v
				break
			}
			misses++
			ctx.Work(1, "poll")
		}
		v, err := f.Peek(ctx)
		if err != nil {
			return err
		}
		got = v
		if _, err := f.Recv(ctx); err != nil {
			return err
		}
		_, _, closedErr = f.PeekAt(ctx)
		return nil
	}, Reads(f))
	s := mustRun(t, g)
	assert.Equal(t, 4, misses)
	assert.Equal(t, 0, peeked)
	assert.Equal(t, 0, got)
	assert.ErrorIs(t, closedErr, ErrClosed)
	assert.Equal(t, int64(4), s.Actor("reader").Finish)
	assert.Equal(t, []PortCycles{{"f", 0}}, s.Actor("reader").Starved)
}

// TestPeekAtClose: the end of a stream travels like an element. The writer
// works 5 cycles and finishes without sending; with latency 3 a polling
// reader sees "nothing now" at 0..7 and ErrClosed at 8, whether or not the
// writer has finished in wall time when it asks.
func TestPeekAtClose(t *testing.T) {
	for range 20 {
		g := NewGraph()
		f := mustFIFO(t, g, "f", 1, 3)
		g.AddActor("writer", func(ctx *Ctx) error {
			ctx.Work(5, "w")
			return nil
		}, Writes(f))
		misses := 0
		g.AddActor("reader", func(ctx *Ctx) error {
			for {
				_, ok, err := f.PeekAt(ctx)
				if errors.Is(err, ErrClosed) {
					return nil
				}
				if err != nil || ok {
					return fmt.Errorf("ok=%v err=%v", ok, err)
				}
				misses++
				ctx.Work(1, "poll")
			}
		}, Reads(f))
		s := mustRun(t, g)
		assert.Equal(t, 8, misses)
		assert.Equal(t, int64(8), s.Actor("reader").Finish)
	}
}
