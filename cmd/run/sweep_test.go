package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"vitflow/report"
)

func TestSweepBadInput(t *testing.T) {
	file := writeFile(t, "file", "")
	for _, tc := range []struct {
		args []string
		code int
		err  string
	}{
		{[]string{"-set", "mpca.h="}, 2, "mpca.h: empty value"},
		{[]string{"-set", "density=1:0.5:0.1"}, 2, `range "1:0.5:0.1" is empty`},
		{[]string{"-set", "mpca.h=two"}, 2, `"two" is not an integer`},
		{[]string{"-set", "density=lots"}, 2, `"lots" is not a number`},
		{[]string{"-set", "mpca.hh=1,2"}, 2, `unknown key "mpca.hh"`},
		{[]string{"-set", "block=7"}, 2, "block=7"},
		{[]string{"-set", "mpca.t=1:40:1", "-set", "mpca.c=1:40:1"}, 2, "more than 1000 points (the axes multiply to 40 x 40 so far); pass -force"},
		{[]string{"-set", "mpca.h=2", "-out", filepath.Join(file, "out")}, 1, "sweep: output folder"},
		{[]string{"-images", "0"}, 2, "-images 0"},
		{[]string{"-td", "0,7"}, 2, "token-dropping layers [0 7]: each once, in 0..3"},
		{[]string{"-jobs", "-1"}, 2, "-jobs -1"},
		{[]string{"-model", "vgg"}, 2, "unknown model"},
		{[]string{"-topology", "nowhere.toml"}, 2, "neither a preset"},
		{[]string{"stray"}, 2, `unexpected argument "stray"`},
		{[]string{"-bogus"}, 2, "flag provided but not defined: -bogus"},
	} {
		code, stdout, stderr := invoke(append([]string{"sweep", "-out", filepath.Join(t.TempDir(), "out")}, tc.args...)...)
		assert.Equal(t, tc.code, code, "%v: %s", tc.args, stderr)
		assert.Contains(t, stderr, tc.err, tc.args)
		assert.Equal(t, 1, strings.Count(stderr, "\n"), "%v: one line: %q", tc.args, stderr)
		assert.Empty(t, stdout, tc.args)
	}
}

func TestSweepCommand(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "out")
	code, stdout, stderr := invoke("sweep", "-images", "4", "-set", "mpca.h=2,4", "-set", "density=0.5,1", "-out", dir)
	require.Equal(t, 0, code, stderr)
	assert.Contains(t, stdout, "sweep: mnist-tiny on u250, 4 images per point (MNIST test images 0-3): 4 points, 0 failed")
	assert.Contains(t, stdout, "Pareto front, accuracy against latency")
	for _, name := range []string{"points.csv", "points.jsonl", "sweep.json", "sweep.html", "accuracy-latency.svg",
		"accuracy-latency.png", "memory-latency.svg", "latency-mpca.h.svg", "latency-density.png"} {
		assert.FileExists(t, filepath.Join(dir, name))
	}
	data, err := os.ReadFile(filepath.Join(dir, "sweep.json"))
	require.NoError(t, err)
	var sw report.Sweep
	require.NoError(t, json.Unmarshal(data, &sw))
	require.Len(t, sw.Rows, 4)
	assert.Equal(t, "embedded dense", sw.Weights, "a sweep prunes the dense model")

	// The same sweep again runs nothing and says the same.
	code, again, stderr := invoke("sweep", "-images", "4", "-set", "mpca.h=2,4", "-set", "density=0.5,1", "-out", dir)
	require.Equal(t, 0, code, stderr)
	assert.Equal(t, stdout, again)

	code, help, _ := invoke("sweep", "-h")
	assert.Equal(t, 0, code)
	for _, flag := range []string{"-set", "-out", "-jobs", "-force", "-timing-only", "-images", "-json"} {
		assert.Contains(t, help, flag)
	}
}

