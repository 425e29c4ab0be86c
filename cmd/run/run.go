package main

import (
	"fmt"
	"io"

	"vitflow/internal/safefile"
	"vitflow/kernels"
	"vitflow/models"
	"vitflow/report"
	"vitflow/topology"
	"vitflow/vit"
)

// execute loads everything opt names, runs it and writes the report.
// Notes (flags with no effect, an accuracy no better than a guess) go to
// stderr, one line each.
func execute(opt *options, stdout, stderr io.Writer) error {
	if err := opt.checkFiles(); err != nil {
		return err
	}
	if opt.compare {
		return compareReports(opt, stdout)
	}
	// Created first, so that an unwritable path fails before the run.
	trace, err := createOutput("-trace", opt.trace)
	if err != nil {
		return err
	}
	defer trace.Abort()
	desc, err := loadTopology(opt)
	if err != nil {
		return err
	}
	if opt.printTopo {
		if opt.json {
			return writeTopologyJSON(stdout, desc)
		}
		return desc.WriteTOML(stdout)
	}
	svg, err := createOutput("-svg", opt.svg)
	if err != nil {
		return err
	}
	defer svg.Abort()
	page, err := createOutput("-html", opt.html)
	if err != nil {
		return err
	}
	defer page.Abort()
	sized, err := createOutput("-size-out", opt.sizeOut)
	if err != nil {
		return err
	}
	defer sized.Abort()
	m, err := loadModel(opt)
	if err != nil {
		return err
	}
	in, err := loadInputs(opt, m.cfg)
	if err != nil {
		return err
	}
	if opt.sizeFIFOs {
		return sizeFIFOs(opt, desc, m, in, sized, stdout)
	}
	rep, err := newReport(opt, desc, m, in)
	if err != nil {
		return err
	}
	prog := newProgress(stderr, isTerminal(stderr), in.count, "images", progressDelay)
	if opt.reference {
		err = runReference(rep, desc, m, in, opt.logits, prog)
	} else {
		err = runStreamed(rep, desc, m, in, trace, opt, prog)
	}
	prog.finish()
	if err != nil {
		return err
	}
	if !opt.logits {
		rep.Logits = nil
	}
	shown := textSafe(rep)
	if svg != nil {
		if err := writeOut("-svg", svg, shown.WriteSVG); err != nil {
			return err
		}
	}
	if page != nil {
		if err := writeOut("-html", page, shown.WriteHTML); err != nil {
			return err
		}
	}
	if opt.json {
		err = writeJSON(stdout, rep)
	} else {
		err = textSafe(rep).WriteText(stdout)
	}
	if err != nil {
		return err
	}
	for _, note := range notes(opt, m, in, rep) {
		fmt.Fprintf(stderr, "run: %s\n", note)
	}
	return nil
}

// createOutput starts writing the output file that flag names at path, or
// returns nil (whose Abort does nothing) when the flag is not given.
func createOutput(flag, path string) (*safefile.File, error) {
	if path == "" {
		return nil, nil
	}
	f, err := safefile.Create(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", flag, err)
	}
	return f, nil
}

// newReport fills in what is known before anything runs: the setup and the
// operation counts.
func newReport(opt *options, desc topology.Description, m *model, in *inputs) (*report.Report, error) {
	rep := &report.Report{
		Model:     m.cfg.Name,
		Weights:   m.weightsDesc,
		Seed:      opt.seed,
		Pruning:   m.pruningDesc,
		Topology:  desc.Name,
		Fidelity:  string(desc.Fidelity),
		Balance:   string(desc.Balance),
		ClockMHz:  desc.ClockMHz,
		Reference: opt.reference,
		Inputs:    in.desc,
		Images:    in.count,
		Labels:    in.labels,
	}
	if m.variant != nil {
		rep.Variant = m.variant.Variant
		rep.VariantAbout = models.Describe(m.variant.Variant)
		acc := m.variant.TestAccuracy
		rep.VariantTestAccuracy = &acc
	}
	dense, err := vit.CountMACs(m.cfg, nil)
	if err != nil {
		return nil, err
	}
	pruned, err := vit.CountMACs(m.cfg, m.pruning)
	if err != nil {
		return nil, err
	}
	rep.MACs = report.Counts{Dense: dense.Linear, Pruned: pruned.Linear}
	rep.AttentionMACs = report.Counts{Dense: dense.Attention, Pruned: pruned.Attention}
	if rep.Params.Dense, err = vit.CountParams(m.cfg, nil); err != nil {
		return nil, err
	}
	if rep.Params.Pruned, err = vit.CountParams(m.cfg, m.pruning); err != nil {
		return nil, err
	}
	return rep, nil
}

// runReference classifies every image with the golden forward pass and
// reports the analytical estimate per layer; a simulated run gets the
// estimate from the simulation instead.
func runReference(rep *report.Report, desc topology.Description, m *model, in *inputs, keepLogits bool, prog *progress) error {
	layers, err := topology.MaskPruning(m.cfg, m.pruning)
	if err != nil {
		return err
	}
	est, err := topology.Estimate(topology.EstimateInput{
		Model: m.cfg, Geometry: desc.MPCA, Block: m.pruning.Block,
		Layers: layers, Keep: m.pruning.Keep, TDLayers: m.pruning.TDLayers,
	})
	if err != nil {
		return err
	}
	rep.EstimatorCyclesPerImage = est.Cycles
	rep.EstimatorUSPerImage = topology.Microseconds(est.Cycles, desc.ClockMHz)
	for _, l := range est.Layers {
		rl := report.Layer{Index: l.Index, TokensIn: l.TokensIn, TokensOut: l.TokensOut,
			HeadsKept: l.HeadsKept, EstimatorCycles: l.Cycles}
		for _, o := range l.Ops {
			rl.Ops = append(rl.Ops, report.Op{Name: o.Op.String(), Kind: report.KindMPCA, EstimatorCycles: o.Cycles})
		}
		rep.Layers = append(rep.Layers, rl)
	}
	c, err := m.weights.Compact(m.pruning)
	if err != nil {
		return err
	}
	// One image at a time: memory does not grow with the image count
	// (but for the logits, kept only when they are reported).
	for i := range in.count {
		px, err := in.load(i)
		if err != nil {
			return err
		}
		logits, info, err := c.Forward(px)
		if err != nil {
			return fmt.Errorf("image %d: %w", i, err)
		}
		if i == 0 {
			for l, li := range info.Layers {
				rep.Layers[l].TokensIn, rep.Layers[l].TokensOut = li.TokensIn, li.TokensOut
			}
		}
		if keepLogits {
			rep.Logits = append(rep.Logits, logits)
		}
		rep.Top1 = append(rep.Top1, kernels.Argmax(logits))
		prog.update(i+1, 0)
	}
	rep.SetAccuracy()
	return nil
}
