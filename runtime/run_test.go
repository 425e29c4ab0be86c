package runtime

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	goruntime "runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// cost is a data-dependent work amount, so that stages run unevenly.
func cost(v, salt int) int64 { return int64(1 + (v*2654435761+salt)%7) }

// mixedGraph has every kind of arbitration and fan-out/fan-in:
//
//	source0..2 -> work0..2 -> worker0..2 -> done0..2
//	    -> merge (Select: earliest first) -> merged
//	src2 -> fan (broadcast to p and q) -> pslow, qvar -> pq (Recv both: fan-in)
//	genA, genB -> pick (PeekAt polling, prefers genA) -> picked
//	merged, pqsum, picked -> join -> sink
//
// The sink records the values it sees in order. Work amounts depend on the
// data so that stages run unevenly.
func mixedGraph(t testing.TB, n int, got *[]int) *Graph {
	g := NewGraph()
	var work, done [3]*FIFO[int]
	for i := range work {
		work[i] = mustFIFO(t, g, fmt.Sprintf("work%d", i), 2, 1+i)
		done[i] = mustFIFO(t, g, fmt.Sprintf("done%d", i), 3, 1)
	}
	merged := mustFIFO(t, g, "merged", 4, 1)
	src2 := mustFIFO(t, g, "src2", 2, 1)
	p, q := mustFIFO(t, g, "p", 2, 2), mustFIFO(t, g, "q", 5, 1)
	pp, qq := mustFIFO(t, g, "pp", 2, 1), mustFIFO(t, g, "qq", 2, 3)
	pqsum := mustFIFO(t, g, "pqsum", 2, 1)
	genA, genB := mustFIFO(t, g, "genA", 2, 1), mustFIFO(t, g, "genB", 3, 2)
	picked := mustFIFO(t, g, "picked", 8, 1)
	joined := mustFIFO(t, g, "joined", 2, 1)

	// Three independent sources: a merge over inputs that share one
	// round-robin dispatcher can deadlock under these time rules (the merge
	// waits for an idle worker whose input sits behind a full FIFO).
	for i := range work {
		g.AddActor(fmt.Sprintf("source%d", i), source(work[i], n/3, int64(i+1)), Writes(work[i]))
	}
	for i := range work {
		g.AddActor(fmt.Sprintf("worker%d", i), func(ctx *Ctx) error {
			for {
				v, err := work[i].Recv(ctx)
				if errors.Is(err, ErrClosed) {
					return nil
				}
				if err != nil {
					return err
				}
				ctx.Work(cost(v, i)*3, "work")
				if err := done[i].Send(ctx, v*10+i); err != nil {
					return err
				}
			}
		}, Reads(work[i]), Writes(done[i]))
	}
	g.AddActor("merge", func(ctx *Ctx) error {
		for {
			k, err := Select(ctx, done[0], done[1], done[2])
			if errors.Is(err, ErrClosed) {
				return nil
			}
			if err != nil {
				return err
			}
			v, err := done[k].Recv(ctx)
			if err != nil {
				return err
			}
			ctx.Work(1, "merge")
			if err := merged.Send(ctx, v); err != nil {
				return err
			}
		}
	}, Reads(done[0], done[1], done[2]), Writes(merged))

	g.AddActor("src2", source(src2, n, 2), Writes(src2))
	g.AddActor("fan", func(ctx *Ctx) error {
		for {
			v, err := src2.Recv(ctx)
			if errors.Is(err, ErrClosed) {
				return nil
			}
			if err != nil {
				return err
			}
			ctx.Work(1, "fan")
			if err := p.Send(ctx, v); err != nil {
				return err
			}
			if err := q.Send(ctx, -v); err != nil {
				return err
			}
		}
	}, Reads(src2), Writes(p, q))
	g.AddActor("pslow", stage(p, pp, 2, "pslow"), Reads(p), Writes(pp))
	g.AddActor("qvar", func(ctx *Ctx) error {
		for {
			v, err := q.Recv(ctx)
			if errors.Is(err, ErrClosed) {
				return nil
			}
			if err != nil {
				return err
			}
			ctx.Work(cost(-v, 5), "qvar")
			if err := qq.Send(ctx, v); err != nil {
				return err
			}
		}
	}, Reads(q), Writes(qq))
	g.AddActor("pq", func(ctx *Ctx) error {
		for {
			a, errA := pp.Recv(ctx)
			b, errB := qq.Recv(ctx)
			if errors.Is(errA, ErrClosed) && errors.Is(errB, ErrClosed) {
				return nil
			}
			if errA != nil || errB != nil {
				return errors.Join(errA, errB)
			}
			ctx.Work(1, "pq")
			if err := pqsum.Send(ctx, a+b); err != nil {
				return err
			}
		}
	}, Reads(pp, qq), Writes(pqsum))

	for i, f := range []*FIFO[int]{genA, genB} {
		g.AddActor(f.Name(), func(ctx *Ctx) error {
			for v := range n {
				ctx.Work(cost(v, 11+i)*2, "gen")
				if err := f.Send(ctx, v*10+i); err != nil {
					return err
				}
			}
			return nil
		}, Writes(f))
	}
	// pick polls with PeekAt each cycle, preferring genA; it forwards
	// whichever element is visible now and idles a cycle otherwise.
	g.AddActor("pick", func(ctx *Ctx) error {
		closed := [2]bool{}
		ins := [2]*FIFO[int]{genA, genB}
		for !closed[0] || !closed[1] {
			took := false
			for i, in := range ins {
				if closed[i] {
					continue
				}
				_, ok, err := in.PeekAt(ctx)
				if errors.Is(err, ErrClosed) {
					closed[i] = true
					continue
				}
				if err != nil {
					return err
				}
				if ok {
					v, err := in.Recv(ctx)
					if err != nil {
						return err
					}
					if err := picked.Send(ctx, v); err != nil {
						return err
					}
					took = true
					break
				}
			}
			if took {
				ctx.Work(1, "pick")
			} else if !closed[0] || !closed[1] {
				ctx.Work(1, "idle")
			}
		}
		return nil
	}, Reads(genA, genB), Writes(picked))

	g.AddActor("join", func(ctx *Ctx) error {
		for {
			a, errA := merged.Recv(ctx)
			b, errB := pqsum.Recv(ctx)
			c1, errC := picked.Recv(ctx)
			c2, errD := picked.Recv(ctx)
			if errA != nil || errB != nil || errC != nil || errD != nil {
				if errors.Is(errA, ErrClosed) && errors.Is(errB, ErrClosed) && errors.Is(errC, ErrClosed) {
					return nil
				}
				return errors.Join(errA, errB, errC, errD)
			}
			ctx.Work(2, "join")
			if err := joined.Send(ctx, ((a*7+b)*31+c1)*31+c2); err != nil {
				return err
			}
		}
	}, Reads(merged, pqsum, picked), Writes(joined))
	g.AddActor("sink", func(ctx *Ctx) error {
		for {
			v, err := joined.Recv(ctx)
			if errors.Is(err, ErrClosed) {
				return nil
			}
			if err != nil {
				return err
			}
			*got = append(*got, v)
			ctx.Work(1, "sink")
		}
	}, Reads(joined))
	return g
}

