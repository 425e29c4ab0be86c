package topology

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"text/tabwriter"

	"vitflow/runtime"
)

// DefaultTolerance is SizeOptions.Tolerance when it is zero: 1%.
const DefaultTolerance = 0.01

// maxTolerance bounds SizeOptions.Tolerance: a run ten times as long as
// with unbounded FIFOs is no longer a sizing question.
const maxTolerance = 10

// SizeOptions configure SizeFIFOs.
type SizeOptions struct {
	// Tolerance is how much longer than with unbounded FIFOs a run at the
	// chosen depths may take, as a fraction: 0.01 allows 1%. Zero means
	// DefaultTolerance.
	Tolerance float64
}

// Sizing is what SizeFIFOs chose, and how.
type Sizing struct {
	// Model and Topology name what was sized; Images is the batch size.
	Model, Topology string
	Images          int
	Tolerance       float64
	// Unbounded is the latency, in cycles, with every sizable FIFO as deep
	// as the elements it carries (at most 65,536): no send ever waits.
	// Bound is the most a sized run may take, Unbounded*(1+Tolerance)
	// rounded down; Cycles is the latency at the chosen depths, from a run
	// at those depths.
	Unbounded, Bound, Cycles int64
	// Links are the sizable FIFOs, in the accelerator's order.
	Links []SizedLink
	// Bytes, DescriptionBytes and Saved are the Links' totals.
	Bytes, DescriptionBytes, Saved int64
	// Candidates are the sets of depths evaluated, in order; Retimed,
	// Simulated and LoopChecked count them by Candidate.By.
	Candidates                      []Candidate
	Retimed, Simulated, LoopChecked int
	// Description is the sized accelerator: the description with every
	// sizable link's chosen depth in FIFO.Depths (WriteTOML writes it).
	Description Description
}

// SizedLink is one sizable FIFO's depth: chosen, in the description, and
// unbounded (the elements it carries in the run, at most 65,536).
type SizedLink struct {
	Name                               string
	Depth, DescriptionDepth, Unbounded int
	// ElementBytes is the on-chip size of one element; Bytes and
	// DescriptionBytes are the FIFO's at Depth and DescriptionDepth, and
	// Saved their difference (negative when the description's depth is too
	// shallow for the tolerance).
	ElementBytes, Bytes, DescriptionBytes, Saved int64
}

// Candidate is one set of depths the sizer evaluated.
type Candidate struct {
	// Depths are the sizable links' depths, in Sizing.Links order.
	Depths []int
	// Cycles is the run's latency, 0 when it cannot run: Err says why (a
	// loop too small for the MPCA's program, or a deadlock).
	Cycles int64
	Err    error
	By     Method
}

// Method is how the sizer found a candidate's latency.
type Method uint8

const (
	// ByRetiming: the recorded run, re-timed at the depths (exact).
	ByRetiming Method = iota
	// BySimulation: a run at the depths, because re-timing found a
	// decision by time that would change (this accelerator's units make
	// none) or the record is too large to re-time
	// (runtime.ErrRecordTooLarge: a model of 128 heads or more).
	BySimulation
	// ByLoopCheck: the depths cannot hold the MPCA's program (no run).
	ByLoopCheck
)

var methodNames = [...]string{"re-timing", "simulation", "loop check"}

func (m Method) String() string {
	if int(m) < len(methodNames) {
		return methodNames[m]
	}
	return fmt.Sprintf("Method(%d)", int(m))
}

