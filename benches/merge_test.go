package benches

import (
	"context"
	"errors"
	"fmt"
	goruntime "runtime"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"

	vrt "vitflow/runtime"
)

// mergeGraph builds DAM's merge benchmark: two generators of 0..n-1 into
// depth-32 FIFOs of latency 1, a merge unit that emits the smaller head
// one per cycle, and a checker that verifies the order and counts.
func mergeGraph(copies, n int, checked *atomic.Int64) (*vrt.Graph, error) {
	g := vrt.NewGraph()
	for c := range copies {
		if err := addMerge(g, c, n, checked); err != nil {
			return nil, err
		}
	}
	return g, nil
}

// addMerge adds pipeline c of the merge benchmark to g.
func addMerge(g *vrt.Graph, c, n int, checked *atomic.Int64) error {
	var ins [2]*vrt.FIFO[int64]
	for i := range ins {
		f, err := addGenerator(g, 2*c+i, n, 0)
		if err != nil {
			return err
		}
		ins[i] = f
	}
	out, err := vrt.NewFIFO[int64](g, fmt.Sprintf("merged%d", c), 32, 1)
	if err != nil {
		return err
	}
	g.AddActor(fmt.Sprintf("merge%d", c), func(ctx *vrt.Ctx) error {
		a, errA := ins[0].Peek(ctx)
		b, errB := ins[1].Peek(ctx)
		for errA == nil || errB == nil {
			var v int64
			if errB != nil || (errA == nil && a <= b) {
				if _, err := ins[0].Recv(ctx); err != nil {
					return err
				}
				v = a
				a, errA = ins[0].Peek(ctx)
			} else {
				if _, err := ins[1].Recv(ctx); err != nil {
					return err
				}
				v = b
				b, errB = ins[1].Peek(ctx)
			}
			if err := out.Send(ctx, v); err != nil {
				return err
			}
			ctx.Work(1, "merge")
		}
		for _, err := range []error{errA, errB} {
			if !errors.Is(err, vrt.ErrClosed) {
				return err
			}
		}
		return nil
	}, vrt.Reads(ins[0], ins[1]), vrt.Writes(out))
	g.AddActor(fmt.Sprintf("checker%d", c), func(ctx *vrt.Ctx) error {
		prev, seen := int64(-1), int64(0)
		for {
			v, err := out.Recv(ctx)
			if errors.Is(err, vrt.ErrClosed) {
				checked.Add(seen)
				return nil
			}
			if err != nil {
				return err
			}
			if v < prev {
				return fmt.Errorf("element %d: %d after %d", seen, v, prev)
			}
			prev = v
			seen++
			ctx.Work(1, "check")
		}
	}, vrt.Reads(out))
	return nil
}

// addGenerator adds FIFO "gen<i>" (depth 32, latency 1) and actor
// "generator<i>", which sends base+0 .. base+n-1 into it, one per cycle.
func addGenerator(g *vrt.Graph, i, n int, base int64) (*vrt.FIFO[int64], error) {
	f, err := vrt.NewFIFO[int64](g, fmt.Sprintf("gen%d", i), 32, 1)
	if err != nil {
		return nil, err
	}
	g.AddActor(fmt.Sprintf("generator%d", i), func(ctx *vrt.Ctx) error {
		for v := range int64(n) {
			if err := f.Send(ctx, base+v); err != nil {
				return err
			}
			ctx.Work(1, "generate")
		}
		return nil
	}, vrt.Writes(f))
	return f, nil
}

// benchGraph builds and runs a graph per iteration, at GOMAXPROCS 1 and 2,
// and reports elems (counted per run) per second of wall and of CPU time
// (cpuTime is in sim_test.go). build's checker counts the elements it
// verified into checked, which must reach want.
func benchGraph(b *testing.B, build func(checked *atomic.Int64) (*vrt.Graph, error), want, elems int) {
	for _, procs := range []int{1, 2} {
		b.Run(fmt.Sprintf("procs=%d", procs), func(b *testing.B) {
			defer goruntime.GOMAXPROCS(goruntime.GOMAXPROCS(procs))
			var makespan int64
			total := 0
			cpu0 := cpuTime(b)
			for b.Loop() {
				var checked atomic.Int64
				g, err := build(&checked)
				if err != nil {
					b.Fatal(err)
				}
				s, err := g.Run(context.Background(), vrt.Options{})
				if err != nil {
					b.Fatal(err)
				}
				if got := checked.Load(); got != int64(want) {
					b.Fatalf("checkers saw %d elements, want %d", got, want)
				}
				makespan = s.Makespan
				total += elems
			}
			b.ReportMetric(float64(total)/b.Elapsed().Seconds(), "elem/s")
			// Per second of CPU time (all threads): steadier than wall time
			// when other processes load the machine.
			b.ReportMetric(float64(total)/(cpuTime(b)-cpu0).Seconds(), "cpu-elem/s")
			b.ReportMetric(float64(makespan), "sim-cycles")
		})
	}
}

