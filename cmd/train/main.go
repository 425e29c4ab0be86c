// Command train trains the mnist-tiny ViT on MNIST: densely from scratch,
// by simultaneous fine-pruning from a dense model (learned block and neuron
// masks, token dropping and distillation, the paper), or one-shot by
// weight magnitude; and it evaluates a saved model on the 10,000 test images.
//
//	train dense   -out models/dense.safetensors [-from an earlier dense model to continue]
//	train prune   -from models/dense.safetensors -density 0.5 -keep 0.5 -td 0,1,2 -out models/d50-k50.safetensors
//	train oneshot -from models/dense.safetensors -density 0.5 -keep 0.5 -td 0,1,2 -out /tmp/oneshot.safetensors
//	train eval    -model models/d50-k50.safetensors
//
// Progress goes to stderr. Training writes a checkpoint (-checkpoint, default
// OUT.ckpt) atomically after every epoch; rerun the same command with -resume
// to continue after an interruption. Bad usage exits 2, a failed run 1.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"vitflow/prune"
	"vitflow/vit"
)

func main() {
	err := run(os.Args[1:], os.Stdout, os.Stderr)
	var u usageError
	switch {
	case err == nil:
	case errors.Is(err, flag.ErrHelp):
		os.Exit(0)
	case errors.As(err, &u):
		fmt.Fprintln(os.Stderr, "train:", err)
		os.Exit(2)
	default:
		fmt.Fprintln(os.Stderr, "train:", err)
		os.Exit(1)
	}
}

// usageError is bad command-line usage (exit status 2).
type usageError struct{ error }

func usagef(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }

const usage = `usage: train dense|prune|oneshot|eval [flags]   (train COMMAND -h lists the flags)`

func run(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return usagef("%s", usage)
	}
	switch args[0] {
	case "dense", "prune", "oneshot":
		return train(args[0], args[1:], stdout, stderr)
	case "eval":
		return evalCmd(args[1:], stdout, stderr)
	case "-h", "-help", "--help", "help":
		fmt.Fprintln(stderr, usage)
		return flag.ErrHelp
	}
	return usagef("unknown command %q; %s", args[0], usage)
}

// trainFlags are the settings of the dense, prune and oneshot commands.
type trainFlags struct {
	model, out, from, checkpoint  string
	resume, noDistill, fixedMasks bool
	trainImages, testImages       int
	td                            string
	opt                           prune.Options
}

