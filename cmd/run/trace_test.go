package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestTraceFlags: the trace's image, layer and cap flags are validated
// with one-line usage errors.
func TestTraceFlags(t *testing.T) {
	out := filepath.Join(t.TempDir(), "t.json")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-trace-images", "0"}, "-trace-images chooses what -trace records: use it with -trace FILE"},
		{[]string{"-trace-layers", "1"}, "-trace-layers chooses what -trace records"},
		{[]string{"-trace-events", "10"}, "-trace-events chooses what -trace records"},
		{[]string{"-trace", out, "-images", "2", "-trace-images", "2"}, "-trace-images: image 2 is not in the run: it has images 0..1"},
		{[]string{"-trace", out, "-trace-layers", "3-4"}, "-trace-layers: layer 4 out of range: mnist-tiny has layers 0..3"},
		{[]string{"-trace", out, "-trace-layers", "2-1"}, `"2-1" is not an index or a range`},
		{[]string{"-trace", out, "-trace-layers", "x"}, `"x" is not an index or a range`},
		{[]string{"-trace", out, "-trace-layers", "-1"}, `"-1" is not an index or a range`},
		{[]string{"-trace", out, "-trace-images", "0-99999999"}, `"0-99999999" is not an index or a range of indices from 0 to 65535`},
		{[]string{"-trace", out, "-trace-images", "1,0-1"}, "1 is listed twice"},
		{[]string{"-trace", out, "-trace-events", "0"}, "-trace-events 0: must be in 1..100000000"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			code, stdout, stderr := invoke(tc.args...)
			assert.Equal(t, 2, code, stderr)
			assert.Empty(t, stdout)
			assert.Equal(t, 1, strings.Count(stderr, "\n"), "one line: %q", stderr)
			assert.Contains(t, stderr, tc.want)
			_, err := os.Stat(out)
			assert.ErrorIs(t, err, os.ErrNotExist, "no trace is written")
		})
	}
}

// TestTraceChosenAndCapped traces chosen images and layers, and a capped
// trace says so on stderr and in the trace.
func TestTraceChosenAndCapped(t *testing.T) {
	dir := t.TempDir()
	read := func(path string) []map[string]any {
		data, err := os.ReadFile(path)
		require.NoError(t, err)
		var doc struct {
			TraceEvents []map[string]any `json:"traceEvents"`
		}
		require.NoError(t, json.Unmarshal(data, &doc))
		return doc.TraceEvents
	}

	path := filepath.Join(dir, "chosen.json")
	code, _, stderr := invoke("-topology", "small", "-images", "3", "-trace", path, "-trace-images", "2", "-trace-layers", "1-2")
	require.Equal(t, 0, code, stderr)
	assert.Empty(t, stderr)
	slices := 0
	for _, e := range read(path) {
		if e["ph"] == "X" {
			slices++
			args := e["args"].(map[string]any)
			assert.EqualValues(t, 2, args["image"], "%v", e["name"])
			assert.Contains(t, []any{1.0, 2.0}, args["layer"], "%v", e["name"])
		}
	}
	assert.Positive(t, slices)

	path = filepath.Join(dir, "capped.json")
	code, _, stderr = invoke("-topology", "small", "-images", "2", "-trace", path, "-trace-events", "500")
	require.Equal(t, 0, code, stderr)
	assert.Contains(t, stderr, "note: the trace stops at cycle ")
	assert.Contains(t, stderr, "cap of 500 events")
	marked := false
	for _, e := range read(path) {
		if name, _ := e["name"].(string); strings.HasPrefix(name, "trace truncated here") {
			marked = true
		}
	}
	assert.True(t, marked, "the cut is marked in the trace")
}