// BenchmarkMerge: two generators of 2^20 elements; elem/s counts merged
// elements. copies=2 runs two independent pipelines in one graph, which two
// cores can run side by side.
func BenchmarkMerge(b *testing.B) {
	const n = 1 << 20
	for _, copies := range []int{1, 2} {
		b.Run(fmt.Sprintf("copies=%d", copies), func(b *testing.B) {
			benchGraph(b, func(checked *atomic.Int64) (*vrt.Graph, error) { return mergeGraph(copies, n, checked) },
				2*n*copies, 2*n*copies)
		})
	}
}

// adderTreeGraph builds a binary tree of two-input adders over leaves
// generators of n elements each (generator g emits g+i at element i), all
// FIFOs of depth 32 and latency 1, every unit taking one cycle per element.
// The root's sink checks each sum: sum over g of (g+i).
func adderTreeGraph(leaves, n int, checked *atomic.Int64) (*vrt.Graph, error) {
	g := vrt.NewGraph()
	level := make([]*vrt.FIFO[int64], leaves)
	for i := range level {
		f, err := addGenerator(g, i, n, int64(i))
		if err != nil {
			return nil, err
		}
		level[i] = f
	}
	for depth := 0; len(level) > 1; depth++ {
		next := make([]*vrt.FIFO[int64], len(level)/2)
		for i := range next {
			a, b := level[2*i], level[2*i+1]
			out, err := vrt.NewFIFO[int64](g, fmt.Sprintf("sum%d.%d", depth, i), 32, 1)
			if err != nil {
				return nil, err
			}
			next[i] = out
			g.AddActor(fmt.Sprintf("adder%d.%d", depth, i), func(ctx *vrt.Ctx) error {
				for {
					x, errA := a.Recv(ctx)
					y, errB := b.Recv(ctx)
					if errors.Is(errA, vrt.ErrClosed) && errors.Is(errB, vrt.ErrClosed) {
						return nil
					}
					if errA != nil || errB != nil {
						return errors.Join(errA, errB)
					}
					if err := out.Send(ctx, x+y); err != nil {
						return err
					}
					ctx.Work(1, "add")
				}
			}, vrt.Reads(a, b), vrt.Writes(out))
		}
		level = next
	}
	root := level[0]
	g.AddActor("checker", func(ctx *vrt.Ctx) error {
		base := int64(leaves) * int64(leaves-1) / 2
		for i := int64(0); ; i++ {
			v, err := root.Recv(ctx)
			if errors.Is(err, vrt.ErrClosed) {
				return nil
			}
			if err != nil {
				return err
			}
			if want := base + int64(leaves)*i; v != want {
				return fmt.Errorf("sum %d: got %d, want %d", i, v, want)
			}
			checked.Add(1)
			ctx.Work(1, "check")
		}
	}, vrt.Reads(root))
	return g, nil
}

// BenchmarkAdderTree: 1024 generators of 2^12 elements into a binary tree
// of 1023 adders. elem/s counts generated elements.
func BenchmarkAdderTree(b *testing.B) {
	const leaves, n = 1024, 1 << 12
	benchGraph(b, func(checked *atomic.Int64) (*vrt.Graph, error) { return adderTreeGraph(leaves, n, checked) }, n, leaves*n)
}

