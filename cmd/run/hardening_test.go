package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"vitflow/vit"
)

// hugeWeights is a mnist-tiny weights file whose attention weights are
// finite but so large (1e30) that the scores overflow float32.
func hugeWeights(t *testing.T) string {
	t.Helper()
	cfg, err := vit.Preset("mnist-tiny")
	require.NoError(t, err)
	w := vit.RandomWeights(cfg, 3)
	for i := range w.Layers {
		for j := range w.Layers[i].QW {
			w.Layers[i].QW[j], w.Layers[i].KW[j] = 1e30, 1e30
		}
	}
	path := filepath.Join(t.TempDir(), "huge.safetensors")
	require.NoError(t, vit.SaveWeights(path, w, vit.LayoutTimm, nil))
	return path
}

// TestExtremeInputsFailWithTheirReason: numbers that used to give silent
// wrong answers (infinite bandwidth, +Inf microseconds, NaN logits read as
// class 0), keep rates the simulator could not run, and files whose errors
// did not point to the fix, each fail with one line that names the problem.
func TestExtremeInputsFailWithTheirReason(t *testing.T) {
	huge := hugeWeights(t)
	deitTiny := savedWeights(t, "deit-tiny", nil)
	topo := func(name, text string) string { return writeFile(t, name, text) }
	tests := []struct {
		name string
		args []string
		code int
		msg  string
	}{
		{"bandwidth 1e-16", []string{"-topology", topo("bw.toml", "base = \"small\"\n[memory]\nbandwidth_bytes_per_cycle = 1e-16\n")},
			1, "memory.bandwidth_bytes_per_cycle must be in [0.015625, 1e+09] (0.015625 per channel times memory.channels = 1), got 1e-16"},
		{"bandwidth 1e-300", []string{"-topology", topo("bw.toml", "base = \"u250\"\n[memory]\nbandwidth_bytes_per_cycle = 1e-300\n")},
			1, "memory.bandwidth_bytes_per_cycle must be in [0.0625, 1e+09]"},
		{"clock 5e-324", []string{"-json", "-topology", topo("clock.toml", "base = \"small\"\nclock_mhz = 5e-324\n")},
			1, "clock_mhz must be in [1, 100000], got 5e-324"},
		{"clock 5e-324 in a reference run", []string{"-reference", "-topology", topo("clock.toml", "base = \"small\"\nclock_mhz = 5e-324\n")},
			1, "clock_mhz must be in [1, 100000]"},
		{"empty topology file", []string{"-topology", topo("empty.toml", "")}, 1, "file is empty"},
		{"topology key missing", []string{"-topology", topo("bare.toml", "name = \"bare\"\nfidelity = \"ideal\"\n")},
			1, "missing key clock_mhz"},
		{"keep that keeps no token, simulated", []string{"-keep", "1e-11"}, 2,
			"keep rate 1e-11 keeps none of the 49 tokens after CLS entering token-dropping layer 0"},
		{"keep that keeps no token, reference", []string{"-reference", "-keep", "1e-11"}, 2, "keep rate 1e-11 keeps none"},
		{"huge weights, reference", []string{"-reference", "-weights", huge, "-density", "1"}, 1,
			"forward mnist-tiny: layer 0 attention: activations are not finite"},
		{"huge weights, simulated", []string{"-weights", huge, "-density", "1", "-topology", "small", "-images", "1"}, 1, "not finite"},
		{"DeiT weights without -model", []string{"-reference", "-weights", deitTiny}, 1,
			"the file holds a deit-tiny, not a mnist-tiny: pass -model deit-tiny"},
		{"DeiT-Tiny weights as deit-small", []string{"-reference", "-model", "deit-small", "-weights", deitTiny}, 1,
			"pass -model deit-tiny"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := invokeWithin(t, tt.args...)
			assertOneLineError(t, r, tt.code, tt.msg)
		})
	}
}

func TestPrintTopologyJSON(t *testing.T) {
	r := invokeWithin(t, "-topology", "small", "-print-topology", "-json")
	require.Equal(t, 0, r.code, r.stderr)
	var m map[string]any
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &m), "stdout is JSON: %q", r.stdout)
	assert.Equal(t, "small", m["name"])
	assert.EqualValues(t, 200, m["clock_mhz"])
	require.IsType(t, map[string]any{}, m["mpca"])
	assert.EqualValues(t, 2, m["mpca"].(map[string]any)["t"])
	assert.Empty(t, r.stderr)

	r = invokeWithin(t, "-topology", "small", "-print-topology")
	require.Equal(t, 0, r.code, r.stderr)
	assert.True(t, strings.HasPrefix(r.stdout, "# vitflow accelerator description"), "TOML without -json")
}

