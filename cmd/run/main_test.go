package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"image"
	"image/color"
	"image/png"
	"math/rand/v2"
	"os"
	"path/filepath"
	goruntime "runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"vitflow/kernels"
	"vitflow/models"
	"vitflow/prune"
	"vitflow/report"
	"vitflow/vit"
)

// invoke runs the command and returns its exit status, stdout and stderr.
func invoke(args ...string) (int, string, string) {
	var stdout, stderr bytes.Buffer
	code := run(args, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	require.NoError(t, os.WriteFile(path, []byte(content), 0o644))
	return path
}

func savedWeights(t *testing.T, model string, meta map[string]string) string {
	t.Helper()
	cfg, err := vit.Preset(model)
	require.NoError(t, err)
	path := filepath.Join(t.TempDir(), model+".safetensors")
	require.NoError(t, vit.SaveWeights(path, vit.RandomWeights(cfg, 3), vit.LayoutTimm, meta))
	return path
}

func pngFile(t *testing.T) string {
	t.Helper()
	img := image.NewGray(image.Rect(0, 0, 28, 28))
	for y := 8; y < 20; y++ {
		img.SetGray(14, y, color.Gray{Y: 255})
	}
	var buf bytes.Buffer
	require.NoError(t, png.Encode(&buf, img))
	return writeFile(t, "one.png", buf.String())
}

// noisePNG is a seeded random grey image.
func noisePNG(t *testing.T) string {
	t.Helper()
	rng := rand.New(rand.NewPCG(1, 2))
	img := image.NewGray(image.Rect(0, 0, 32, 24))
	for i := range img.Pix {
		img.Pix[i] = uint8(rng.IntN(256))
	}
	var buf bytes.Buffer
	require.NoError(t, png.Encode(&buf, img))
	return writeFile(t, "noise.png", buf.String())
}

func TestBadInput(t *testing.T) {
	mnistWeights := savedWeights(t, "mnist-tiny", nil)
	tests := []struct {
		name string
		args []string
		code int
		msg  string // a substring of the one-line error
	}{
		{"unknown flag", []string{"-fast"}, 2, "flag provided but not defined: -fast"},
		{"stray argument", []string{"digit.png"}, 2, `unexpected argument "digit.png"`},
		{"unknown model", []string{"-model", "resnet"}, 2, `unknown model "resnet"`},
		{"unknown topology preset", []string{"-topology", "v100"}, 2, `"v100" is neither a preset`},
		{"config file with an unknown key", []string{"-topology",
			writeFile(t, "bad.toml", "base = \"u250\"\nturbo = true\n")}, 1, "turbo"},
		{"config file with FIFO depth 0", []string{"-topology",
			writeFile(t, "zero.toml", "base = \"small\"\n[fifo]\nweight_depth = 0\n")}, 1, "weight_depth"},
		{"config file that is not TOML", []string{"-topology", writeFile(t, "junk.toml", "[[[\x00")}, 1, "junk.toml"},
		{"block not dividing the head dim", []string{"-block", "32"}, 2, "-block 32: must divide mnist-tiny's dim 64 and head dim 16"},
		{"block zero", []string{"-block", "0"}, 2, "-block 0"},
		{"keep zero", []string{"-keep", "0"}, 2, "-keep 0: must be in (0, 1]"},
		{"keep above one", []string{"-keep", "1.5"}, 2, "-keep 1.5: must be in (0, 1]"},
		{"keep NaN", []string{"-keep", "NaN"}, 2, "-keep NaN"},
		{"density zero", []string{"-density", "0"}, 2, "-density 0: must be in (0, 1]"},
		{"density above one", []string{"-density", "1.01"}, 2, "-density 1.01"},
		{"density not a number", []string{"-density", "half"}, 2, `invalid value "half" for flag -density`},
		{"TD layer out of range", []string{"-td", "1,4"}, 2, "-td: layer 4 out of range: mnist-tiny has layers 0..3"},
		{"TD layer negative", []string{"-td", "-1"}, 2, "-td: layer -1 out of range"},
		{"TD layer repeated", []string{"-td", "1,1"}, 2, "-td: layer 1 listed twice"},
		{"TD layer not a number", []string{"-td", "1,x"}, 2, `"x" is not a layer index`},
		{"TD layer out of range for DeiT", []string{"-model", "deit-tiny", "-td", "12"}, 2, "deit-tiny has layers 0..11"},
		{"unknown variant", []string{"-variant", "pruned-k0.9"}, 2, `-variant: unknown variant "pruned-k0.9" (have ` + strings.Join(models.Variants(), ", ") + ", random)"},
		{"variant of another model", []string{"-model", "deit-tiny", "-variant", "dense"}, 2, "embedded weights exist only for mnist-tiny"},
		{"variant and weights file", []string{"-variant", "dense", "-weights", mnistWeights}, 2, "-variant and -weights exclude each other"},
		{"unknown balance policy", []string{"-balance", "greedy"}, 2, `unknown policy "greedy"`},
		{"zero images", []string{"-images", "0"}, 2, "-images 0: must be in 1..10000"},
		{"too many images", []string{"-images", "10001"}, 2, "-images 10001"},
		{"images and image files", []string{"-images", "2", "-image", "x.png"}, 2, "exclude each other"},
		{"trace with reference", []string{"-reference", "-trace", "t.json"}, 2, "-trace needs the accelerator"},
		{"svg with reference", []string{"-reference", "-svg", "c.svg"}, 2, "-svg charts the simulated cycles"},
		{"logits without json", []string{"-logits"}, 2, "-logits adds to the JSON report"},
		{"missing weights file", []string{"-weights", filepath.Join(t.TempDir(), "none.safetensors")}, 1, "none.safetensors"},
		{"corrupt weights file", []string{"-weights", writeFile(t, "bad.safetensors", "\x10\x00\x00\x00\x00\x00\x00\x00{not json}     ")}, 1, "bad.safetensors"},
		{"weights of another model", []string{"-model", "deit-tiny", "-weights", mnistWeights}, 1, "load weights"},
		{"corrupt pruning metadata", []string{"-weights", savedWeights(t, "mnist-tiny", map[string]string{vit.PruningMetadataKey: "{"})},
			1, "metadata vitflow.pruning"},
		{"missing image file", []string{"-reference", "-image", filepath.Join(t.TempDir(), "none.png")}, 1, "none.png"},
		{"corrupt image file", []string{"-reference", "-image", writeFile(t, "bad.png", "\x89PNG\r\n\x1a\nnot really")}, 1, "bad.png"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := invoke(tt.args...)
			assert.Equal(t, tt.code, code, "stderr: %s", stderr)
			assert.Empty(t, stdout)
			require.True(t, strings.HasSuffix(stderr, "\n"), "stderr %q", stderr)
			assert.Equal(t, 1, strings.Count(stderr, "\n"), "one line: %q", stderr)
			assert.True(t, strings.HasPrefix(stderr, "run: "), "stderr %q", stderr)
			assert.Contains(t, stderr, tt.msg)
			assert.NotContains(t, stderr, "goroutine")
		})
	}
}