// BenchmarkScaling runs the engine's scaling cases one after another in
// each iteration, forwards and then backwards, so that every case meets the
// same machine: on a shared host its speed drifts by tens of percent from
// one second to the next, more than the differences measured. It reports
// each case's elements per wall second over all iterations and the ratios
// the engine is held to: two merge copies on two cores against one copy on
// one core, and each procs=2 case against its procs=1 case. It also runs
// the two copies as two graphs at once (2graphs/merge1x1), which tells what
// one Run of both costs beyond the machine's own scaling. A ratio is the
// median over iterations of the ratio within each: a slow burst of the host
// that meets one case of one iteration moves it little, where it would move
// a ratio of totals by its whole length.
func BenchmarkScaling(b *testing.B) {
	const n, leaves, leafN = 1 << 20, 1024, 1 << 12
	merge := func(copies int) func(*atomic.Int64) (*vrt.Graph, error) {
		return func(checked *atomic.Int64) (*vrt.Graph, error) { return mergeGraph(copies, n, checked) }
	}
	adder := func(checked *atomic.Int64) (*vrt.Graph, error) { return adderTreeGraph(leaves, leafN, checked) }
	// graphs is how many graphs of build run at once: two one-copy merge
	// graphs side by side are the two copies without a shared Run.
	cases := []struct {
		name          string
		procs, graphs int
		build         func(*atomic.Int64) (*vrt.Graph, error)
		want, elems   int
		elapsed       []time.Duration // one per iteration
	}{
		{"merge1/procs=1", 1, 1, merge(1), 2 * n, 2 * n, nil},
		{"merge1/procs=2", 2, 1, merge(1), 2 * n, 2 * n, nil},
		{"merge2/procs=1", 1, 1, merge(2), 4 * n, 4 * n, nil},
		{"merge2/procs=2", 2, 1, merge(2), 4 * n, 4 * n, nil},
		{"merge1x2graphs/procs=2", 2, 2, merge(1), 4 * n, 4 * n, nil},
		{"adder/procs=1", 1, 1, adder, leafN, leaves * leafN, nil},
		{"adder/procs=2", 2, 1, adder, leafN, leaves * leafN, nil},
	}
	defer goruntime.GOMAXPROCS(goruntime.GOMAXPROCS(0))
	iter := 0
	for b.Loop() {
		for j := range cases {
			if iter%2 == 1 {
				j = len(cases) - 1 - j
			}
			c := &cases[j]
			goruntime.GOMAXPROCS(c.procs)
			var checked atomic.Int64
			graphs := make([]*vrt.Graph, c.graphs)
			for i := range graphs {
				g, err := c.build(&checked)
				if err != nil {
					b.Fatal(err)
				}
				graphs[i] = g
			}
			t0 := time.Now()
			var eg errgroup.Group
			for _, g := range graphs {
				eg.Go(func() error { _, err := g.Run(context.Background(), vrt.Options{}); return err })
			}
			if err := eg.Wait(); err != nil {
				b.Fatal(err)
			}
			c.elapsed = append(c.elapsed, time.Since(t0))
			if got := checked.Load(); got != int64(c.want) {
				b.Fatalf("%s: checkers saw %d elements, want %d", c.name, got, c.want)
			}
		}
		iter++
	}
	byName := make(map[string]int, len(cases))
	for j, c := range cases {
		byName[c.name] = j
		var total time.Duration
		for _, e := range c.elapsed {
			total += e
		}
		b.ReportMetric(float64(c.elems*len(c.elapsed))/total.Seconds()/1e6, c.name+"-Melem/s")
	}
	// ratio reports the median over iterations of num's rate over den's.
	ratio := func(num, den, unit string) {
		n, d := &cases[byName[num]], &cases[byName[den]]
		r := make([]float64, len(n.elapsed))
		for i := range r {
			r[i] = float64(n.elems) / n.elapsed[i].Seconds() / (float64(d.elems) / d.elapsed[i].Seconds())
		}
		b.ReportMetric(median(r), unit)
	}
	ratio("merge2/procs=2", "merge1/procs=1", "merge2x2/merge1x1")
	ratio("merge1x2graphs/procs=2", "merge1/procs=1", "2graphs/merge1x1")
	for _, name := range []string{"merge1", "merge2", "adder"} {
		ratio(name+"/procs=2", name+"/procs=1", name+"-procs2/procs1")
	}
}

// median returns the median of xs (the mean of the middle two for an even
// count), sorting xs.
func median(xs []float64) float64 {
	slices.Sort(xs)
	m := len(xs) / 2
	if len(xs)%2 == 0 {
		return (xs[m-1] + xs[m]) / 2
	}
	return xs[m]
}