func parseTrainFlags(cmd string, args []string, stderr io.Writer) (*trainFlags, error) {
	f := &trainFlags{opt: prune.DenseOptions()}
	if cmd != "dense" {
		f.opt = prune.PruneOptions(0.5, 0.5, []int{0, 1, 2})
	}
	fs := flag.NewFlagSet("train "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	o := &f.opt
	fs.StringVar(&f.model, "model", "mnist-tiny", "model preset")
	fs.StringVar(&f.out, "out", "", "safetensors file to write (required)")
	if cmd == "dense" {
		fs.StringVar(&f.from, "from", "", "continue training this dense safetensors model instead of a fresh initialisation")
	} else {
		fs.StringVar(&f.from, "from", "", "dense safetensors model to prune (required)")
		fs.Float64Var(&o.Density, "density", o.Density, "kept fraction of Q/K/V/Proj blocks and MLP neurons per matrix")
		fs.IntVar(&o.Block, "block", o.Block, "block side b")
		fs.Float64Var(&o.Keep, "keep", o.Keep, "token keep rate k")
		fs.StringVar(&f.td, "td", "0,1,2", "comma-separated 0-indexed token-dropping layers")
	}
	fs.IntVar(&f.testImages, "test-images", 0, "evaluate on only the first N test images (0 = all 10,000)")
	if cmd != "oneshot" {
		fs.IntVar(&o.Epochs, "epochs", o.Epochs, "training epochs")
		fs.IntVar(&o.BatchSize, "batch", o.BatchSize, "images per optimiser step")
		fs.Float64Var(&o.LR, "lr", o.LR, "peak learning rate")
		fs.Float64Var(&o.WeightDecay, "wd", o.WeightDecay, "decoupled weight decay")
		fs.Float64Var(&o.WarmupEpochs, "warmup", o.WarmupEpochs, "learning-rate warm-up in epochs")
		fs.StringVar(&o.Decay, "decay", o.Decay, "learning-rate decay after warm-up: cosine or linear")
		fs.Uint64Var(&o.Seed, "seed", o.Seed, "shuffling seed (dense: also the initialisation)")
		fs.IntVar(&f.trainImages, "train-images", 0, "use only the first N training images (0 = all 60,000)")
		fs.StringVar(&f.checkpoint, "checkpoint", "", "checkpoint written after every epoch (default OUT.ckpt)")
		fs.BoolVar(&f.resume, "resume", false, "continue from the checkpoint")
	}
	if cmd == "prune" {
		fs.Float64Var(&o.ScoreLR, "score-lr", o.ScoreLR, "peak learning rate of the mask scores")
		fs.Float64Var(&o.PruneWarmupEpochs, "prune-warmup", o.PruneWarmupEpochs, "epochs at density 1 before the cubic decay")
		fs.Float64Var(&o.PruneCooldownEpochs, "prune-cooldown", o.PruneCooldownEpochs, "final epochs at the target density")
		fs.BoolVar(&f.noDistill, "no-distill", false, "train on labels only, without the dense teacher")
		fs.BoolVar(&f.fixedMasks, "magnitude-masks", false, "choose masks by current weight magnitude instead of learned scores")
		fs.StringVar(&o.ScoreInit, "score-init", o.ScoreInit, "initial mask scores: zero (pure movement) or magnitude (start from the one-shot masks)")
		fs.Float64Var(&o.Temperature, "temperature", o.Temperature, "distillation temperature T")
		fs.Float64Var(&o.Alpha, "alpha", o.Alpha, "weight of the distillation term")
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, err
		}
		return nil, usageError{err}
	}
	if fs.NArg() > 0 {
		return nil, usagef("unexpected argument %q", fs.Arg(0))
	}
	if f.out == "" {
		return nil, usagef("-out is required")
	}
	if cmd != "dense" && f.from == "" {
		return nil, usagef("-from is required")
	}
	if f.trainImages < 0 || f.testImages < 0 {
		return nil, usagef("-train-images %d and -test-images %d must not be negative", f.trainImages, f.testImages)
	}
	if cmd != "dense" {
		td, err := parseLayers(f.td)
		if err != nil {
			return nil, usageError{err}
		}
		o.TDLayers = td
	}
	o.Distill = o.Distill && !f.noDistill
	o.LearnMasks = o.LearnMasks && !f.fixedMasks
	if f.checkpoint == "" {
		f.checkpoint = f.out + ".ckpt"
	}
	return f, nil
}

func parseLayers(s string) ([]int, error) {
	var out []int
	if strings.TrimSpace(s) == "" {
		return out, nil
	}
	for _, part := range strings.Split(s, ",") {
		l, err := strconv.Atoi(strings.TrimSpace(part))
		if err != nil {
			return nil, fmt.Errorf("-td %q: %q is not a layer number", s, part)
		}
		out = append(out, l)
	}
	return out, nil
}

