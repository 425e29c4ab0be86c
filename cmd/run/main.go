// Command run runs pruned Vision Transformer inference on the modelled
// accelerator and reports predictions, simulated latency and where the
// cycles went. Run it with -h for the flags; with no flags it runs mnist-tiny,
// pruned, on the first MNIST test images through the u250 topology.
//
// Exit status: 0 on success, 1 when the run fails (including files named on
// the command line that cannot be read or are invalid), 2 for bad usage.
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"

	"vitflow/models"
	"vitflow/prune"
	"vitflow/topology"
	"vitflow/vit"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// usageError marks an error in the command line (exit status 2), as opposed
// to a run that failed (exit status 1).
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error {
	return usageError{fmt.Errorf(format, args...)}
}

// run is the whole command: it parses args, runs, writes the report to
// stdout and errors to stderr as one line, and returns the exit status.
func run(args []string, stdout, stderr io.Writer) (status int) {
	defer func() {
		// A last resort: a bug must still end in one line, not a stack trace.
		if r := recover(); r != nil {
			fmt.Fprintf(stderr, "run: internal error: %v\n", oneLine(fmt.Sprint(r)))
			status = 1
		}
	}()
	var err error
	if len(args) > 0 && args[0] == "sweep" {
		err = runSweep(args[1:], stdout, stderr)
	} else {
		var opt *options
		opt, err = parseFlags(args)
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(stdout, usage())
			return 0
		}
		if err == nil {
			err = execute(opt, stdout, stderr)
		}
	}
	if err == nil {
		return 0
	}
	// A topology name or a path may hold terminal escape codes.
	fmt.Fprintf(stderr, "run: %s\n", printable(oneLine(err.Error())))
	if errors.As(err, new(usageError)) {
		return 2
	}
	return 1
}

// oneLine keeps an error message on one line whatever a library put in it.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// options are the parsed command line.
type options struct {
	model      string
	weights    string
	variant    string // embedded mnist-tiny weights, or "random"
	seed       uint64
	topology   string
	block      int
	density    float64
	keep       float64
	td         []int
	balance    string
	images     int
	imageFiles []string
	reference  bool
	timingOnly bool
	sizeFIFOs  bool    // -size-fifos
	sizeTol    float64 // -size-tolerance
	sizeOut    string  // -size-out
	json       bool
	logits     bool
	trace      string
	traceOpt   topology.TraceOptions // -trace-images, -trace-layers, -trace-events
	svg        string
	html       string
	compare    bool
	reports    []string // the -compare arguments
	printTopo  bool
	// set records the flags given explicitly, since several defaults depend
	// on the model or on the weights file.
	set map[string]bool
}

// Limits on the inputs a run accepts.
const (
	maxImages   = 10000 // the MNIST test set; also the most -image files
	defaultSeed = 1
)

// modelDefaults are the token-dropping defaults per model: the paper's
// layers {2, 6, 9} for DeiT, and the first three of mnist-tiny's four layers.
var modelDefaults = map[string]struct {
	td   []int
	keep float64
}{
	"mnist-tiny": {[]int{0, 1, 2}, 0.5},
	"deit-tiny":  {[]int{2, 6, 9}, 0.7},
	"deit-small": {[]int{2, 6, 9}, 0.7},
	"deit-base":  {[]int{2, 6, 9}, 0.7},
}

func parseFlags(args []string) (*options, error) {
	opt := &options{set: map[string]bool{}}
	fs := newFlagSet(opt)
	// Flags may follow the arguments (-compare a.json b.json -html c.html):
	// the flag package stops at the first argument, so parsing resumes after it.
	var positional []string
	for rest := args; ; {
		if err := fs.Parse(rest); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, usagef("%v (see -h)", err)
		}
		rest = fs.Args()
		if len(rest) == 0 {
			break
		}
		positional = append(positional, rest[0])
		rest = rest[1:]
	}
	fs.Visit(func(f *flag.Flag) { opt.set[f.Name] = true })
	if opt.compare {
		if err := opt.checkCompare(positional); err != nil {
			return nil, err
		}
		return opt, nil
	}
	if len(positional) > 0 {
		return nil, usagef("unexpected argument %q (images go after -image; see -h)", positional[0])
	}
	if err := opt.check(); err != nil {
		return nil, err
	}
	return opt, nil
}

