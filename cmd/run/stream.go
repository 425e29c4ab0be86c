package main

import (
	"context"
	"fmt"

	"vitflow/internal/safefile"
	"vitflow/report"
	"vitflow/topology"
)

// chunkImages is the most images one simulated run holds (see
// topology.DefaultChunk).
const chunkImages = topology.DefaultChunk

// runStreamed runs in's images through the simulated accelerator, built
// once, in chunks of chunkImages, and fills in the simulation's part of the
// report. A non-nil trace (one chunk at most) receives the Perfetto trace
// that opt.traceOpt describes and is committed on success. Logits are kept
// only with -logits (the report prints them); -timing-only builds the
// accelerator from the masks alone and reads no pixel. prog hears of each
// chunk done.
func runStreamed(rep *report.Report, desc topology.Description, m *model, in *inputs, trace *safefile.File, opt *options, prog *progress) error {
	image := in.load
	if opt.timingOnly {
		image = nil // it reads no pixel
	}
	acc, err := topology.NewAcceleratorFor(m.weights, m.pruning, m.pruning.Block, desc, opt.timingOnly)
	if err != nil {
		return err
	}
	traceOpt, keepLogits := opt.traceOpt, opt.logits
	if trace != nil {
		traceOpt.W = trace
	}
	all, err := acc.RunChunks(context.Background(), topology.Chunks{
		Images: in.count,
		Image:  image,
		Trace:  traceOpt,
		// The report shows image 0's layers only, and the logits when asked.
		Thin: func(res *topology.SimResult, first bool) {
			for i := range res.Images {
				if !first || i > 0 {
					res.Images[i].Layers = nil
				}
				if !keepLogits {
					res.Images[i].Logits = nil
				}
			}
		},
		Done: prog.update,
	})
	if err != nil {
		return err
	}
	if trace != nil {
		if err := trace.Commit(); err != nil {
			return fmt.Errorf("-trace: %w", err)
		}
	}
	return report.AddSimulation(rep, all)
}