// SizeFIFOs finds, for the workload images on a, the smallest depth of
// every sizable FIFO (LinkNames) at which the run takes at most
// 1+Tolerance times its latency with unbounded FIFOs, and what that saves
// on chip against a's description.
//
// It records one run with every sizable FIFO as deep as the elements it
// carries (runtime.Options.Record) and starts each FIFO at the smallest
// depth at which no send of that run waits, which is that run again. Then
// it lowers one FIFO at a time, the one holding the most bytes first, to
// the smallest depth within the bound with the others as chosen so far
// (sizer.lowest). A deeper FIFO never slows a run, so a depth that fails
// keeps failing as the others shrink: each chosen depth stays the
// smallest, one element less breaking the bound or the run. The result is
// minimal in that sense, not the least total bytes: the FIFOs sized first
// take what they need of the tolerance.
//
// Each candidate is checked against the loops of the MPCA's program (no
// run), then re-timed from the recorded run, which is exact
// (runtime.Record.Retime): no unit of this accelerator decides anything by
// time. Were one to, a candidate whose decision changes would be
// simulated, as is every candidate of a record too large to re-time. The chosen depths are simulated once more for Cycles. Every
// run is timing-only, even for an accelerator with weights: depths change
// only times, which in this model do not depend on values (the rule in the
// package doc), and the numerics would take most of each run.
func SizeFIFOs(ctx context.Context, a *Accelerator, images [][]float32, opt SizeOptions) (*Sizing, error) {
	tol := cmp.Or(opt.Tolerance, DefaultTolerance)
	if !(tol >= 0 && tol <= maxTolerance) {
		return nil, fmt.Errorf("size fifos: tolerance %v must be a fraction in [0, %d]", opt.Tolerance, maxTolerance)
	}
	if err := a.checkImages(images); err != nil {
		return nil, fmt.Errorf("size fifos: %w", err)
	}
	s, err := newSizer(ctx, a.timingOnly(), images)
	if err != nil {
		return nil, err
	}
	s.bound = int64(math.Floor(float64(s.unbounded) * (1 + tol)))
	depths := slices.Clone(s.start)
	order := make([]int, len(s.links))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(i, j int) int {
		return cmp.Compare(s.links[j].ElementBytes*int64(depths[j]), s.links[i].ElementBytes*int64(depths[i]))
	})
	cycles := s.unbounded // at depths
	for _, k := range order {
		if depths[k], cycles, err = s.lowest(ctx, depths, k, cycles); err != nil {
			return nil, err
		}
	}
	return s.result(ctx, depths, cycles, tol)
}

// lowest returns the smallest depth of link k within the bound, the others
// at depths, where the run takes cycles, and the latency there. It keeps a
// depth known to fail (lo, 0 at first) and one known to hold (hi). While
// the latency at lo is unknown (it did not run, or nothing failed yet), it
// bisects; then, as the latency falls smoothly with depth, it aims at the
// depth where the line between lo's and hi's latencies crosses the bound
// (regula falsi, with the Illinois rule: an end kept twice counts half as
// far from the bound, so the aim does not creep up from one side; and
// after three steps that did not halve the interval, one bisection).
func (s *sizer) lowest(ctx context.Context, depths []int, k int, cycles int64) (int, int64, error) {
	lo, hi := 0, depths[k]
	var loOver float64 // lo's cycles over the bound, as the aim weighs them; 0: unknown
	hiUnder := float64(s.bound - cycles)
	kept := 0 // >0: hi was kept that many times in a row; <0: lo
	slow := 0 // steps in a row that did not halve the interval
	for hi-lo > 1 {
		width := hi - lo
		mid := lo + width/2
		aim := loOver > 0 && slow < 3
		if aim {
			x := float64(lo) + float64(width)*loOver/(loOver+hiUnder)
			mid = min(max(int(math.Ceil(x)), lo+1), hi-1)
		}
		try := slices.Clone(depths)
		try[k] = mid
		c, err := s.evaluate(ctx, try)
		if err != nil {
			return 0, 0, err
		}
		if c.Err == nil && c.Cycles <= s.bound {
			hi, cycles, hiUnder = mid, c.Cycles, float64(s.bound-c.Cycles)
			if kept = min(kept, 0) - 1; kept <= -2 {
				loOver /= 2
			}
		} else {
			lo, loOver = mid, 0
			if c.Err == nil {
				loOver = float64(c.Cycles - s.bound)
			}
			if kept = max(kept, 0) + 1; kept >= 2 {
				hiUnder /= 2
			}
		}
		if slow++; !aim || 2*(hi-lo) <= width {
			slow = 0
		}
	}
	return hi, cycles, nil
}

