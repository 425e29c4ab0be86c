package report

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// svgText checks that an SVG is well-formed XML and returns its text elements.
func svgText(t *testing.T, data []byte) []string {
	t.Helper()
	dec := xml.NewDecoder(bytes.NewReader(data))
	var texts []string
	inText := false
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err)
		switch tok := tok.(type) {
		case xml.StartElement:
			inText = tok.Name.Local == "text"
		case xml.CharData:
			if inText {
				texts = append(texts, string(tok))
			}
		case xml.EndElement:
			inText = false
		}
	}
	require.NotEmpty(t, texts)
	return texts
}

// fills counts the filled shapes of an SVG by colour.
func fills(data []byte) map[string]int {
	n := map[string]int{}
	for _, m := range regexp.MustCompile(`fill:(#[0-9a-fA-F]{6})`).FindAllSubmatch(data, -1) {
		n[strings.ToLower(string(m[1]))]++
	}
	return n
}

func chartReport() *Report {
	return &Report{Model: "deit-small <random>", Topology: "u250", Fidelity: "detailed", Balance: "static",
		CyclesPerImage: 3300, EstimatorCyclesPerImage: 2000,
		Layers: []Layer{
			{Index: 0, Cycles: 1500, EstimatorCycles: 1000, Ops: []Op{
				{Name: "q", Kind: KindMPCA, Cycles: 600, EstimatorCycles: 400},
				{Name: "fc1", Kind: KindMPCA, Cycles: 700, EstimatorCycles: 600},
				{Name: "softmax", Kind: KindSFU, Cycles: 100},
			}},
			{Index: 1, Cycles: 1800, EstimatorCycles: 1000, Ops: []Op{
				{Name: "q", Kind: KindMPCA, Cycles: 900, EstimatorCycles: 400},
				{Name: "fc1", Kind: KindMPCA, Cycles: 900, EstimatorCycles: 600},
			}},
		}}
}

func TestLayerStacks(t *testing.T) {
	tests := []struct {
		name      string
		reference bool
		want      []Stack
	}{
		{"simulated", false, []Stack{
			{"q", true, []float64{600, 900}},
			{"fc1", true, []float64{700, 900}},
			{"softmax", true, []float64{100, 0}},
			// Layer 0's ops add up to 1,400 of its 1,500 cycles.
			{otherColumn, true, []float64{100, 0}},
			{"q", false, []float64{400, 400}},
			{"fc1", false, []float64{600, 600}},
		}},
		{"reference", true, []Stack{
			{"q", false, []float64{400, 400}},
			{"fc1", false, []float64{600, 600}},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := chartReport()
			r.Reference = tt.reference
			assert.Equal(t, tt.want, r.LayerStacks())
		})
	}
}

func TestWriteSVG(t *testing.T) {
	var buf bytes.Buffer
	require.NoError(t, chartReport().WriteSVG(&buf))
	texts := strings.Join(svgText(t, buf.Bytes()), "\n")
	assert.Contains(t, texts, "deit-small <random> on u250 (detailed, static)", "the title, escaped in the file")
	assert.Contains(t, buf.String(), "deit-small &lt;random&gt;")
	assert.Contains(t, texts, "left bar simulated (3,300 cycles/image), right bar estimator (2,000)")
	for _, legend := range []string{"q", "fc1", "softmax", "other"} {
		assert.Contains(t, svgText(t, buf.Bytes()), legend)
	}
	// One colour per column, one bar per layer and side that has the column
	// (of zero height where the layer spent nothing on it), plus the
	// legend's swatch: q and fc1 are on both sides, softmax and other
	// only on the simulated one.
	n := fills(buf.Bytes())
	assert.Equal(t, 4+1, n["#0072b2"], "q")
	assert.Equal(t, 4+1, n["#e69f00"], "fc1")
	assert.Equal(t, 2+1, n["#009e73"], "softmax")
	assert.Equal(t, 2+1, n["#cccccc"], "other")
}

func TestWriteSVGReference(t *testing.T) {
	r := chartReport()
	r.Reference = true
	var buf bytes.Buffer
	require.NoError(t, r.WriteSVG(&buf))
	texts := strings.Join(svgText(t, buf.Bytes()), "\n")
	assert.NotContains(t, texts, "simulated")
	assert.NotContains(t, texts, "softmax", "the estimator has no softmax column")
	assert.Equal(t, 2+1, fills(buf.Bytes())["#0072b2"], "q: one estimator bar per layer and the legend's")
}

func TestWriteSVGErrors(t *testing.T) {
	assert.EqualError(t, (&Report{}).WriteSVG(io.Discard), "report: no layers to chart")
	assert.EqualError(t, chartReport().WriteSVG(fullDisk{}), "disk full")
}

type fullDisk struct{}

func (fullDisk) Write([]byte) (int, error) { return 0, errors.New("disk full") }