// TestDeterminism runs the mixed graph repeatedly under GOMAXPROCS 1, 2 and
// 8, under every scheduler: outputs, statistics and the trace must be
// identical every time.
func TestDeterminism(t *testing.T) {
	const n = 300 // a multiple of 3
	var want []int
	var wantStats *Stats
	var wantTrace []byte
	defer goruntime.GOMAXPROCS(goruntime.GOMAXPROCS(0))
	for _, procs := range []int{1, 2, 8} {
		goruntime.GOMAXPROCS(procs)
		for rep := range 4 {
			var got []int
			var trace bytes.Buffer
			g := mixedGraph(t, n, &got)
			opt := schedulerOptions[rep].opt
			sched := schedulerOptions[rep].name
			opt.Trace = &trace
			s, err := g.Run(context.Background(), opt)
			require.NoError(t, err)
			require.Len(t, got, n)
			if wantStats == nil {
				want, wantStats, wantTrace = got, s, trace.Bytes()
				continue
			}
			assert.Equal(t, want, got, "procs=%d rep=%d %s output", procs, rep, sched)
			assert.Equal(t, wantStats, s, "procs=%d rep=%d %s stats", procs, rep, sched)
			assert.True(t, bytes.Equal(wantTrace, trace.Bytes()), "procs=%d rep=%d %s trace", procs, rep, sched)
		}
	}
	// The arbiters really arbitrate: pick idles some cycles and takes from
	// both inputs, and merge's Select takes the workers out of turn.
	pick := wantStats.Actor("pick")
	require.Len(t, pick.ByLabel, 2)
	assert.Positive(t, pick.ByLabel[0].Cycles, "idle")
	assert.Equal(t, int64(2*n), pick.ByLabel[1].Cycles, "pick")
	assert.Positive(t, wantStats.Actor("merge").TotalStarved())
	assert.NotEqual(t, wantStats.FIFO("done0").Occupancy, wantStats.FIFO("done1").Occupancy)
}