// sizer is SizeFIFOs's state: the workload, the sizable links and the
// record it re-times.
type sizer struct {
	a         *Accelerator
	images    [][]float32
	links     []SizedLink
	index     []int // each sizable link's index among the run's FIFOs
	caps      []int // every FIFO's depth in the unbounded run
	start     []int // the sizable links' depths at which no send of that run waits
	unbounded int64
	bound     int64
	rec       *runtime.Record // the unbounded run's
	tried     []Candidate
}

// newSizer runs images on a with every sizable FIFO as deep as it may be,
// recorded.
func newSizer(ctx context.Context, a *Accelerator, images [][]float32) (*sizer, error) {
	names := LinkNames(a.desc.MPCA.H)
	open := a.desc.FIFO
	open.Depths = make(map[string]int, len(names))
	for _, n := range names {
		open.Depths[n] = maxDepth
	}
	res, err := a.runAt(ctx, open, images, true)
	if err != nil {
		return nil, fmt.Errorf("size fifos: %w", err)
	}
	rec := res.Stats.Record
	s := &sizer{a: a, images: images, caps: rec.Capacities(), unbounded: res.Cycles, rec: rec}
	free := rec.NoWaitCapacities()
	for i, l := range res.Links {
		if !l.Sizable {
			continue
		}
		depth := a.desc.FIFO.Depth(l.Name)
		s.links = append(s.links, SizedLink{Name: l.Name, DescriptionDepth: depth, ElementBytes: l.ElementBytes,
			Unbounded: int(min(max(res.Stats.FIFOs[i].Elements, 1), maxDepth))})
		s.index = append(s.index, i)
		s.start = append(s.start, min(free[i], s.caps[i]))
	}
	return s, nil
}

// runAt runs images on a with the FIFOs f, recorded if record is set.
func (a *Accelerator) runAt(ctx context.Context, f FIFOs, images [][]float32, record bool) (*SimResult, error) {
	b, err := a.withFIFO(f)
	if err != nil {
		return nil, err
	}
	return b.run(ctx, images, TraceOptions{}, nil, record)
}

// fifos is the description's FIFOs with the sizable links at depths.
func (s *sizer) fifos(depths []int) FIFOs {
	f := s.a.desc.FIFO
	f.Depths = make(map[string]int, len(depths))
	for i, l := range s.links {
		f.Depths[l.Name] = depths[i]
	}
	return f
}

// evaluate finds the latency at depths: by the loop check, by re-timing
// the record, else by a simulation.
func (s *sizer) evaluate(ctx context.Context, depths []int) (Candidate, error) {
	if err := ctx.Err(); err != nil {
		return Candidate{}, fmt.Errorf("size fifos: %w", err)
	}
	c := Candidate{Depths: depths}
	f := s.fifos(depths)
	if err := checkLoops(s.a.program, f); err != nil {
		c.Err, c.By = err, ByLoopCheck
		return s.keep(c), nil
	}
	caps := slices.Clone(s.caps)
	for i, k := range s.index {
		caps[k] = depths[i]
	}
	m, err := s.rec.Retime(caps)
	switch {
	case err == nil:
		c.Cycles = m
	case errors.Is(err, runtime.ErrDeadlock) || errors.Is(err, runtime.ErrReaderDone):
		c.Err = err
	case errors.Is(err, runtime.ErrChoiceChanged) || errors.Is(err, runtime.ErrRecordTooLarge):
		c.By = BySimulation
		res, err := s.a.runAt(ctx, f, s.images, false)
		if errors.Is(err, runtime.ErrDeadlock) {
			c.Err = err
		} else if err != nil {
			return Candidate{}, fmt.Errorf("size fifos: %w", err)
		} else {
			c.Cycles = res.Cycles
		}
	default:
		return Candidate{}, fmt.Errorf("size fifos: %w", err)
	}
	return s.keep(c), nil
}

