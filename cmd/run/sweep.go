package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"

	"vitflow/internal/safefile"
	"vitflow/models"
	"vitflow/report"
	"vitflow/sweep"
)

// sweepOptions are the parsed command line of run sweep.
type sweepOptions struct {
	options
	axes  []sweep.Axis
	out   string
	jobs  int
	force bool
}

// Default images per sweep point: enough MNIST test images for an accuracy
// that tells points apart, and one image of a model without labels, whose
// timing barely depends on the image.
const (
	sweepMNISTImages = 100
	sweepOtherImages = 1
)

func parseSweepFlags(args []string) (*sweepOptions, error) {
	o := &sweepOptions{options: options{set: map[string]bool{}}}
	fs := modelFlagSet("run sweep", &o.options)
	fs.IntVar(&o.images, "images", 0, "images per point")
	fs.Func("set", "an axis KEY=V1,V2 or KEY=LO:HI:STEP (repeatable)", func(s string) error {
		a, err := sweep.ParseAxis(s)
		o.axes = append(o.axes, a)
		return err
	})
	fs.StringVar(&o.out, "out", "sweep-out", "output folder")
	fs.IntVar(&o.jobs, "jobs", 0, "points simulated at once")
	fs.BoolVar(&o.force, "force", false, "allow more than the point limit")
	fs.BoolVar(&o.timingOnly, "timing-only", false, "skip the numerics that cannot change timing")
	fs.BoolVar(&o.json, "json", false, "JSON sweep on stdout")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, err
		}
		return nil, usagef("sweep: %v (see sweep -h)", err)
	}
	if fs.NArg() > 0 {
		return nil, usagef("sweep: unexpected argument %q (axes go after -set; see sweep -h)", fs.Arg(0))
	}
	fs.Visit(func(f *flag.Flag) { o.set[f.Name] = true })
	return o, o.check()
}

// check validates what can be checked before loading anything.
func (o *sweepOptions) check() error {
	cfg, err := o.checkModel()
	if err != nil {
		return err
	}
	// A sweep prunes by magnitude at every point: by default it starts
	// from the dense embedded model, not one trained with its own masks.
	if !o.set["variant"] && o.weights == "" && o.model == models.Model {
		o.variant = "dense"
		o.set["variant"] = true
	}
	if err := o.checkVariant(); err != nil {
		return err
	}
	// Seeded random weights predict nothing worth computing: time them
	// only, unless -timing-only=false asks for the numerics anyway.
	if !o.set["timing-only"] && o.weights == "" && (o.variant == "" || o.variant == randomVariant) {
		o.timingOnly = true
	}
	if !o.set["images"] {
		o.images = sweepOtherImages
		if cfg.InChans == 1 && cfg.ImageSize == 28 {
			o.images = sweepMNISTImages
		}
	}
	if o.images < 1 || o.images > maxImages {
		return usagef("-images %d: must be in 1..%d", o.images, maxImages)
	}
	if o.jobs < 0 {
		return usagef("-jobs %d: must be positive (0: one per core)", o.jobs)
	}
	if o.out == "" {
		return usagef("-out: name an output folder")
	}
	return nil
}

// runSweep is run sweep: it plans the whole sweep (every bad setting fails
// here, before anything runs), runs it into -out with a progress bar, and
// writes the summary, the plots and the HTML report.
func runSweep(args []string, stdout, stderr io.Writer) error {
	o, err := parseSweepFlags(args)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(stdout, sweepUsage)
		return nil
	}
	if err != nil {
		return err
	}
	if err := o.checkFiles(); err != nil {
		return err
	}
	desc, err := loadTopology(&o.options)
	if err != nil {
		return err
	}
	m, _, _, err := loadWeights(&o.options)
	if err != nil {
		return err
	}
	in, err := loadInputs(&o.options, m.cfg)
	if err != nil {
		return err
	}
	id, err := weightsID(&o.options)
	if err != nil {
		return err
	}
	spec := &sweep.Spec{
		Weights: m.weights, WeightsID: id, Base: desc,
		Pruning: sweep.PruningSettings{Block: o.block, Density: o.density, Keep: o.keep, TDLayers: o.td},
		Axes:    o.axes, Images: in.count, Image: in.load, Labels: in.labels, InputsID: in.desc,
		TimingOnly: o.timingOnly, Force: o.force,
	}
	points, err := sweep.Plan(spec)
	if err != nil {
		return usageError{err}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	prog := newProgress(stderr, isTerminal(stderr), len(points), "points", progressDelay)
	finished := 0 // Done's calls do not overlap
	sw, err := sweep.Run(ctx, spec, points, sweep.Options{
		Dir: o.out, Jobs: o.jobs,
		Done: func(done, _ int, _ report.SweepRow) { finished = done; prog.update(done, 0) },
	})
	prog.finish()
	if ctx.Err() != nil {
		return fmt.Errorf("sweep interrupted with %d of %d points done: their rows are in %s; run the same command again to finish", finished, len(points), o.out)
	}
	if err != nil {
		return err
	}
	if err := writeSweepFiles(o.out, sw); err != nil {
		return err
	}
	if o.json {
		return writeJSON(stdout, sw)
	}
	if err := sw.WriteText(stdout); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "\nwrote %s, %s, sweep.json, sweep.html and the plots (SVG and PNG) to %s\n", sweep.CSVFile, sweep.JSONFile, o.out)
	return nil
}