// newFlagSet defines every flag on opt. Parse errors are returned, not
// printed: run prints them as one line.
func newFlagSet(opt *options) *flag.FlagSet {
	fs := modelFlagSet("run", opt)
	fs.StringVar(&opt.balance, "balance", "", "load-balancing policy")
	fs.IntVar(&opt.images, "images", 16, "MNIST test images")
	fs.Func("image", "image file (repeatable)", func(s string) error {
		opt.imageFiles = append(opt.imageFiles, s)
		return nil
	})
	fs.BoolVar(&opt.reference, "reference", false, "golden forward pass only")
	fs.BoolVar(&opt.timingOnly, "timing-only", false, "skip the numerics that cannot change timing")
	fs.BoolVar(&opt.sizeFIFOs, "size-fifos", false, "find the smallest FIFO depths within a tolerance")
	fs.Float64Var(&opt.sizeTol, "size-tolerance", topology.DefaultTolerance, "latency allowed above unbounded FIFOs")
	fs.StringVar(&opt.sizeOut, "size-out", "", "write the sized topology as TOML")
	fs.BoolVar(&opt.json, "json", false, "JSON report on stdout")
	fs.BoolVar(&opt.logits, "logits", false, "add logits to the JSON report")
	fs.StringVar(&opt.trace, "trace", "", "Perfetto trace file")
	fs.Func("trace-images", "images to trace", func(s string) (err error) {
		opt.traceOpt.Images, err = parseIndices(s)
		return err
	})
	fs.Func("trace-layers", "layers to trace", func(s string) (err error) {
		opt.traceOpt.Layers, err = parseIndices(s)
		return err
	})
	fs.IntVar(&opt.traceOpt.MaxEvents, "trace-events", topology.DefaultTraceEvents, "cap on the trace's events")
	fs.StringVar(&opt.svg, "svg", "", "SVG chart of cycles per layer")
	fs.StringVar(&opt.html, "html", "", "self-contained HTML report")
	fs.BoolVar(&opt.compare, "compare", false, "compare JSON reports")
	fs.BoolVar(&opt.printTopo, "print-topology", false, "print the topology as TOML and exit")
	return fs
}

// modelFlagSet is a flag set with the flags that choose the model, its
// weights and pruning and the topology, which a run and a sweep share.
func modelFlagSet(name string, opt *options) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	fs.StringVar(&opt.model, "model", "mnist-tiny", "model preset")
	fs.StringVar(&opt.weights, "weights", "", "safetensors weights file")
	fs.StringVar(&opt.variant, "variant", "", "embedded mnist-tiny weights, or random")
	fs.Uint64Var(&opt.seed, "seed", defaultSeed, "seed of random weights and images")
	fs.StringVar(&opt.topology, "topology", "u250", "topology preset or TOML file")
	fs.IntVar(&opt.block, "block", 16, "block size b")
	fs.Float64Var(&opt.density, "density", 0.5, "kept fraction of blocks and neurons")
	fs.Float64Var(&opt.keep, "keep", 0, "token keep rate")
	fs.Func("td", "token-dropping layers", func(s string) error {
		td, err := parseLayers(s)
		opt.td = td
		return err
	})
	return fs
}

// checkCompare validates -compare: two reports or more, and no flag but
// the outputs.
func (o *options) checkCompare(args []string) error {
	if len(args) < 2 {
		return usagef("-compare needs at least two reports written by -json, e.g. -compare a.json b.json")
	}
	for _, name := range slices.Sorted(maps.Keys(o.set)) {
		switch name {
		case "compare", "html", "json":
		default:
			return usagef("-compare takes only -html and -json, not -%s: the reports hold the runs", name)
		}
	}
	o.reports = args
	return o.checkOutputPaths()
}