func (s *sizer) keep(c Candidate) Candidate {
	s.tried = append(s.tried, c)
	return c
}

// result simulates depths, where the evaluation of the candidates found
// the run to take want cycles, and assembles the Sizing.
func (s *sizer) result(ctx context.Context, depths []int, want int64, tol float64) (*Sizing, error) {
	f := s.fifos(depths)
	b, err := s.a.withFIFO(f)
	if err != nil {
		return nil, fmt.Errorf("size fifos: %w", err)
	}
	res, err := b.Run(ctx, s.images)
	if err != nil {
		return nil, fmt.Errorf("size fifos: the chosen depths: %w", err)
	}
	if res.Cycles != want {
		return nil, fmt.Errorf("size fifos: the chosen depths run %d cycles, their evaluation said %d", res.Cycles, want)
	}
	d := s.a.desc
	d.FIFO = f
	z := &Sizing{Model: s.a.name, Topology: d.Name, Images: len(s.images), Tolerance: tol, Unbounded: s.unbounded,
		Bound: s.bound, Cycles: res.Cycles, Candidates: s.tried, Description: d}
	for i, l := range s.links {
		l.Depth = depths[i]
		l.Bytes, l.DescriptionBytes = int64(l.Depth)*l.ElementBytes, int64(l.DescriptionDepth)*l.ElementBytes
		l.Saved = l.DescriptionBytes - l.Bytes
		z.Links = append(z.Links, l)
		z.Bytes += l.Bytes
		z.DescriptionBytes += l.DescriptionBytes
		z.Saved += l.Saved
	}
	for _, c := range s.tried {
		switch c.By {
		case ByRetiming:
			z.Retimed++
		case BySimulation:
			z.Simulated++
		case ByLoopCheck:
			z.LoopChecked++
		}
	}
	return z, nil
}

// WriteText writes the sizing as a table, one row per FIFO as in an HLS
// tool's FIFO depth report, and how the depths were found.
func (z *Sizing) WriteText(w io.Writer) error {
	var b strings.Builder
	pct := func(c int64) float64 { return 100 * float64(c-z.Unbounded) / float64(max(z.Unbounded, 1)) }
	fmt.Fprintf(&b, "FIFO sizing: %s on %s, %d image(s), within %g%% of unbounded FIFOs\n", z.Model, z.Topology, z.Images, 100*z.Tolerance)
	fmt.Fprintf(&b, "latency: unbounded %d cycles, bound %d, sized %d (%+.2f%%, simulated)\n\n", z.Unbounded, z.Bound, z.Cycles, pct(z.Cycles))
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "fifo\tdepth\twas\tunbounded\telement B\tbytes\twas bytes\tsaved\t\n")
	for _, l := range z.Links {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t\n", l.Name, l.Depth, l.DescriptionDepth, l.Unbounded, l.ElementBytes, l.Bytes, l.DescriptionBytes, l.Saved)
	}
	saved := 0.0
	if z.DescriptionBytes > 0 {
		saved = 100 * float64(z.Saved) / float64(z.DescriptionBytes)
	}
	fmt.Fprintf(tw, "total\t\t\t\t\t%d\t%d\t%d\t\n", z.Bytes, z.DescriptionBytes, z.Saved)
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(&b, "\nsaved %.1f%% of the description's FIFO bytes\n", saved)
	fmt.Fprintf(&b, "candidates: %d (%d re-timed, %d simulated, %d refused by the loop check)\n",
		len(z.Candidates), z.Retimed, z.Simulated, z.LoopChecked)
	_, err := io.WriteString(w, b.String())
	return err
}
