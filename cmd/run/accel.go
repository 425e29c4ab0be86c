package main

import (
	"context"
	"fmt"

	"vitflow/internal/safefile"
	"vitflow/report"
	"vitflow/topology"
)

// runAccelerator runs every image through the simulated accelerator and
// fills in the simulation's part of the report.
// A non-nil trace receives the Perfetto trace and is committed on success.
func runAccelerator(rep *report.Report, desc topology.Description, m *model, in *inputs, trace *safefile.File) error {
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
		if err := trace.Commit(); err != nil {
			return fmt.Errorf("-trace: %w", err)
		}
	}
	report.AddSimulation(rep, res)
	return nil
}
