package report

import (
	"bytes"
	"math"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/net/html"
)

// fullReport is a small simulated report with every part the HTML shows.
func fullReport() *Report {
	r := chartReport()
	acc := 0.75
	r.Accuracy = &acc
	r.Images, r.CyclesTotal, r.ClockMHz, r.ImagesPerSecond = 4, 13200, 300, 90909
	r.Bottleneck = "The bottleneck is <MPCA> & co."
	r.Hardware = []Setting{{"mpca.t", "12"}, {"fifo.depths.mpca->gelu", "4"}}
	r.CriticalPath = []GapCause{{"MPCA compute at the fluid bound", 8000, 2000}, {"softmax", 5200, 1300}}
	r.Gap = []GapCause{{"softmax", 5200, 1300}}
	r.Units = []Unit{{Name: "mpca", Busy: 9000, Starved: 3000, Blocked: 200, Utilization: 0.68},
		{Name: "softmax", Busy: 2000, Starved: 11000, Utilization: 0.15}, {Name: "loader0", Busy: 5000, Blocked: 7000, Utilization: 0.38}}
	r.FIFOs = []FIFO{
		{Name: "mpca->softmax", Capacity: 2, Elements: 30, MaxOccupancy: 2, MeanOccupancy: 1.5, FullFraction: 0.5,
			Occupancy: []int64{3300, 3300, 6600}, OccupancyOverTime: []float64{2, 1, 1.5}, BucketCycles: 4400},
		{Name: "weights->chm0", Capacity: 40, Elements: 300, MaxOccupancy: 40, MeanOccupancy: 10,
			Occupancy: make([]int64, 41), OccupancyOverTime: []float64{10, 10}, BucketCycles: 8192},
	}
	r.FIFOs[1].Occupancy[10] = 13200
	for i := range r.Layers {
		for j := range r.Layers[i].Ops {
			if r.Layers[i].Ops[j].Kind == KindMPCA {
				r.Layers[i].Ops[j].Loads = []PolicyLoad{{"ideal", 10, 8}, {"static", 16 + float64(i), 8}, {"balanced", 12, 8}}
			}
		}
	}
	r.Imbalance = []Imbalance{{Policy: "ideal"}, {Policy: "static", Used: true}, {Policy: "balanced"}}
	return r
}

// parseHTML parses a page and returns its elements by tag.
func parseHTML(t *testing.T, page []byte) map[string][]*html.Node {
	t.Helper()
	doc, err := html.Parse(bytes.NewReader(page))
	require.NoError(t, err)
	els := map[string][]*html.Node{}
	var walk func(n *html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode {
			els[n.Data] = append(els[n.Data], n)
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(doc)
	return els
}

func attr(n *html.Node, key string) (string, bool) {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val, true
		}
	}
	return "", false
}

// assertSelfContained checks that a page loads nothing: no script, style,
// image or font from elsewhere.
func assertSelfContained(t *testing.T, page []byte, els map[string][]*html.Node) {
	t.Helper()
	assert.Empty(t, els["link"])
	assert.Empty(t, els["img"])
	assert.Empty(t, els["iframe"])
	for _, s := range els["script"] {
		_, src := attr(s, "src")
		assert.False(t, src, "an inline script")
	}
	for _, tag := range []string{"a", "image", "use"} {
		for _, n := range els[tag] {
			for _, k := range []string{"href", "xlink:href", "src"} {
				v, _ := attr(n, k)
				assert.False(t, strings.Contains(v, ":"), "%s %s=%q points elsewhere", tag, k, v)
			}
		}
	}
	assert.NotRegexp(t, regexp.MustCompile(`url\(|@import|https?://[^"]*\.(js|css|woff2?|ttf|png|svg)`), string(page))
}