func train(cmd string, args []string, stdout, stderr io.Writer) error {
	f, err := parseTrainFlags(cmd, args, stderr)
	if err != nil {
		return err
	}
	cfg, err := vit.Preset(f.model)
	if err != nil {
		return usageError{err}
	}
	if cmd != "oneshot" {
		if err := f.opt.Validate(cfg); err != nil {
			return usageError{err}
		}
	} else if err := (&vit.Pruning{Keep: f.opt.Keep, TDLayers: f.opt.TDLayers}).Validate(cfg); err != nil {
		// Before any file is read; the masks are checked again once made.
		return usageError{err}
	}
	var dense *vit.Weights
	if f.from != "" {
		if dense, _, err = vit.LoadWeights(f.from, cfg); err != nil {
			return err
		}
	}
	trainSet, testSet, err := vit.LoadMNIST()
	if err != nil {
		return err
	}
	test := prune.MNIST(testSet, cfg, f.testImages)

	var w *vit.Weights
	var p *vit.Pruning
	start := time.Now()
	switch cmd {
	case "oneshot":
		if p, err = prune.Magnitude(dense, f.opt.Block, f.opt.Density); err != nil {
			return usageError{err}
		}
		p.Keep, p.TDLayers = f.opt.Keep, f.opt.TDLayers
		if err := p.Validate(cfg); err != nil {
			return usageError{err}
		}
		w = prune.Masked(dense, p)
	default:
		ds := prune.MNIST(trainSet, cfg, f.trainImages)
		student := prune.InitWeights(cfg, f.opt.Seed)
		if dense != nil {
			student = prune.Masked(dense, nil)
		}
		t, err := trainLoop(f, student, dense, ds, test, stderr)
		if err != nil {
			return err
		}
		w, p = t.PrunedWeights(), t.Pruning()
	}
	fmt.Fprintf(stderr, "evaluating %s on %d test images with the reference forward pass\n", f.out, len(test.Images))
	res, err := evaluate(w, p, test)
	if err != nil {
		return err
	}
	if note := prune.LowAccuracyNote(res.correct, res.n, cfg.NumClasses, cmd == "oneshot"); note != "" {
		fmt.Fprintln(stderr, note)
	}
	took, cpu := time.Since(start), cpuTime()
	meta, err := res.metadata(strings.Join(append([]string{"train", cmd}, args...), " "), took, cpu)
	if err != nil {
		return err
	}
	if err := vit.SaveWeights(f.out, w, vit.LayoutTimm, meta); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s: %s; took %s wall, %s CPU\n", f.out, res, took.Round(time.Second), cpu.Round(time.Second))
	return nil
}

func trainLoop(f *trainFlags, student, teacher *vit.Weights, ds, test *prune.Dataset, stderr io.Writer) (*prune.Trainer, error) {
	var t *prune.Trainer
	var err error
	if f.resume {
		t, err = prune.ResumeTrainer(f.checkpoint, teacher, ds, f.opt)
		if err == nil {
			fmt.Fprintf(stderr, "resumed from %s after epoch %d\n", f.checkpoint, t.Epoch())
		}
	} else {
		t, err = prune.NewTrainer(student, teacher, ds, f.opt)
	}
	if err != nil {
		return nil, err
	}
	spe := t.StepsPerEpoch()
	total := (f.opt.Epochs - t.Epoch()) * spe
	done := 0
	start := time.Now()
	for t.Epoch() < f.opt.Epochs {
		last := time.Now()
		loss, acc := t.TrainEpoch(func(p prune.Progress) {
			done++
			if p.Step%50 != 0 && p.Step != p.StepsPerEpoch {
				return
			}
			elapsed := time.Since(start)
			left := time.Duration(float64(elapsed) / float64(done) * float64(total-done))
			fmt.Fprintf(stderr, "epoch %d/%d step %d/%d loss %.4f acc %.2f%% density %.3f elapsed %s left %s (CPU %s)\n",
				p.Epoch+1, f.opt.Epochs, p.Step, p.StepsPerEpoch, p.Loss, 100*p.Accuracy, p.Density,
				elapsed.Round(time.Second), left.Round(time.Second), cpuTime().Round(time.Second))
		})
		testAcc := prune.Accuracy(t.Weights(), t.Pruning(), test) // Accuracy applies the masks itself
		if err := t.SaveCheckpoint(f.checkpoint); err != nil {
			return nil, err
		}
		fmt.Fprintf(stderr, "epoch %d/%d done in %s: train loss %.4f acc %.2f%%, test acc %.2f%%, checkpoint %s\n",
			t.Epoch(), f.opt.Epochs, time.Since(last).Round(time.Second), loss, 100*acc, 100*testAcc, f.checkpoint)
	}
	return t, nil
}