func TestHelpShowsEveryFlagWithAnExample(t *testing.T) {
	code, stdout, stderr := invoke("-h")
	require.Equal(t, 0, code, stderr)
	fs := newFlagSet(&options{})
	n := 0
	fs.VisitAll(func(f *flag.Flag) {
		n++
		assert.Contains(t, stdout, "\n  -"+f.Name+" ", "flag -%s is not described", f.Name)
	})
	assert.Equal(t, n, strings.Count(stdout, "e.g. "), "one example per flag")
}

// decode parses a JSON report, failing the test if stdout holds anything else.
func decode(t *testing.T, stdout string) report.Report {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(stdout))
	dec.DisallowUnknownFields()
	var r report.Report
	require.NoError(t, dec.Decode(&r))
	require.False(t, dec.More(), "stdout holds more than the report")
	return r
}

func TestReferenceMatchesTheForwardPass(t *testing.T) {
	code, stdout, stderr := invoke("-variant", "random", "-reference", "-json", "-logits", "-images", "6")
	require.Equal(t, 0, code, stderr)
	r := decode(t, stdout)
	var fields map[string]json.RawMessage
	require.NoError(t, json.Unmarshal([]byte(stdout), &fields))
	for _, key := range []string{"model", "weights", "topology", "fidelity", "clock_mhz", "images", "top1", "labels",
		"accuracy", "logits", "estimator_cycles_per_image", "layers", "macs", "params", "pruning"} {
		assert.Contains(t, fields, key)
	}

	// The same model, pruning and images, computed here directly.
	cfg, err := vit.Preset("mnist-tiny")
	require.NoError(t, err)
	w := vit.RandomWeights(cfg, defaultSeed)
	p, err := prune.Magnitude(w, 16, 0.5)
	require.NoError(t, err)
	p.Keep, p.TDLayers = 0.5, []int{0, 1, 2}
	_, test, err := vit.LoadMNIST()
	require.NoError(t, err)

	require.Equal(t, 6, r.Images)
	require.Len(t, r.Top1, 6)
	require.Len(t, r.Logits, 6)
	right := 0
	for i := range 6 {
		img, label := test.Get(i)
		want, _, err := w.Forward(vit.MNISTPixels(img, cfg), p)
		require.NoError(t, err)
		assert.Equal(t, want, r.Logits[i], "image %d", i)
		assert.Equal(t, kernels.Argmax(want), r.Top1[i])
		assert.Equal(t, int(label), r.Labels[i])
		if r.Top1[i] == r.Labels[i] {
			right++
		}
	}
	require.NotNil(t, r.Accuracy)
	assert.InDelta(t, float64(right)/6, *r.Accuracy, 1e-12)
	assert.True(t, r.Reference)
	assert.Equal(t, "random", r.Weights)
	assert.Zero(t, r.CyclesTotal, "a reference run simulates nothing")
	assert.Equal(t, report.Pruning{Source: "magnitude", Block: 16, Density: 0.5, Keep: 0.5, TDLayers: []int{0, 1, 2}}, r.Pruning)
	// Token counts of image 0: 50 tokens, then ceil(0.5*(n-1))+2 after each TD layer.
	require.Len(t, r.Layers, 4)
	for i, want := range [][2]int{{50, 27}, {27, 15}, {15, 9}, {9, 9}} {
		assert.Equal(t, want, [2]int{r.Layers[i].TokensIn, r.Layers[i].TokensOut}, "layer %d", i)
	}
	assert.Positive(t, r.EstimatorCyclesPerImage)
	assert.Less(t, r.MACs.Pruned, r.MACs.Dense)
	assert.Less(t, r.Params.Pruned, r.Params.Dense)
}