// TestDeadlock: two actors each send 3 elements to the other through FIFOs
// of capacity 1 before reading anything: both block on their second Send.
func TestDeadlock(t *testing.T) { forSchedulers(t, testDeadlock) }

func testDeadlock(t *testing.T, opt Options) {
	g := NewGraph()
	ab := mustFIFO(t, g, "ab", 1, 1)
	ba := mustFIFO(t, g, "ba", 1, 1)
	exchange := func(out, in *FIFO[int]) func(*Ctx) error {
		return func(ctx *Ctx) error {
			for i := range 3 {
				ctx.Work(2, "send")
				if err := out.Send(ctx, i); err != nil {
					return err
				}
			}
			_, err := in.Recv(ctx)
			return err
		}
	}
	g.AddActor("a", exchange(ab, ba), Writes(ab), Reads(ba))
	g.AddActor("b", exchange(ba, ab), Writes(ba), Reads(ab))
	start := time.Now()
	_, err := g.Run(context.Background(), opt)
	elapsed := time.Since(start)
	require.Error(t, err)
	assert.Less(t, elapsed, time.Second, "deadlock detection took %v", elapsed)
	assert.ErrorIs(t, err, ErrDeadlock)
	var de *DeadlockError
	require.ErrorAs(t, err, &de)
	require.Len(t, de.Cycle, 2)
	// Each actor sent element 0 at cycle 2 and element 1 at cycle 4; the
	// FIFO holds element 0, unread: 1/1.
	for _, b := range de.Cycle {
		assert.Equal(t, int64(4), b.Time)
		assert.Equal(t, "send on", b.Op)
		assert.Equal(t, int64(1), b.Occupancy)
		assert.Equal(t, int64(1), b.Capacity)
	}
	msg := err.Error()
	assert.Contains(t, msg, `a (cycle 4) waits to send on fifo "ab" (1/1 elements)`)
	assert.Contains(t, msg, `b (cycle 4) waits to send on fifo "ba" (1/1 elements)`)
}

// TestDeadlockStarved: a ring of three actors that each wait to receive
// before sending, with a fourth actor that finishes normally.
func TestDeadlockStarved(t *testing.T) { forSchedulers(t, testDeadlockStarved) }

func testDeadlockStarved(t *testing.T, opt Options) {
	g := NewGraph()
	names := []string{"x", "y", "z"}
	var fs []*FIFO[int]
	for i := range names {
		fs = append(fs, mustFIFO(t, g, names[i]+names[(i+1)%3], 2, 1))
	}
	for i, name := range names {
		in, out := fs[(i+2)%3], fs[i]
		g.AddActor(name, stage(in, out, 1, name), Reads(in), Writes(out))
	}
	bystander := mustFIFO(t, g, "bystander", 2, 1)
	g.AddActor("bsrc", source(bystander, 5, 1), Writes(bystander))
	g.AddActor("bsink", stage(bystander, nil, 1, "b"), Reads(bystander))
	_, err := g.Run(context.Background(), opt)
	var de *DeadlockError
	require.ErrorAs(t, err, &de)
	assert.Len(t, de.Cycle, 3)
	assert.Len(t, de.Blocked, 3)
	for _, b := range de.Cycle {
		assert.Equal(t, "receive on", b.Op)
		assert.Equal(t, int64(0), b.Occupancy)
	}
	assert.Contains(t, err.Error(), `x (cycle 0) waits to receive on fifo "zx" (0/2 elements)`)
}

// TestFailure: a panic or an error in one actor fails the run, names the
// actor and cancels the others, which are blocked at the time.
func TestFailure(t *testing.T) { forSchedulers(t, testFailure) }