// parseLayers parses a comma-separated list of layer indices; "" and "none"
// are the empty list.
func parseLayers(s string) ([]int, error) {
	if s == "" || s == "none" {
		return []int{}, nil
	}
	var layers []int
	for f := range strings.SplitSeq(s, ",") {
		l, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil {
			return nil, fmt.Errorf("%q is not a layer index", f)
		}
		layers = append(layers, l)
	}
	return layers, nil
}

// maxIndexList bounds the indices of -trace-images and -trace-layers, so
// that a range such as 0-99999999 is refused before it is expanded.
const maxIndexList = 1 << 16

// parseIndices parses a comma-separated list of indices and ranges
// ("0,2", "3-5"), in order, each index once.
func parseIndices(s string) ([]int, error) {
	var out []int
	seen := map[int]bool{}
	for f := range strings.SplitSeq(s, ",") {
		f = strings.TrimSpace(f)
		lo, hi, isRange := strings.Cut(f, "-")
		a, err := strconv.Atoi(lo)
		b := a
		if err == nil && isRange {
			b, err = strconv.Atoi(hi)
		}
		if err != nil || a < 0 || b < a || b >= maxIndexList {
			return nil, fmt.Errorf("%q is not an index or a range of indices from 0 to %d (for example 0,2 or 3-5)", f, maxIndexList-1)
		}
		for i := a; i <= b; i++ {
			if seen[i] {
				return nil, fmt.Errorf("%d is listed twice", i)
			}
			seen[i] = true
			out = append(out, i)
		}
	}
	return out, nil
}

// maxTraceEvents bounds -trace-events: a trace of that many events is
// about 10 GB, more than a viewer opens.
const maxTraceEvents = 100_000_000

// checkTrace validates the trace flags against the run's images and the
// model's layers.
func (o *options) checkTrace(layers int) error {
	t := o.traceOpt
	if o.trace == "" {
		for _, name := range []string{"trace-images", "trace-layers", "trace-events"} {
			if o.set[name] {
				return usagef("-%s chooses what -trace records: use it with -trace FILE", name)
			}
		}
		return nil
	}
	if t.MaxEvents < 1 || t.MaxEvents > maxTraceEvents {
		return usagef("-trace-events %d: must be in 1..%d", t.MaxEvents, maxTraceEvents)
	}
	n := o.imageCount()
	for _, i := range t.Images {
		if i >= n {
			return usagef("-trace-images: image %d is not in the run: it has images 0..%d", i, n-1)
		}
	}
	for _, l := range t.Layers {
		if l >= layers {
			return usagef("-trace-layers: layer %d out of range: %s has layers 0..%d", l, o.model, layers-1)
		}
	}
	return nil
}

// check validates what can be checked without reading any file.
func (o *options) check() error {
	cfg, err := o.checkModel()
	if err != nil {
		return err
	}
	if err := o.checkVariant(); err != nil {
		return err
	}
	if prune.CheckBlock(cfg, o.block) != nil {
		return usagef("-block %d: must divide %s's dim %d and head dim %d", o.block, cfg.Name, cfg.Dim, cfg.HeadDim())
	}
	if prune.CheckDensity(o.density) != nil {
		return usagef("-density %v: must be in (0, 1]", o.density)
	}
	if !(o.keep > 0 && o.keep <= 1) {
		return usagef("-keep %v: must be in (0, 1]", o.keep)
	}
	seen := map[int]bool{}
	for _, l := range o.td {
		if l < 0 || l >= cfg.Depth {
			return usagef("-td: layer %d out of range: %s has layers 0..%d", l, o.model, cfg.Depth-1)
		}
		if seen[l] {
			return usagef("-td: layer %d listed twice", l)
		}
		seen[l] = true
	}
	switch topology.Policy(o.balance) {
	case "", topology.PolicyIdeal, topology.PolicyStatic, topology.PolicyBalanced:
	default:
		return usagef("-balance: unknown policy %q (have ideal, static, balanced)", o.balance)
	}
	if o.images < 1 || o.images > maxImages {
		return usagef("-images %d: must be in 1..%d", o.images, maxImages)
	}
	if o.set["images"] && len(o.imageFiles) > 0 {
		return usagef("-images and -image exclude each other: give a count of test images or image files")
	}
	if len(o.imageFiles) > maxImages {
		return usagef("-image given %d times: at most %d images a run", len(o.imageFiles), maxImages)
	}
	if n := o.imageCount(); o.trace != "" && n > chunkImages {
		return usagef("-trace records one simulated run of at most %d images, not %d: use -images %d or fewer", chunkImages, n, chunkImages)
	}
	if o.reference && o.trace != "" {
		return usagef("-trace needs the accelerator: it cannot go with -reference")
	}
	if err := o.checkTrace(cfg.Depth); err != nil {
		return err
	}
	if o.timingOnly && o.reference {
		return usagef("-timing-only times the accelerator: it cannot go with -reference")
	}
	if o.timingOnly && o.logits {
		return usagef("-timing-only computes no logits: it cannot go with -logits")
	}
	if err := o.checkSizing(); err != nil {
		return err
	}
	if o.reference && o.svg != "" {
		return usagef("-svg charts the simulated cycles: it cannot go with -reference")
	}
	if o.logits && !o.json {
		return usagef("-logits adds to the JSON report: use it with -json")
	}
	return o.checkOutputPaths()
}