// writeSweepFiles writes sweep.json, sweep.html and every plot as SVG and PNG.
func writeSweepFiles(dir string, sw *report.Sweep) error {
	out := func(name string, write func(io.Writer) error) error {
		f, err := safefile.Create(filepath.Join(dir, name))
		if err != nil {
			return err
		}
		return writeOut(name, f, write)
	}
	if err := out("sweep.json", func(w io.Writer) error { return writeJSON(w, sw) }); err != nil {
		return err
	}
	if err := out("sweep.html", sw.WriteHTML); err != nil {
		return err
	}
	plots, err := sw.Plots()
	if errors.Is(err, report.ErrNothingToPlot) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, p := range plots {
		for _, r := range []struct {
			ext    string
			render func() ([]byte, error)
		}{{".svg", p.SVG}, {".png", p.PNG}} {
			data, err := r.render()
			if err != nil {
				return fmt.Errorf("plot %s: %w", p.Name, err)
			}
			if err := out(p.Name+r.ext, func(w io.Writer) error { _, err := w.Write(data); return err }); err != nil {
				return err
			}
		}
	}
	return nil
}

// weightsID names the weights in the points' hashes: a file by its
// content's digest, so that a changed file is a new sweep.
func weightsID(o *options) (string, error) {
	switch {
	case o.weights != "":
		f, err := os.Open(o.weights)
		if err != nil {
			return "", err
		}
		defer f.Close()
		h := sha256.New()
		if _, err := io.Copy(h, f); err != nil {
			return "", fmt.Errorf("weights %q: %w", o.weights, err)
		}
		return "file sha256:" + hex.EncodeToString(h.Sum(nil)), nil
	case o.variant == "" || o.variant == randomVariant:
		return fmt.Sprintf("random seed %d", o.seed), nil
	default:
		return "embedded " + o.variant, nil
	}
}

const sweepUsage = `Usage: go run ./cmd/run sweep [flags] -set KEY=VALUES [-set ...]

Runs every combination of the -set axes, each point on its own simulated
accelerator, in parallel on every core. Rows go to -out as points finish:
points.csv and points.jsonl (settings, cycles, latency, throughput, PE
utilisation, the critical path's largest cause, accuracy where labels
exist, MACs, parameters and estimated DSPs, block RAMs, UltraRAMs and
on-chip bytes). Then sweep.json, sweep.html and the plots (accuracy and
on-chip memory against latency with their Pareto fronts, latency against
each axis) as SVG and PNG. Interrupt it with Ctrl-C and run the same command
again: the finished points are kept and only the others run.

Axes
  -set KEY=V1,V2,...   values of one key; KEY=LO:HI:STEP is a range
                       (inclusive). Keys: any topology key (mpca.h,
                       fifo.activation_depth, memory.bandwidth_bytes_per_cycle,
                       balance, fifo.depths.mpca->gelu, ...; -print-topology
                       lists them) and the pruning keys block, density, keep
                       and td (layers written 2/6/9, or none)
                         e.g. -set mpca.h=2,4,8 -set density=0.25:1:0.25
Fixed settings (for what no axis sweeps)
  -model, -weights, -variant, -seed, -topology, -block, -density, -keep, -td
                       as for a run (see -h); a sweep prunes by magnitude at
                       each point's block and density, and for mnist-tiny
                       starts from the dense embedded model
  -images N            images per point (default 100 MNIST test images for
                       mnist-tiny, one random image otherwise)
  -timing-only         skip the numerics that cannot change timing (no
                       predictions, no accuracy); the default with seeded
                       random weights (-timing-only=false computes them)
Running
  -out DIR             output folder (default sweep-out)
  -jobs N              points simulated at once (default: one per core)
  -force               allow more than 1000 points (up to 100000)
  -json                print the sweep as JSON instead of the summary
`