func testFailure(t *testing.T, opt Options) {
	boom := errors.New("boom")
	tests := []struct {
		name string
		body func(*Ctx) error
		want []string
	}{
		{"panic", func(ctx *Ctx) error {
			ctx.Work(7, "x")
			var m map[string]int
			m["x"] = 1 // nil map write
			return nil
		}, []string{`actor "bad" panicked at cycle 7`, "assignment to entry in nil map", "goroutine", "run_test.go"}},
		{"error", func(ctx *Ctx) error { return boom }, []string{`actor "bad": boom`}},
		{"negative work", func(ctx *Ctx) error { ctx.Work(-1, "x"); return nil }, []string{"negative cycles"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewGraph()
			f := mustFIFO(t, g, "f", 1, 1)
			// The producer fills f and blocks; the consumer never reads it.
			g.AddActor("producer", source(f, 100, 1), Writes(f))
			g.AddActor("bad", tt.body, Reads(f))
			_, err := g.Run(context.Background(), opt)
			require.Error(t, err)
			for _, w := range tt.want {
				assert.Contains(t, err.Error(), w)
			}
			if tt.name == "error" {
				assert.ErrorIs(t, err, boom)
			}
		})
	}
}

// TestCallerCancel: cancelling the caller's context ends a run whose actors
// are all waiting on each other through an actor that never finishes.
func TestCallerCancel(t *testing.T) { forSchedulers(t, testCallerCancel) }

func testCallerCancel(t *testing.T, opt Options) {
	g := NewGraph()
	f := mustFIFO(t, g, "f", 1, 1)
	g.AddActor("slow", func(ctx *Ctx) error {
		<-ctx.Context().Done() // wall-time work, not a FIFO wait: not a deadlock
		return nil
	}, Writes(f))
	g.AddActor("waiter", stage(f, nil, 1, "w"), Reads(f))
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		time.Sleep(20 * time.Millisecond)
		cancel()
	}()
	_, err := g.Run(ctx, opt)
	require.Error(t, err)
	assert.ErrorIs(t, err, ErrCancelled)
	assert.ErrorIs(t, err, context.Canceled)
}

func TestReaderDoneAndClosed(t *testing.T) { forSchedulers(t, testReaderDoneAndClosed) }

func testReaderDoneAndClosed(t *testing.T, opt Options) {
	g := NewGraph()
	f := mustFIFO(t, g, "f", 2, 1)
	var sendErr error
	g.AddActor("producer", func(ctx *Ctx) error {
		for i := range 10 {
			if err := f.Send(ctx, i); err != nil {
				sendErr = err
				return nil
			}
		}
		return nil
	}, Writes(f))
	g.AddActor("consumer", func(ctx *Ctx) error {
		_, err := f.Recv(ctx)
		return err
	}, Reads(f))
	_, err := g.Run(context.Background(), opt)
	require.NoError(t, err)
	// The reader took one element: the producer sent 3 (2 fill the FIFO
	// after the first is read) and the 4th needs a credit that never comes.
	assert.ErrorIs(t, sendErr, ErrReaderDone)
	assert.Contains(t, sendErr.Error(), `send on fifo "f"`)
}

func TestConstructionErrors(t *testing.T) {
	g := NewGraph()
	_, err := NewFIFO[int](g, "c0", 0, 1)
	assert.ErrorContains(t, err, `fifo "c0": capacity 0 out of range`)
	_, err = NewFIFO[int](g, "big", 1<<30, 1)
	assert.ErrorContains(t, err, "out of range")
	_, err = NewFIFO[int](g, "l0", 1, 0)
	assert.ErrorContains(t, err, `fifo "l0": latency 0 must be >= 1`)
	_, err = NewFIFO[int](g, "", 1, 1)
	assert.ErrorContains(t, err, "empty fifo name")
	f := mustFIFO(t, g, "f", 1, 1)
	_, err = NewFIFO[int](g, "f", 1, 1)
	assert.ErrorContains(t, err, `duplicate fifo name "f"`)

	tests := []struct {
		name  string
		build func(g *Graph)
		want  string
	}{
		{"no actors", func(g *Graph) {}, "no actors"},
		{"no reader", func(g *Graph) {
			f := mustFIFO(t, g, "f", 1, 1)
			g.AddActor("w", func(*Ctx) error { return nil }, Writes(f))
		}, `fifo "f" has no reader`},
		{"two writers", func(g *Graph) {
			f := mustFIFO(t, g, "f", 1, 1)
			g.AddActor("w1", func(*Ctx) error { return nil }, Writes(f))
			g.AddActor("w2", func(*Ctx) error { return nil }, Writes(f))
		}, `fifo "f" has two writers: "w1" and "w2"`},
		{"duplicate actor", func(g *Graph) {
			g.AddActor("a", func(*Ctx) error { return nil })
			g.AddActor("a", func(*Ctx) error { return nil })
		}, `duplicate actor name "a"`},
		{"nil body", func(g *Graph) { g.AddActor("a", nil) }, "nil body"},
		{"foreign fifo", func(g *Graph) {
			g.AddActor("a", func(*Ctx) error { return nil }, Reads(f))
		}, "of another graph"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewGraph()
			tt.build(g)
			_, err := g.Run(context.Background(), Options{})
			assert.ErrorContains(t, err, tt.want)
		})
	}
}

