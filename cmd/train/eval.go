package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"time"

	"vitflow/prune"
	"vitflow/vit"
)

// Metadata keys of the saved models (the pruning itself is under prune.MetaPruning).
const (
	metaCommand  = "vitflow.train.command"
	metaWallTime = "vitflow.train.wall_seconds"
	metaCPUTime  = "vitflow.train.cpu_seconds"
	metaTestSize = "vitflow.test_images" // how many test images the accuracy is measured on
)

// result is a model's evaluation on the test set with the reference forward pass.
type result struct {
	p                   *vit.Pruning
	correct, n          int
	subsetCorrect       int // on the first prune.SubsetImages test images
	macs, denseMACs     vit.MACs
	params, denseParams int64
}

func (r result) String() string {
	return fmt.Sprintf("test accuracy %.2f%% (%d/%d), first %d: %d correct; MACs %d linear (%.2fx less than dense), %d with attention (%.2fx less); params %d (%.2fx compression)",
		100*float64(r.correct)/float64(r.n), r.correct, r.n, prune.SubsetImages, r.subsetCorrect,
		r.macs.Linear, float64(r.denseMACs.Linear)/float64(r.macs.Linear),
		r.macs.Total(), float64(r.denseMACs.Total())/float64(r.macs.Total()),
		r.params, float64(r.denseParams)/float64(r.params))
}

// evaluate runs the reference forward pass on every test image, in batches
// (prune.ReferenceCorrect) on every core.
func evaluate(w *vit.Weights, p *vit.Pruning, test *prune.Dataset) (result, error) {
	c, err := w.Compact(p)
	if err != nil {
		return result{}, fmt.Errorf("evaluate: %w", err)
	}
	r := result{p: c.Pruning, n: len(test.Images)}
	cfg := w.Config
	if r.macs, err = vit.CountMACs(cfg, c.Pruning); err != nil {
		return result{}, err
	}
	if r.denseMACs, err = vit.CountMACs(cfg, nil); err != nil {
		return result{}, err
	}
	if r.params, err = vit.CountParams(cfg, c.Pruning); err != nil {
		return result{}, err
	}
	if r.denseParams, err = vit.CountParams(cfg, nil); err != nil {
		return result{}, err
	}
	right, err := prune.ReferenceCorrect(c, test)
	if err != nil {
		return result{}, err
	}
	for i, ok := range right {
		if ok {
			r.correct++
			if i < prune.SubsetImages {
				r.subsetCorrect++
			}
		}
	}
	return r, nil
}

func (r result) metadata(command string, wall, cpu time.Duration) (map[string]string, error) {
	enc, err := vit.EncodePruning(r.p)
	if err != nil {
		return nil, err
	}
	return map[string]string{
		prune.MetaPruning:       enc,
		prune.MetaTestAccuracy:  strconv.FormatFloat(float64(r.correct)/float64(r.n), 'f', 4, 64),
		prune.MetaTestCorrect:   strconv.Itoa(r.correct),
		prune.MetaSubsetCorrect: strconv.Itoa(r.subsetCorrect),
		metaTestSize:            strconv.Itoa(r.n),
		metaCommand:             command,
		metaWallTime:            strconv.Itoa(int(wall.Seconds())),
		metaCPUTime:             strconv.Itoa(int(cpu.Seconds())),
	}, nil
}

func evalCmd(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("train eval", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("model", "", "safetensors model to evaluate (required)")
	testImages := fs.Int("test-images", 0, "evaluate on only the first N test images (0 = all 10,000)")
	preset := fs.String("preset", "mnist-tiny", "model preset")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err}
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q", fs.Arg(0))
	}
	if *path == "" {
		return usagef("-model is required")
	}
	if *testImages < 0 {
		return usagef("-test-images %d is negative", *testImages)
	}
	cfg, err := vit.Preset(*preset)
	if err != nil {
		return usageError{err}
	}
	w, meta, err := vit.LoadWeights(*path, cfg)
	if err != nil {
		return err
	}
	var p *vit.Pruning
	if s, ok := meta[prune.MetaPruning]; ok {
		if p, err = vit.DecodePruning(s, cfg); err != nil {
			return fmt.Errorf("model %q: %w", *path, err)
		}
	}
	testSet, err := vit.LoadMNISTTest()
	if err != nil {
		return err
	}
	r, err := evaluate(w, p, prune.MNIST(testSet, cfg, *testImages))
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s: %s\n", *path, r)
	if note := prune.LowAccuracyNote(r.correct, r.n, cfg.NumClasses, false); note != "" {
		fmt.Fprintln(stderr, note)
	}
	return nil
}