// A sweep of seeded random weights times them only, unless asked otherwise.
func TestSweepRandomWeightsTimingOnly(t *testing.T) {
	for _, tc := range []struct {
		args   []string
		timing bool
	}{
		{nil, true},
		{[]string{"-timing-only=false"}, false},
		{[]string{"-variant", "dense"}, false},
	} {
		args := append([]string{"sweep", "-json", "-images", "2", "-set", "mpca.h=2,4", "-out", filepath.Join(t.TempDir(), "out")}, tc.args...)
		if tc.args == nil || tc.args[0] != "-variant" {
			args = append(args, "-variant", "random")
		}
		code, stdout, stderr := invoke(args...)
		require.Equal(t, 0, code, stderr)
		var sw report.Sweep
		require.NoError(t, json.Unmarshal([]byte(stdout), &sw))
		assert.Equal(t, tc.timing, sw.TimingOnly, "%v", tc.args)
	}
}

func TestTimingOnlyRun(t *testing.T) {
	cycles := func(args ...string) (report.Report, string) {
		code, stdout, stderr := invoke(append([]string{"-images", "3", "-json"}, args...)...)
		require.Equal(t, 0, code, stderr)
		var r report.Report
		require.NoError(t, json.Unmarshal([]byte(stdout), &r))
		return r, stdout
	}
	full, _ := cycles()
	timing, _ := cycles("-timing-only")
	assert.Equal(t, full.CyclesTotal, timing.CyclesTotal)
	assert.Equal(t, full.Units, timing.Units)
	assert.Equal(t, full.CriticalPath, timing.CriticalPath)
	assert.True(t, timing.TimingOnly)
	assert.Nil(t, timing.Accuracy)
	code, stdout, _ := invoke("-images", "3", "-timing-only")
	require.Equal(t, 0, code)
	assert.Contains(t, stdout, "timing only: no predictions")
	for _, bad := range [][]string{{"-reference"}, {"-json", "-logits"}} {
		code, _, stderr := invoke(append([]string{"-timing-only"}, bad...)...)
		assert.Equal(t, 2, code)
		assert.Contains(t, stderr, "-timing-only")
	}
}

func TestSizeFIFOs(t *testing.T) {
	sized := filepath.Join(t.TempDir(), "sized.toml")
	code, stdout, stderr := invoke("-size-fifos", "-images", "2", "-size-out", sized)
	require.Equal(t, 0, code, stderr)
	assert.Contains(t, stdout, "FIFO sizing: mnist-tiny on u250, 2 image(s), within 1% of unbounded FIFOs")
	assert.Contains(t, stdout, "weights->chm3")
	// The sized topology runs, within the bound of the table.
	code, js, stderr := invoke("-images", "2", "-json", "-topology", sized)
	require.Equal(t, 0, code, stderr)
	var r report.Report
	require.NoError(t, json.Unmarshal([]byte(js), &r))
	assert.Equal(t, "u250-sized", r.Topology)
	var unbounded, bound, cycles int64
	for _, line := range strings.Split(stdout, "\n") {
		if strings.HasPrefix(line, "latency: ") {
			_, err := fmt.Sscanf(line, "latency: unbounded %d cycles, bound %d, sized %d", &unbounded, &bound, &cycles)
			require.NoError(t, err)
		}
	}
	require.Positive(t, bound)
	assert.Equal(t, cycles, r.CyclesTotal, "the table's latency is the sized topology's")
	assert.LessOrEqual(t, r.CyclesTotal, bound)

	for _, tc := range []struct {
		args []string
		err  string
	}{
		{[]string{"-size-fifos", "-reference"}, "cannot go with -reference"},
		{[]string{"-size-fifos", "-json"}, "cannot go with -json"},
		{[]string{"-size-fifos", "-size-tolerance", "-1"}, "-size-tolerance -1"},
		{[]string{"-size-fifos", "-size-tolerance", "NaN"}, "-size-tolerance NaN"},
		{[]string{"-size-fifos", "-images", "17"}, "at most 16 images"},
		{[]string{"-size-out", "x.toml"}, "-size-out goes with -size-fifos"},
		{[]string{"-size-fifos", "-size-out", filepath.Join(t.TempDir(), "no", "x.toml")}, "-size-out"},
	} {
		code, stdout, stderr := invoke(tc.args...)
		assert.NotEqual(t, 0, code, tc.args)
		assert.Contains(t, stderr, tc.err, tc.args)
		assert.Equal(t, 1, strings.Count(stderr, "\n"), tc.args)
		assert.Empty(t, stdout, tc.args)
	}
}