func TestUndeclaredUse(t *testing.T) {
	g := NewGraph()
	f := mustFIFO(t, g, "f", 1, 1)
	g.AddActor("w", source(f, 1, 1), Writes(f))
	g.AddActor("r", stage(f, nil, 1, "r"), Reads(f))
	g.AddActor("intruder", func(ctx *Ctx) error {
		return f.Send(ctx, 1)
	})
	_, err := g.Run(context.Background(), Options{})
	assert.ErrorContains(t, err, `actor "intruder": send on fifo "f": not declared with Writes for actor "intruder"`)

	g = NewGraph()
	f = mustFIFO(t, g, "f", 1, 1)
	g.AddActor("w", source(f, 1, 1), Writes(f))
	g.AddActor("r", stage(f, nil, 1, "r"), Reads(f))
	_, err = g.Run(context.Background(), Options{})
	require.NoError(t, err)
	_, err = g.Run(context.Background(), Options{})
	assert.ErrorContains(t, err, "graph already ran")
}

// TestTrace checks the trace's content on the C=1 producer/consumer, its
// determinism, and the event cap.
func TestTrace(t *testing.T) {
	build := func() *Graph {
		g := NewGraph()
		f := mustFIFO(t, g, "f", 1, 1)
		g.AddActor("producer", source(f, 10, 3), Writes(f))
		g.AddActor("consumer", stage(f, nil, 5, "consume"), Reads(f))
		return g
	}
	var a, b bytes.Buffer
	whole, err := build().Run(context.Background(), Options{Trace: &a, ClockMHz: 500})
	require.NoError(t, err)
	assert.Zero(t, whole.TraceCut, "a whole trace")
	_, err = build().Run(context.Background(), Options{Trace: &b, ClockMHz: 500})
	require.NoError(t, err)
	assert.Equal(t, a.String(), b.String())

	var doc struct {
		TraceEvents []struct {
			Ph   string         `json:"ph"`
			Name string         `json:"name"`
			Cat  string         `json:"cat"`
			Pid  int            `json:"pid"`
			Tid  int            `json:"tid"`
			Ts   float64        `json:"ts"`
			Dur  float64        `json:"dur"`
			Args map[string]any `json:"args"`
		} `json:"traceEvents"`
	}
	require.NoError(t, json.Unmarshal(a.Bytes(), &doc))
	var threads []string
	thread := map[int]string{} // tid -> name; metadata come first
	var busy, stalls, counters int
	var busyDur float64
	for _, e := range doc.TraceEvents {
		switch {
		case e.Ph == "M" && e.Name == "thread_name":
			threads = append(threads, e.Args["name"].(string))
			thread[e.Tid] = e.Args["name"].(string)
		case e.Ph == "X" && e.Cat == "busy" && thread[e.Tid] == "consumer":
			assert.Equal(t, "consume", e.Name)
			busy++
			busyDur += e.Dur
		case e.Ph == "X" && e.Cat == "stall":
			stalls++
			if thread[e.Tid] == "producer" {
				assert.Equal(t, "blocked on f by consumer", e.Name)
			} else {
				assert.Equal(t, "starved on f waiting for producer", e.Name)
				// Starved from cycle 0 to 4; 1 cycle is shown as 1 us.
				assert.Equal(t, 0.0, e.Ts)
				assert.Equal(t, 4.0, e.Dur)
			}
		case e.Ph == "C":
			assert.Equal(t, "f", e.Name)
			counters++
		}
	}
	assert.Equal(t, []string{"producer", "consumer"}, threads)
	// The consumer works without a gap from cycle 4: one merged slice of
	// 50 cycles.
	assert.Equal(t, 1, busy)
	assert.Equal(t, 50.0, busyDur)
	// Producer stalls: e_2 .. e_9 (8 slices); consumer: one.
	assert.Equal(t, 9, stalls)
	assert.Equal(t, 20, counters, "one occupancy change per send and per dequeue, no two at one time")

	var capped bytes.Buffer
	cs, err := build().Run(context.Background(), Options{Trace: &capped, MaxTraceEvents: 10})
	require.NoError(t, err)
	assert.Contains(t, capped.String(), "trace truncated here: event cap 10 reached")
	assert.Positive(t, cs.TraceCut, "the cut is reported")
	assert.Less(t, cs.TraceCut, cs.Makespan)
	require.NoError(t, json.Unmarshal(capped.Bytes(), &doc))
	assert.Less(t, len(doc.TraceEvents), 60)
	assert.Less(t, strings.Count(capped.String(), `"ph":"C"`), 20)
}

