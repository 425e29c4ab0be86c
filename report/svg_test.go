package report

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// svgRect is a bar segment: its height and its tooltip.
type svgRect struct {
	Height float64
	Fill   string
	Title  string
}

// parseSVG checks that the chart is well-formed XML and returns its rects after the background.
func parseSVG(t *testing.T, data []byte) []svgRect {
	t.Helper()
	dec := xml.NewDecoder(bytes.NewReader(data))
	var rects []svgRect
	inTitle := false
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err)
		switch tok := tok.(type) {
		case xml.StartElement:
			if tok.Name.Local == "rect" {
				var r svgRect
				for _, a := range tok.Attr {
					switch a.Name.Local {
					case "height":
						r.Height, err = strconv.ParseFloat(a.Value, 64)
						require.NoError(t, err)
					case "fill":
						r.Fill = a.Value
					}
				}
				rects = append(rects, r)
			}
			inTitle = tok.Name.Local == "title"
		case xml.CharData:
			if inTitle {
				rects[len(rects)-1].Title = string(tok)
			}
		case xml.EndElement:
			inTitle = false
		}
	}
	require.NotEmpty(t, rects)
	return rects[1:]
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

func TestWriteSVG(t *testing.T) {
	var buf bytes.Buffer
	require.NoError(t, chartReport().WriteSVG(&buf))
	rects := parseSVG(t, buf.Bytes())
	var bars []svgRect
	for _, r := range rects {
		if r.Title != "" {
			bars = append(bars, r)
		}
	}
	titles := make([]string, len(bars))
	for i, r := range bars {
		titles[i] = r.Title
	}
	assert.Equal(t, []string{
		"layer 0 S q: 600 cycles", "layer 0 S fc1: 700 cycles", "layer 0 S softmax: 100 cycles", "layer 0 S other: 100 cycles",
		"layer 0 E q: 400 cycles", "layer 0 E fc1: 600 cycles",
		"layer 1 S q: 900 cycles", "layer 1 S fc1: 900 cycles",
		"layer 1 E q: 400 cycles", "layer 1 E fc1: 600 cycles",
	}, titles)
	// Heights are proportional to cycles, one colour per op column.
	unit := bars[0].Height / 600
	for i, want := range []float64{600, 700, 100, 100, 400, 600, 900, 900, 400, 600} {
		assert.InDelta(t, want*unit, bars[i].Height, 0.02, titles[i])
	}
	assert.Equal(t, bars[0].Fill, bars[4].Fill)
	assert.NotEqual(t, bars[0].Fill, bars[1].Fill)
	// The tallest bar (1,800 cycles) fits under the top tick, 2,000.
	assert.InDelta(t, chartHeight, 2000*unit, 0.5)
	assert.Contains(t, buf.String(), "deit-small &lt;random&gt; on u250 (detailed, static)")
	assert.Contains(t, buf.String(), "simulated 3,300, estimator 2,000 cycles per image")
}

func TestWriteSVGReference(t *testing.T) {
	r := chartReport()
	r.Reference = true
	var buf bytes.Buffer
	require.NoError(t, r.WriteSVG(&buf))
	for _, rect := range parseSVG(t, buf.Bytes()) {
		assert.NotContains(t, rect.Title, " S ", "a reference run has no simulated bars")
	}
	assert.NotContains(t, buf.String(), "simulated")
	assert.Equal(t, 4, strings.Count(buf.String(), "<title>layer"))
}

func TestWriteSVGErrors(t *testing.T) {
	assert.EqualError(t, (&Report{}).WriteSVG(io.Discard), "report: no layers to chart")
	assert.EqualError(t, chartReport().WriteSVG(fullDisk{}), "disk full")
}

type fullDisk struct{}

func (fullDisk) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestAxisTicks(t *testing.T) {
	tests := []struct {
		top   float64
		step  float64
		ticks int
	}{
		{1800, 500, 4}, {958464, 200000, 5}, {100, 20, 5}, {3, 1, 3}, {0, 1, 1}, {101, 50, 3},
	}
	for _, tt := range tests {
		step, ticks := axisTicks(tt.top)
		assert.Equal(t, tt.step, step, "top %v", tt.top)
		assert.Equal(t, tt.ticks, ticks, "top %v", tt.top)
	}
}
