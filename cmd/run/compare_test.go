package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"vitflow/report"
)

// jsonReport runs the command with -json and args and writes the report to
// dir/name.
func jsonReport(t *testing.T, dir, name string, args ...string) string {
	t.Helper()
	code, stdout, stderr := invoke(append([]string{"-json"}, args...)...)
	require.Equal(t, 0, code, stderr)
	path := filepath.Join(dir, name)
	require.NoError(t, os.WriteFile(path, []byte(stdout), 0o644))
	return path
}

// comparison runs -compare -json on paths and decodes the comparison.
func comparison(t *testing.T, paths ...string) report.Comparison {
	t.Helper()
	code, stdout, stderr := invoke(append([]string{"-compare", "-json"}, paths...)...)
	require.Equal(t, 0, code, stderr)
	var c report.Comparison
	require.NoError(t, json.Unmarshal([]byte(stdout), &c))
	return c
}

// changed returns the names of the rows whose values differ from the first run's.
func changed(rows []report.Row) []string {
	var names []string
	for _, r := range rows {
		for _, v := range r.Values[1:] {
			if (v == nil) != (r.Values[0] == nil) || v != nil && *v != *r.Values[0] {
				names = append(names, r.Name)
				break
			}
		}
	}
	return names
}

func TestCompareARunWithItself(t *testing.T) {
	dir := t.TempDir()
	a := jsonReport(t, dir, "a.json", "-topology", "small")
	c := comparison(t, a, a)
	assert.Empty(t, c.Config)
	assert.Empty(t, changed(c.Metrics))
	assert.Empty(t, c.Layers)
	assert.Empty(t, c.Causes)
	assert.Empty(t, c.Units)
	assert.Empty(t, c.FIFOs)
	assert.Empty(t, c.Notes)

	code, stdout, stderr := invoke("-compare", a, a)
	require.Equal(t, 0, code, stderr)
	assert.Contains(t, stdout, "no differences")
	assert.NotContains(t, stdout, "differ (")
	assert.NotContains(t, stdout, "changed most")
	assert.NotContains(t, stdout, "%)", "no change column has a value")
}

// TestCompareBalancingPolicies compares static with balanced load balancing
// on the small topology (where they schedule differently): the settings
// differ only in the policy, and only what depends on the schedule changes
// (latency, PE utilisation, the PE imbalance and compute of the policy that
// ran, layer and op cycles, the causes, the units' waiting and the MPCA's
// busy cycles, FIFO occupancy); nothing else does (accuracy, counts, the
// estimator, the tokens and heads, each policy's own imbalance, the other
// units' work, FIFO depths).
func TestCompareBalancingPolicies(t *testing.T) {
	dir := t.TempDir()
	static := jsonReport(t, dir, "static.json", "-topology", "small", "-balance", "static")
	balanced := jsonReport(t, dir, "balanced.json", "-topology", "small", "-balance", "balanced")
	c := comparison(t, static, balanced)

	assert.Equal(t, []report.ConfigDiff{{Key: "balance", Values: []string{"static", "balanced"}}}, c.Config)

	assert.ElementsMatch(t, []string{"latency", "latency", "throughput", "PE utilisation",
		"PE max/mean, policy that ran", "MPCA compute, policy that ran"}, changed(c.Metrics),
		"only the schedule's figures change")
	for _, m := range c.Metrics {
		if m.Name == "PE max/mean, policy that ran" {
			assert.Less(t, *m.Values[1], *m.Values[0], "balanced spreads the load better")
		}
	}
	var latency float64
	for _, m := range c.Metrics {
		if m.Name == "latency" && m.Unit == "cycles/image" {
			latency = *m.Values[1] - *m.Values[0]
		}
	}
	require.NotZero(t, latency)

	require.NotEmpty(t, c.Layers)
	imbalance := false
	for _, name := range changed(c.Layers) {
		// A layer's time, its PE imbalance and its ops' times; not its
		// tokens, heads or estimate.
		assert.Regexp(t, `^layer \d+ (cycles|PE max/mean|\S+ cycles)$`, name)
		assert.NotRegexp(t, `estimator cycles$`, name)
		imbalance = imbalance || strings.HasSuffix(name, "PE max/mean")
	}
	assert.True(t, imbalance, "a layer's PE imbalance changed")

	// The causes' changes add up to the latency's: the critical path is
	// every cycle of the run, counted once.
	require.NotEmpty(t, c.Causes)
	var causes float64
	for _, r := range c.Causes {
		assert.Equal(t, "cycles/image", r.Unit, r.Name)
		require.NotNil(t, r.Values[0], "%s: a cause of both runs", r.Name)
		require.NotNil(t, r.Values[1], "%s: a cause of both runs", r.Name)
		causes += *r.Values[1] - *r.Values[0]
	}
	assert.InDelta(t, latency, causes, 1e-3)

	// The units do the same work under either policy but for the MPCA,
	// whose busy time is its busiest PE's: they only wait more or less.
	require.NotEmpty(t, c.Units)
	for _, name := range changed(c.Units) {
		assert.Regexp(t, `^\S+ (starved|blocked|on the critical path)$|^mpca busy$`, name)
	}
	// The FIFOs keep their depths; only their occupancy changes.
	require.NotEmpty(t, c.FIFOs)
	for _, name := range changed(c.FIFOs) {
		assert.Regexp(t, `^\S+ (mean occupancy|time full|time empty)$`, name)
	}
	assert.Empty(t, c.Notes)

	code, stdout, stderr := invoke("-compare", static, balanced)
	require.Equal(t, 0, code, stderr)
	assert.Contains(t, stdout, "settings that differ")
	assert.Regexp(t, `PE max/mean, policy that ran\s+1\.\d+\s+1\.\d+\s+-0\.\d+ \(-\d+\.\d%\)`, stdout)
	assert.NotContains(t, stdout, "no differences")
}