func TestEmbeddedModels(t *testing.T) {
	_, test, err := vit.LoadMNIST()
	require.NoError(t, err)
	const n = 20
	tests := []struct {
		args    []string
		variant string
		pruning report.Pruning
	}{
		{nil, "pruned-k0.5", report.Pruning{Source: "embedded", Block: 16, Keep: 0.5, TDLayers: []int{0, 1, 2}}},
		{[]string{"-variant", "pruned-k0.7"}, "pruned-k0.7", report.Pruning{Source: "embedded", Block: 16, Keep: 0.7, TDLayers: []int{0, 1, 2}}},
		{[]string{"-variant", "dense"}, "dense", report.Pruning{Source: "none", Block: 16, Density: 1, Keep: 1, TDLayers: []int{}}},
		// Flags override the embedded pruning: magnitude masks on the trained weights, no token dropping.
		{[]string{"-variant", "dense", "-density", "0.75", "-keep", "1"}, "dense", report.Pruning{Source: "magnitude", Block: 16, Density: 0.75, Keep: 1, TDLayers: []int{}}},
	}
	for _, tt := range tests {
		t.Run(strings.Join(append([]string{tt.variant}, tt.args...), " "), func(t *testing.T) {
			code, stdout, stderr := invoke(append([]string{"-reference", "-json", "-images", strconv.Itoa(n)}, tt.args...)...)
			require.Equal(t, 0, code, stderr)
			r := decode(t, stdout)
			assert.Equal(t, "embedded", r.Weights)
			assert.Equal(t, tt.variant, r.Variant)
			if tt.pruning.Source == "embedded" {
				assert.InDelta(t, 0.5, r.Pruning.Density, 0.02, "trained at density 0.5")
				tt.pruning.Density = r.Pruning.Density
			}
			assert.Equal(t, tt.pruning, r.Pruning)

			// The same predictions from the model loaded here, pruned as the report says.
			w, p, meta, err := models.Load(tt.variant)
			require.NoError(t, err)
			require.NotNil(t, r.VariantTestAccuracy)
			assert.Equal(t, meta.TestAccuracy, *r.VariantTestAccuracy)
			assert.Equal(t, models.Describe(tt.variant), r.VariantAbout)
			if r.Pruning.Source == "magnitude" {
				p, err = prune.Magnitude(w, r.Pruning.Block, r.Pruning.Density)
				require.NoError(t, err)
			}
			p.Keep, p.TDLayers = r.Pruning.Keep, r.Pruning.TDLayers
			cfg := w.Config
			right := 0
			for i := range n {
				img, label := test.Get(i)
				logits, _, err := w.Forward(vit.MNISTPixels(img, cfg), p)
				require.NoError(t, err)
				assert.Equal(t, kernels.Argmax(logits), r.Top1[i], "image %d", i)
				if r.Top1[i] == int(label) {
					right++
				}
			}
			require.NotNil(t, r.Accuracy)
			assert.InDelta(t, float64(right)/n, *r.Accuracy, 1e-12)
		})
	}
}