func TestWorkLabels(t *testing.T) {
	g := NewGraph()
	g.AddActor("a", func(ctx *Ctx) error {
		for i := range 10 {
			ctx.Work(int64(i), "mul")
			ctx.Work(2, "add")
		}
		ctx.Work(0, "nothing")
		assert.Equal(t, int64(45+20), ctx.Now())
		assert.Equal(t, "a", ctx.Name())
		return nil
	})
	s := mustRun(t, g)
	a := s.Actor("a")
	assert.Equal(t, []LabelCycles{{"add", 20}, {"mul", 45}}, a.ByLabel)
	assert.Equal(t, int64(65), a.Busy)
	assert.InDelta(t, 1.0, a.Utilisation, 0)
	assert.Nil(t, s.Actor("missing"))
	assert.Nil(t, s.FIFO("missing"))
}

// TestCreditBatch pins the credit batch size: a reader that returned every
// credit at once would cost a locked store per element.
func TestCreditBatch(t *testing.T) {
	for _, tc := range []struct{ capacity, want int }{
		{1, 1}, {3, 1}, {4, 1}, {8, 2}, {32, 8}, {1024, maxCreditBatch},
	} {
		f, err := NewFIFO[int](NewGraph(), "f", tc.capacity, 1)
		require.NoError(t, err)
		assert.Equal(t, int64(tc.want), f.creditBatch, "capacity %d", tc.capacity)
	}
}

// forSchedulers runs test under every scheduler, and with each actor in a
// group of coroutines of its own.
func forSchedulers(t *testing.T, test func(*testing.T, Options)) {
	for _, opt := range schedulerOptions {
		t.Run(opt.name, func(t *testing.T) { test(t, opt.opt) })
	}
}

var schedulerOptions = []struct {
	name string
	opt  Options
}{
	{"coroutines", Options{Scheduler: SchedulerCoroutines}},
	{"goroutines", Options{Scheduler: SchedulerGoroutines}},
	{"split", Options{split: 1 << 20}},
	{"auto", Options{}},
}

func TestUnknownScheduler(t *testing.T) {
	g := NewGraph()
	g.AddActor("a", func(*Ctx) error { return nil })
	_, err := g.Run(context.Background(), Options{Scheduler: SchedulerCoroutines + 1})
	assert.ErrorContains(t, err, "unknown scheduler 3")
}

// TestGoexit: an actor that calls runtime.Goexit (t.FailNow, say) fails a
// run at once, the same way under every scheduler, and leaves no goroutine
// behind (goleak checks).
func TestGoexit(t *testing.T) { forSchedulers(t, testGoexit) }

func testGoexit(t *testing.T, opt Options) {
	g := NewGraph()
	f := mustFIFO(t, g, "f", 1, 1)
	g.AddActor("producer", source(f, 100, 1), Writes(f))
	g.AddActor("quitter", func(ctx *Ctx) error {
		if _, err := f.Recv(ctx); err != nil {
			return err
		}
		goruntime.Goexit()
		return nil
	}, Reads(f))
	var err error
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, err = g.Run(context.Background(), opt)
	}()
	<-done
	assert.EqualError(t, err, "runtime.Goexit called by an actor")
}
