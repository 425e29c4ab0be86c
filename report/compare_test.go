package report

import (
	"bytes"
	"encoding/json"
	"io"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestReadReport(t *testing.T) {
	good, err := json.Marshal(fullReport())
	require.NoError(t, err)
	tests := []struct {
		name, in, err string
	}{
		{"a report", string(good), ""},
		{"not JSON", "latency 8,446\n", "not a vitflow report (written by run -json): not JSON: invalid character 'l' looking for beginning of value at byte 1"},
		{"an array", "[]", "not a vitflow report (written by run -json): not a JSON object"},
		{"a trace", `{"traceEvents": []}`, `not a vitflow report (written by run -json): no "model" field`},
		{"a field of the wrong type", `{"model": 1, "topology": "", "fidelity": "", "images": 1, "pruning": {}, "layers": []}`,
			"not a vitflow report: json: cannot unmarshal number into Go struct field Report.model of type string"},
		{"empty", "", "not a vitflow report (written by run -json): not JSON: unexpected end of JSON input at byte 0"},
		{"a FIFO of depth 0", `{"model": "m", "topology": "", "fidelity": "", "images": 1, "pruning": {}, "layers": [{}], "fifos": [{"name": "x"}]}`,
			`not a vitflow report: FIFO "x" has depth 0 (a run's FIFOs hold at least 1)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := ReadReport(strings.NewReader(tt.in))
			if tt.err == "" {
				require.NoError(t, err)
				assert.Equal(t, fullReport().Model, r.Model)
				return
			}
			assert.EqualError(t, err, tt.err)
			assert.NotContains(t, err.Error(), "\n")
		})
	}
}

func TestCompareWithItself(t *testing.T) {
	c, err := Compare([]string{"a", "b"}, []*Report{fullReport(), fullReport()})
	require.NoError(t, err)
	assert.Zero(t, c.Differences())
	var b bytes.Buffer
	require.NoError(t, c.WriteText(&b))
	assert.Contains(t, b.String(), "no differences")
	var page bytes.Buffer
	require.NoError(t, c.WriteHTML(&page))
	els := parseHTML(t, page.Bytes())
	assertSelfContained(t, page.Bytes(), els)
	assert.Empty(t, els["tr"][0].Attr, "no row marked changed")
	assert.NotContains(t, page.String(), `class="changed"`)
}

// TestCompareChanges changes a few figures of one report: the comparison
// lists exactly those, and ranks the units and FIFOs by their change.
func TestCompareChanges(t *testing.T) {
	a, b := fullReport(), fullReport()
	b.Balance = "balanced"
	b.CyclesPerImage = 2970
	b.Layers[1].Cycles = 1500
	b.Units[1].Starved = 5000 // softmax: -55%
	b.Units[2].Busy = 5100    // loader0: +2%
	b.FIFOs[0].FullFraction = 0.1
	b.CriticalPath = append(b.CriticalPath, GapCause{Cause: "token dropping module", Cycles: 400, PerImage: 100})
	c, err := Compare([]string{"a.json", "b.json"}, []*Report{a, b})
	require.NoError(t, err)

	assert.Equal(t, []ConfigDiff{{"balance", []string{"static", "balanced"}}}, c.Config)
	var metrics []string
	for _, m := range c.Metrics {
		if m.changed() {
			metrics = append(metrics, m.Name+" "+m.Unit)
		}
	}
	assert.Equal(t, []string{"latency cycles/image"}, metrics)
	names := func(rows []Row) []string {
		var n []string
		for _, r := range rows {
			n = append(n, r.Name)
		}
		return n
	}
	assert.Equal(t, []string{"layer 1 cycles"}, names(c.Layers))
	assert.Equal(t, []string{"token dropping module"}, names(c.Causes))
	assert.Nil(t, c.Causes[0].Values[0], "a cause only the second run has")
	assert.Equal(t, []string{"softmax starved", "loader0 busy"}, names(c.Units), "the largest relative change first")
	assert.Equal(t, []string{"mpca->softmax time full"}, names(c.FIFOs))

	var text bytes.Buffer
	require.NoError(t, c.WriteText(&text))
	for _, want := range []string{
		`balance\s+static\s+balanced\n`,
		`latency \(cycles/image\)\s+3,300\s+2,970\s+-330 \(-10\.0%\)\n`,
		`latency \(µs/image\)\s+0\s+0\n`, // unchanged: no change column
		`token dropping module \(cycles/image\)\s+-\s+100\n`,
		`softmax starved \(cycles\)\s+11,000\s+5,000\s+-6,000 \(-54\.5%\)\n`,
		`mpca->softmax time full\s+50\.0%\s+10\.0%\s+-40\.0 pt\n`,
	} {
		assert.Regexp(t, want, text.String())
	}
}

// TestCompareReferenceRun names a reference run, which has no balancing
// policy, without an empty one.
func TestCompareReferenceRun(t *testing.T) {
	ref := fullReport()
	ref.Reference, ref.Balance = true, ""
	c, err := Compare([]string{"sim.json", "ref.json"}, []*Report{fullReport(), ref})
	require.NoError(t, err)
	var text bytes.Buffer
	require.NoError(t, c.WriteText(&text))
	assert.Regexp(t, `run 1\s+sim.json \(the baseline\): deit-small <random> on u250, static\n`, text.String())
	assert.Regexp(t, `run 2\s+ref.json \(compared with the baseline\): deit-small <random> on u250\n`, text.String())
	var page bytes.Buffer
	require.NoError(t, c.WriteHTML(&page))
	assert.Contains(t, page.String(), "<td>sim.json: vitflow: deit-small &lt;random&gt; on u250, static balancing</td>")
	assert.Contains(t, page.String(), "<td>ref.json: vitflow: deit-small &lt;random&gt;, reference run</td>")
	assert.NotContains(t, page.String(), ",  balancing")
}

func TestCompareErrors(t *testing.T) {
	_, err := Compare([]string{"a"}, []*Report{fullReport()})
	assert.EqualError(t, err, "report: compare needs at least two reports, each with a name")
	_, err = Compare([]string{"a"}, []*Report{fullReport(), fullReport()})
	assert.Error(t, err)
}

// FuzzReadReport feeds ReadReport arbitrary bytes: it never panics, a
// report it accepts compares with itself with no differences, and its page
// and text render.
func FuzzReadReport(f *testing.F) {
	good, err := json.Marshal(fullReport())
	require.NoError(f, err)
	f.Add(good)
	f.Add([]byte(`{"model": "m", "topology": "t", "fidelity": "ideal", "images": 1, "pruning": {}, "layers": [{"index": 0}]}`))
	f.Add([]byte(`{"traceEvents": []}`))
	f.Add([]byte(`[]`))
	f.Add([]byte(`{"model": "m", "topology": "t", "fidelity": "f", "images": 2, "pruning": {}, "layers": [{}], "units": [{"name": "a"}, {"name": "a"}], "fifos": [{"name": "x", "capacity": 1}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := ReadReport(bytes.NewReader(data))
		if err != nil {
			assert.NotContains(t, err.Error(), "\n")
			return
		}
		require.NotEmpty(t, r.Model)
		require.NotEmpty(t, r.Layers)
		r2, err := ReadReport(bytes.NewReader(data))
		require.NoError(t, err)
		c, err := Compare([]string{"a", "b"}, []*Report{r, r2})
		require.NoError(t, err)
		assert.Zero(t, c.Differences(), "a report compared with itself")
		require.NoError(t, c.WriteText(io.Discard))
		require.NoError(t, r.WriteText(io.Discard))
		// Figures no run makes (1e300 cycles) may overflow a plot: that is
		// a one-line error, never a panic or a half page.
		for _, write := range []func(io.Writer) error{c.WriteHTML, r.WriteHTML} {
			if err := write(io.Discard); err != nil {
				assert.NotContains(t, err.Error(), "\n")
			}
		}
	})
}
