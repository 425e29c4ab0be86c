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
	report.AddSimulation(rep, res)
	return nil
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