// TestUserNamesArePrintable: a topology name with a newline and terminal
// escape codes reaches the text report, the SVG and any error escaped; the
// JSON report keeps it exactly (JSON escapes it).
func TestUserNamesArePrintable(t *testing.T) {
	evil := "card\x1b[2J\x1b]0;pwned\x07\nsecond line\u202e"
	file := writeFile(t, "evil.toml", "base = \"small\"\nname = \"card\\u001b[2J\\u001b]0;pwned\\u0007\\nsecond line\\u202e\"\n")
	svg := filepath.Join(t.TempDir(), "chart.svg")
	tests := []struct {
		name string
		args []string
		out  func(r result) string
	}{
		{"text report", []string{"-topology", file, "-image", pngFile(t)}, func(r result) string { return r.stdout }},
		{"reference text report", []string{"-reference", "-topology", file, "-image", pngFile(t)}, func(r result) string { return r.stdout }},
		{"svg", []string{"-topology", file, "-image", pngFile(t), "-svg", svg}, func(result) string { return readFile(t, svg) }},
		// The simulator names the topology in a unit's failure.
		{"error", []string{"-topology", file, "-weights", hugeWeights(t), "-density", "1", "-images", "1"}, func(r result) string {
			assert.Contains(t, r.stderr, `on card\x1b[2J`)
			return r.stderr
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := invokeWithin(t, tt.args...)
			out := tt.out(r)
			require.NotEmpty(t, out, "stderr: %s", r.stderr)
			assert.NotContains(t, out, "\x1b")
			assert.NotContains(t, out, "\x07")
			assert.NotContains(t, out, "\u202e")
			assert.NotContains(t, out, "\nsecond line")
		})
	}
	r := invokeWithin(t, "-json", "-topology", file, "-image", pngFile(t))
	require.Equal(t, 0, r.code, r.stderr)
	assert.Equal(t, evil, decode(t, r.stdout).Topology)
	assert.Contains(t, invokeWithin(t, "-topology", file, "-image", pngFile(t)).stdout, `card\x1b[2J\x1b]0;pwned\a\nsecond line\u202e`)
}

func TestPrintable(t *testing.T) {
	tests := []struct{ in, want string }{
		{"u250", "u250"},
		{"my card (v2)", "my card (v2)"},
		{"a\nb\tc\r", `a\nb\tc\r`},
		{"\x1b[31mred", `\x1b[31mred`},
		{"caf\u00e9 \u65e5\u672c", "caf\u00e9 \u65e5\u672c"},
		{"\u202eevil", `\u202eevil`},
		{"bad \xff utf-8", `bad \xff utf-8`},
		{strings.Repeat("x", maxShownName+5), strings.Repeat("x", maxShownName+5)},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, printable(tt.in), "%q", tt.in)
	}
	assert.Equal(t, strings.Repeat("x", maxShownName)+"...", shownName(strings.Repeat("x", maxShownName+5)))
	assert.Equal(t, `a\nb`, shownName("a\nb"))
}

// TestNotes: flags with no effect and an accuracy no better than a guess are
// one line each on stderr, and the report itself is unchanged.
func TestNotes(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want []string
	}{
		{"seed with embedded weights and MNIST", []string{"-reference", "-images", "2", "-seed", "7"},
			[]string{"run: note: -seed 7 has no effect: the weights are embedded and the images MNIST test images 0-1"}},
		{"seed with a weights file and image files", []string{"-reference", "-weights", savedWeights(t, "mnist-tiny", nil), "-density", "1", "-image", pngFile(t), "-seed", "2"},
			[]string{"run: note: -seed 2 has no effect: the weights are from"}},
		{"seed with random weights", []string{"-reference", "-images", "2", "-variant", "random", "-seed", "7"}, nil},
		{"seed with random DeiT images", []string{"-reference", "-model", "deit-tiny", "-images", "1", "-seed", "7"}, nil},
		{"one-shot pruning that destroys accuracy", []string{"-reference", "-json", "-variant", "dense", "-block", "8", "-density", "0.25", "-keep", "0.7", "-td", "1,2", "-images", "100"},
			[]string{"run: note: accuracy ", "is below twice chance (20.0% for 10 classes)", "one-shot magnitude pruning at this density destroyed it"}},
		{"a good model", []string{"-reference", "-images", "20"}, nil},
		{"balance in ideal fidelity", []string{"-topology", "paper", "-balance", "static", "-images", "1"},
			[]string{"run: note: -balance static has no effect in ideal fidelity (topology paper): the ideal policy runs"}},
		{"balance ideal in ideal fidelity", []string{"-topology", "paper", "-balance", "ideal", "-images", "1"}, nil},
		{"no labels", []string{"-reference", "-model", "deit-tiny", "-images", "1"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := invokeWithin(t, tt.args...)
			require.Equal(t, 0, r.code, r.stderr)
			assert.NotEmpty(t, r.stdout)
			if tt.want == nil {
				assert.Empty(t, r.stderr)
				return
			}
			assert.Equal(t, 1, strings.Count(r.stderr, "\n"), "one line: %q", r.stderr)
			for _, w := range tt.want {
				assert.Contains(t, r.stderr, w)
			}
		})
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	return string(b)
}

// TestTraceCutIsSaid: a trace that reaches its event cap says so on stderr
// and in the JSON report.
func TestTraceCutIsSaid(t *testing.T) {
	path := filepath.Join(t.TempDir(), "t.json")
	r := invokeWithin(t, "-model", "deit-small", "-images", "4", "-trace", path, "-trace-events", "100000", "-json")
	require.Equal(t, 0, r.code, r.stderr)
	rep := decode(t, r.stdout)
	require.Positive(t, rep.TraceCut)
	assert.Less(t, rep.TraceCut, rep.CyclesTotal)
	assert.Contains(t, r.stderr, "note: the trace stops at cycle")
}