// TestCompareDifferentModels compares what two models share (latency,
// causes, units and FIFOs by name) and says that their layers do not compare.
func TestCompareDifferentModels(t *testing.T) {
	dir := t.TempDir()
	mnist := jsonReport(t, dir, "mnist.json", "-topology", "small")
	deit := jsonReport(t, dir, "deit.json", "-topology", "small", "-model", "deit-tiny", "-images", "1")
	ref := jsonReport(t, dir, "ref.json", "-reference")
	c := comparison(t, mnist, deit, ref)
	var keys []string
	for _, d := range c.Config {
		keys = append(keys, d.Key)
	}
	assert.Contains(t, keys, "model")
	assert.Contains(t, changed(c.Metrics), "latency")
	assert.Empty(t, c.Layers)
	assert.Contains(t, c.Notes, "layers not compared: "+mnist+" is mnist-tiny with 4 layers, "+deit+" is deit-tiny with 12")
	assert.Contains(t, c.Notes, ref+" is a reference run: it has no simulated figures (latency, causes, units, FIFOs)")
	assert.NotEmpty(t, c.Units, "units compare by name")

	code, stdout, stderr := invoke("-compare", mnist, deit)
	require.Equal(t, 0, code, stderr)
	assert.Contains(t, stdout, "note: layers not compared")
}

func TestCompareBadInput(t *testing.T) {
	dir := t.TempDir()
	good := jsonReport(t, dir, "good.json", "-topology", "small")
	file := func(name, content string) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, []byte(content), 0o644))
		return p
	}
	trace := file("trace.json", `{"traceEvents": [{"name": "x", "ph": "X", "ts": 0, "dur": 1}]}`)
	text := file("notes.txt", "model mnist-tiny\n")
	array := file("array.json", `[1, 2]`)
	noLayers := file("nolayers.json", `{"model": "mnist-tiny", "topology": "u250", "fidelity": "detailed", "images": 1, "pruning": {}, "layers": []}`)
	tests := []struct {
		name string
		args []string
		code int
		msg  string
	}{
		{"one report", []string{"-compare", good}, 2, "-compare needs at least two reports"},
		{"no report", []string{"-compare"}, 2, "-compare needs at least two reports"},
		{"a run flag", []string{"-compare", good, good, "-images", "3"}, 2, "-compare takes only -html and -json, not -images"},
		{"a trace", []string{"-compare", good, trace}, 1, "-compare " + trace + ": not a vitflow report (written by run -json): no \"model\" field"},
		{"text", []string{"-compare", text, good}, 1, "not a vitflow report (written by run -json): not JSON"},
		{"an array", []string{"-compare", good, array}, 1, "not a vitflow report (written by run -json): not a JSON object"},
		{"no layers", []string{"-compare", good, noLayers}, 1, "not a vitflow report: no model, images or layers"},
		{"missing", []string{"-compare", good, filepath.Join(dir, "missing.json")}, 1, "no such file or directory"},
		{"a directory", []string{"-compare", good, dir}, 1, "-compare: open " + dir + ": not a regular file but a directory"},
		{"html over an input", []string{"-compare", good, good, "-html", good}, 2, "is the same file as -compare"},
		{"args without -compare", []string{good}, 2, "unexpected argument"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "out.html")
			args := tt.args
			if !slices.Contains(args, "-html") {
				args = append(slices.Clone(args), "-html", out)
			}
			r := invokeWithin(t, args...)
			assertOneLineError(t, r, tt.code, tt.msg)
			assert.NoFileExists(t, out, "nothing written")
		})
	}
	assertContent(t, good, readFile(t, good)) // the inputs are untouched
}
