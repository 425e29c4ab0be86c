package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"

	"vitflow/report"
	"vitflow/topology"
)

// runAccelerator runs every image through the simulated accelerator and
// fills in the simulation's part of the report.
// A non-nil trace receives the Perfetto trace and is committed on success.
func runAccelerator(rep *report.Report, desc topology.Description, m *model, in *inputs, trace *atomicFile) error {
	sim := topology.SimInput{
		Weights:    m.weights,
		Pruning:    m.pruning,
		DenseBlock: m.pruning.Block,
		Desc:       desc,
		Images:     in.pixels,
	}
	if trace != nil {
		sim.Trace = trace
	}
	res, err := topology.Simulate(context.Background(), sim)
	if err != nil {
		return err
	}
	if trace != nil {
		if err := trace.commit(); err != nil {
			return fmt.Errorf("-trace: %w", err)
		}
	}
	fillSimulation(rep, res)
	return nil
}

// fillSimulation copies a simulation's results into rep.
func fillSimulation(rep *report.Report, res *topology.SimResult) {
	for _, img := range res.Images {
		rep.Top1 = append(rep.Top1, img.Top1)
		rep.Logits = append(rep.Logits, img.Logits)
	}
	rep.SetAccuracy()
	clock := res.Desc.ClockMHz
	rep.Balance = string(res.Desc.Balance)
	rep.CyclesTotal = res.Cycles
	rep.CyclesPerImage = res.CyclesPerImage
	rep.LatencyUSPerImage = res.CyclesPerImage / clock
	if res.CyclesPerImage > 0 {
		rep.ImagesPerSecond = clock * 1e6 / res.CyclesPerImage
	}
	rep.EstimatorCyclesPerImage = res.Estimate.Cycles
	rep.EstimatorUSPerImage = topology.Microseconds(res.Estimate.Cycles, clock)

	img := res.Images[0]
	rep.EmbedCycles, rep.ClassifyCycles = img.Embed, img.Classify
	loads := map[topology.Policy]*topology.PELoad{}
	var policies []topology.Policy
	for _, l := range img.Layers {
		rl := report.Layer{Index: l.Index, TokensIn: l.TokensIn, TokensOut: l.TokensOut, HeadsKept: l.HeadsKept,
			Cycles: l.Cycles, EstimatorCycles: l.Estimate}
		var layerMax, layerMean float64
		for _, o := range l.Ops {
			rl.Ops = append(rl.Ops, report.Op{Name: o.Op.String(), Kind: report.KindMPCA,
				Cycles: o.Cycles, EstimatorCycles: o.Estimate, Compute: o.Compute, Memory: o.Memory, Latency: o.Latency,
				PEImbalance: o.Load.Imbalance()})
			layerMax += o.Load.Max
			layerMean += o.Load.Mean
			for _, pl := range o.Loads {
				sum, ok := loads[pl.Policy]
				if !ok {
					sum = &topology.PELoad{Policy: pl.Policy}
					loads[pl.Policy] = sum
					policies = append(policies, pl.Policy)
				}
				sum.Max += pl.Max
				sum.Mean += pl.Mean
			}
		}
		rl.PEImbalance = topology.PELoad{Max: layerMax, Mean: layerMean}.Imbalance()
		for _, s := range l.Stages {
			kind := report.KindSFU
			if s.Name == "tokendrop" {
				kind = report.KindTokenDrop
			}
			rl.Ops = append(rl.Ops, report.Op{Name: s.Name, Kind: kind, Cycles: s.Cycles, Compute: s.Work, Latency: s.Latency})
		}
		rep.Layers = append(rep.Layers, rl)
	}
	for _, p := range policies {
		sum := loads[p]
		rep.Imbalance = append(rep.Imbalance, report.Imbalance{Policy: string(p), MaxOverMean: sum.Imbalance(),
			ComputeCycles: int64(sum.Max + 0.5), Used: p == res.Desc.Balance})
	}

	n := float64(len(res.Images))
	g := res.Gap
	for _, c := range []struct {
		cause  string
		cycles int64
	}{
		{"PE load imbalance", g.Imbalance},
		{"waiting for weights (memory)", g.Memory},
		{"special-function units", g.SFU},
		{"token dropping module", g.TokenDrop},
		{"patch embedding and classifier", g.EmbedClassify},
		{"FIFO latency between units", g.Latency},
	} {
		rep.Gap = append(rep.Gap, report.GapCause{Cause: c.cause, Cycles: c.cycles, PerImage: float64(c.cycles) / n})
	}
	rep.Units = report.Units(res.Stats)
	rep.FIFOs = report.FIFOs(res.Stats)
}

// atomicFile is written under a temporary name and renamed into place on
// commit, so the named file never holds a partial trace.
type atomicFile struct {
	*bufio.Writer
	f    *os.File
	path string
	done bool
}

func createAtomic(path string) (*atomicFile, error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return nil, err
	}
	return &atomicFile{Writer: bufio.NewWriterSize(f, 1<<16), f: f, path: path}, nil
}

func (a *atomicFile) commit() error {
	a.done = true
	err := a.Flush()
	if err == nil {
		// CreateTemp makes the file private; a trace is an ordinary output.
		err = a.f.Chmod(0o644)
	}
	if cerr := a.f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(a.f.Name(), a.path)
	}
	if err != nil {
		os.Remove(a.f.Name())
	}
	return err
}

// abort removes the temporary file unless commit ran.
func (a *atomicFile) abort() {
	if !a.done {
		a.f.Close()
		os.Remove(a.f.Name())
	}
}