func TestWeightsFileWithPruningMetadata(t *testing.T) {
	cfg, err := vit.Preset("mnist-tiny")
	require.NoError(t, err)
	w := vit.RandomWeights(cfg, 3)
	p, err := prune.Magnitude(w, 8, 0.25)
	require.NoError(t, err)
	p.Keep, p.TDLayers = 0.7, []int{1}
	meta, err := vit.EncodePruning(p)
	require.NoError(t, err)
	path := savedWeights(t, "mnist-tiny", map[string]string{vit.PruningMetadataKey: meta})
	img := pngFile(t)

	code, stdout, stderr := invoke("-reference", "-json", "-image", img, "-weights", path)
	require.Equal(t, 0, code, stderr)
	r := decode(t, stdout)
	assert.Equal(t, path, r.Weights)
	assert.Equal(t, "file", r.Pruning.Source)
	assert.Equal(t, 8, r.Pruning.Block)
	assert.InDelta(t, 0.25, r.Pruning.Density, 1e-9)
	assert.Equal(t, 0.7, r.Pruning.Keep)
	assert.Equal(t, []int{1}, r.Pruning.TDLayers)

	// -density overrides the file's masks, -keep its token dropping.
	code, stdout, stderr = invoke("-reference", "-json", "-image", img, "-weights", path, "-density", "1", "-keep", "1")
	require.Equal(t, 0, code, stderr)
	r = decode(t, stdout)
	assert.Equal(t, report.Pruning{Source: "none", Block: 16, Density: 1, Keep: 1, TDLayers: []int{}}, r.Pruning)
	assert.Equal(t, r.MACs.Dense, r.MACs.Pruned)
}