// checkModel checks -model and gives -keep and -td the model's defaults
// when they are not set.
func (o *options) checkModel() (vit.Config, error) {
	cfg, err := vit.Preset(o.model)
	if err != nil {
		return vit.Config{}, usagef("-model: unknown model %q (have %s)", o.model, strings.Join(vit.PresetNames(), ", "))
	}
	def, ok := modelDefaults[o.model]
	if !ok {
		return vit.Config{}, usagef("-model: no defaults for model %q", o.model)
	}
	if !o.set["keep"] {
		o.keep = def.keep
	}
	if !o.set["td"] {
		o.td = def.td
	}
	return cfg, nil
}

// imageCount is the number of images the run will have (at most: the MNIST
// test set has 10,000).
func (o *options) imageCount() int {
	if len(o.imageFiles) > 0 {
		return len(o.imageFiles)
	}
	return o.images
}

// randomVariant asks for seeded random weights instead of an embedded model.
const randomVariant = "random"

// checkVariant validates -variant and picks the embedded default for
// mnist-tiny when no weights are named.
func (o *options) checkVariant() error {
	if !o.set["variant"] {
		if o.model == models.Model && o.weights == "" {
			o.variant = models.Default
		}
		return nil
	}
	if o.weights != "" {
		return usagef("-variant and -weights exclude each other: embedded weights or a file")
	}
	if o.model != models.Model && o.variant != randomVariant {
		return usagef("-variant: embedded weights exist only for %s, not %s (DeiT models take -weights FILE, or seeded random weights by default)", models.Model, o.model)
	}
	if o.variant != randomVariant && models.Describe(o.variant) == "" {
		return usagef("-variant: unknown variant %q (have %s, %s)", o.variant, strings.Join(models.Variants(), ", "), randomVariant)
	}
	return nil
}

// loadTopology resolves -topology and applies -balance. A name that is
// neither a preset nor an existing file is a usage error; a file that
// cannot be read or is invalid fails the run.
func loadTopology(o *options) (topology.Description, error) {
	if !slices.Contains(topology.PresetNames(), o.topology) {
		if _, err := os.Stat(o.topology); errors.Is(err, os.ErrNotExist) {
			return topology.Description{}, usagef("-topology: %q is neither a preset (%s) nor an existing file",
				o.topology, strings.Join(topology.PresetNames(), ", "))
		}
	}
	d, err := topology.Load(o.topology)
	if err != nil {
		return topology.Description{}, err
	}
	if o.balance != "" {
		d.Balance = topology.Policy(o.balance)
		if err := d.Validate(); err != nil {
			return topology.Description{}, usagef("-balance %s with topology %s: %w", o.balance, d.Name, err)
		}
	}
	return d, nil
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