func TestWriteHTML(t *testing.T) {
	var b bytes.Buffer
	require.NoError(t, fullReport().WriteHTML(&b))
	page := b.Bytes()
	els := parseHTML(t, page)
	assertSelfContained(t, page, els)
	// The figures: causes, layers, units, occupancy, histograms, PE load, tokens.
	var ids []string
	for _, f := range els["figure"] {
		id, _ := attr(f, "id")
		ids = append(ids, id)
	}
	assert.Equal(t, []string{"plot-causes", "plot-layers", "plot-units", "plot-occupancy", "plot-histograms", "plot-imbalance", "plot-tokens"}, ids)
	assert.Len(t, els["svg"], len(ids), "each figure is one inline SVG")
	layers, err := fullReport().LayerPlotSVG()
	require.NoError(t, err)
	drawing := layers[bytes.Index(layers, []byte("<g ")):]
	assert.True(t, bytes.Contains(page, drawing), "the page's layer plot is the -svg chart")
	assert.NotContains(t, string(page), "<?xml", "no XML declaration inside HTML")
	// Sortable tables with a number to sort every numeric cell by.
	var tables []string
	for _, tb := range els["table"] {
		if c, _ := attr(tb, "class"); strings.Contains(c, "sortable") {
			id, _ := attr(tb, "id")
			tables = append(tables, id)
		}
	}
	assert.Subset(t, tables, []string{"layers", "units", "fifos", "cause-table"})
	for _, td := range els["td"] {
		if v, ok := attr(td, "data-v"); ok {
			assert.Regexp(t, `^-?[0-9.e+-]+$`, v)
		}
	}
	// User text is escaped, and every topology setting is listed.
	s := string(page)
	for _, want := range []string{
		"deit-small &lt;random&gt;",
		"The bottleneck is &lt;MPCA&gt; &amp; co.",
		"<code>fifo.depths.mpca-&gt;gelu</code> = <code>4</code>",
		"75.0% of 4 images",
		"1.650x it (&#43;65.0%)", // simulated 3,300 against the estimator's 2,000
	} {
		assert.True(t, strings.Contains(s, want), "the page has %q", want)
	}
}

func TestWriteHTMLReference(t *testing.T) {
	r := chartReport()
	r.Reference = true
	var b bytes.Buffer
	require.NoError(t, r.WriteHTML(&b))
	els := parseHTML(t, b.Bytes())
	assertSelfContained(t, b.Bytes(), els)
	var ids []string
	for _, f := range els["figure"] {
		id, _ := attr(f, "id")
		ids = append(ids, id)
	}
	assert.Equal(t, []string{"plot-layers", "plot-tokens"}, ids, "a reference run has no units, FIFOs or PE loads")
	assert.Contains(t, b.String(), "reference forward pass only")
	assert.NotContains(t, b.String(), `id="units"`)
}

func TestWriteHTMLErrors(t *testing.T) {
	var b bytes.Buffer
	assert.ErrorIs(t, (&Report{}).WriteHTML(&b), ErrNoLayers)
	assert.Zero(t, b.Len(), "nothing written")
	assert.EqualError(t, fullReport().WriteHTML(fullDisk{}), "disk full")

	// A plot that fails for another reason than having nothing to plot
	// fails the page, in one line, instead of leaving the plot out.
	r := fullReport()
	r.FIFOs[0].OccupancyOverTime[1] = math.NaN()
	b.Reset()
	err := r.WriteHTML(&b)
	require.Error(t, err)
	assert.NotErrorIs(t, err, ErrNothingToPlot)
	assert.Regexp(t, `^plot-occupancy: report: FIFO mpca->softmax: .*NaN`, err.Error())
	assert.NotContains(t, err.Error(), "\n")
	assert.Zero(t, b.Len(), "nothing written")
}

// TestNothingToPlot checks that the plots without data say so with an
// error matching ErrNothingToPlot, each in its own words.
func TestNothingToPlot(t *testing.T) {
	r := &Report{}
	for _, plot := range []func() ([]byte, error){r.LayerPlotSVG, r.UnitPlotSVG, r.OccupancyPlotSVG,
		r.HistogramPlotSVG, r.ImbalancePlotSVG, r.TokensPlotSVG, r.CausePlotSVG} {
		_, err := plot()
		assert.ErrorIs(t, err, ErrNothingToPlot)
		assert.NotEqual(t, ErrNothingToPlot.Error(), err.Error())
	}
	assert.ErrorIs(t, ErrNoLayers, ErrNothingToPlot)
}