func TestImageFilesAndRandomImages(t *testing.T) {
	img := pngFile(t)
	code, stdout, stderr := invoke("-reference", "-json", "-image", img, "-image", img)
	require.Equal(t, 0, code, stderr)
	r := decode(t, stdout)
	assert.Equal(t, 2, r.Images)
	assert.Equal(t, r.Top1[0], r.Top1[1], "the same file twice")
	assert.Nil(t, r.Labels)
	assert.Nil(t, r.Accuracy)

	code, stdout, stderr = invoke("-reference", "-model", "deit-tiny", "-images", "2", "-seed", "5")
	require.Equal(t, 0, code, stderr)
	assert.Contains(t, stdout, "random weights (seed 5)")
	assert.Contains(t, stdout, "2 images: random images (seed 5)")
	assert.NotContains(t, stdout, "accuracy")
}

// TestSameJSONUnderGOMAXPROCS: the report, logits and every cycle
// count are the same under GOMAXPROCS 1, 2 and 8, for the golden model and for
// the simulated accelerator.
func TestSameJSONUnderGOMAXPROCS(t *testing.T) {
	for name, args := range map[string][]string{
		"reference": {"-reference", "-image", pngFile(t), "-image", noisePNG(t)},
		"simulated": fastFiles(t),
		// Memory stalls, several images in flight and streamed chunks.
		"simulated, 20 MNIST images on small": {"-topology", "small", "-images", "20"},
	} {
		t.Run(name, func(t *testing.T) {
			defer goruntime.GOMAXPROCS(goruntime.GOMAXPROCS(0))
			var outputs []string
			for _, procs := range []int{1, 2, 8} {
				goruntime.GOMAXPROCS(procs)
				code, stdout, stderr := invoke(append([]string{"-json", "-logits"}, args...)...)
				require.Equal(t, 0, code, stderr)
				outputs = append(outputs, stdout)
			}
			assert.Equal(t, outputs[0], outputs[1], "GOMAXPROCS 1 and 2")
			assert.Equal(t, outputs[0], outputs[2], "GOMAXPROCS 1 and 8")
		})
	}
}

// runMainEnv makes the test binary the command itself, for tests that
// measure a whole process (its peak memory).
const runMainEnv = "VITFLOW_TEST_RUN_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(runMainEnv) == "1" {
		os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
	}
	goleak.VerifyTestMain(m)
}

// panicWriter stands for a bug anywhere in the run.
type panicWriter struct{}

func (panicWriter) Write([]byte) (int, error) { panic("boom\nwith a second line") }

func TestPanicEndsInOneLine(t *testing.T) {
	var stderr bytes.Buffer
	code := run([]string{"-reference", "-image", pngFile(t)}, panicWriter{}, &stderr)
	assert.Equal(t, 1, code)
	assert.Equal(t, "run: internal error: tabwriter: panic during Write (boom with a second line)\n", stderr.String())
}

// FuzzParseFlags checks that any command line either parses or fails with a
// one-line usage error.
func FuzzParseFlags(f *testing.F) {
	for _, args := range []string{"-td 0,1,2", "-keep 0.7 -density 0.5", "-model deit-small -block 32", "-td 1,,2",
		"-images -3", "-balance static", "-keep 1e309", "-td 99999999999999999999", "-image", "--json x",
		"-trace t.json -trace-images 0-3,5 -trace-layers 1", "-trace-layers 9-2", "-trace t.json -trace-events 0"} {
		f.Add(args)
	}
	f.Fuzz(func(t *testing.T, line string) {
		_, err := parseFlags(strings.Fields(line))
		if err == nil || errors.Is(err, flag.ErrHelp) {
			return
		}
		assert.True(t, errors.As(err, new(usageError)), "%q: %v is not a usage error", line, err)
		assert.NotContains(t, oneLine(err.Error()), "\n")
	})
}

// TestRandomVariantOfADeiTModel: -variant random asks for what a DeiT model
// gets anyway, seeded random weights, and is not refused.
func TestRandomVariantOfADeiTModel(t *testing.T) {
	code, stdout, stderr := invoke("-model", "deit-tiny", "-variant", "random", "-reference", "-images", "1")
	require.Equal(t, 0, code, stderr)
	assert.Contains(t, stdout, "random weights (seed 1)")
}
