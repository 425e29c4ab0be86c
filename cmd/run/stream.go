package main

import (
	"context"
	"fmt"

	"vitflow/internal/safefile"
	"vitflow/report"
	"vitflow/topology"
)

// chunkImages is the most images one simulated run holds. A simulation keeps
// every image's records (each unit's clock history for the critical path,
// the tokens kept, the ops' spans), a few MB per DeiT image, so a run of
// more images is simulated in chunks of chunkImages, one after another on
// the one built accelerator, and the chunks' results are merged: memory
// stays that of one chunk whatever the image count. Between chunks the
// accelerator drains (the next chunk's first image cannot overlap the last
// one's tail), which adds at most one image's pipeline fill per chunk.
const chunkImages = 16

// runStreamed runs in's images through the simulated accelerator, built
// once, in chunks of chunkImages, and fills in the simulation's part of the
// report. A non-nil trace (one chunk at most) receives the Perfetto trace
// that traceOpt describes and is committed on success. Logits are kept
// only when keepLogits (the report prints them). prog hears of each chunk done.
func runStreamed(rep *report.Report, desc topology.Description, m *model, in *inputs, trace *safefile.File, traceOpt topology.TraceOptions, keepLogits bool, prog *progress) error {
	if trace != nil && in.count > chunkImages {
		// Checked with the flags; a trace is one run's.
		return fmt.Errorf("-trace records at most %d images", chunkImages)
	}
	acc, err := topology.NewAccelerator(m.weights, m.pruning, m.pruning.Block, desc)
	if err != nil {
		return err
	}
	if trace != nil {
		traceOpt.W = trace
	}
	var all *topology.SimResult
	for start := 0; start < in.count; start += chunkImages {
		n := min(chunkImages, in.count-start)
		px, err := in.chunk(start, n)
		if err != nil {
			return err
		}
		res, err := acc.RunTraced(context.Background(), px, traceOpt)
		if err != nil {
			if in.count > chunkImages {
				return fmt.Errorf("images %d-%d: %w", start, start+n-1, err)
			}
			return err
		}
		// The report shows image 0's layers only, and the logits when asked.
		for i := range res.Images {
			if all != nil || i > 0 {
				res.Images[i].Layers = nil
			}
			if !keepLogits {
				res.Images[i].Logits = nil
			}
		}
		if all == nil {
			all = res
		} else {
			all.Append(res)
		}
		prog.update(start+n, all.Cycles)
	}
	if trace != nil {
		if err := trace.Commit(); err != nil {
			return fmt.Errorf("-trace: %w", err)
		}
	}
	return report.AddSimulation(rep, all)
}
