package report

import (
	"bytes"
	"errors"
	"fmt"
	"html"
	"io"
	"math"
	"slices"
)

// palette colours the chart's op columns in order of first appearance
// (Okabe-Ito and Tableau hues, distinguishable in colour-blind vision).
var palette = []string{"#0072b2", "#56b4e9", "#009e73", "#e69f00", "#f0e442", "#d55e00",
	"#cc79a7", "#332288", "#882255", "#44aa99", "#999933", "#aa4499", "#6699cc", "#888888",
	"#117733", "#88ccee", "#ddcc77", "#cc6677", "#ee8866", "#bbbbbb", "#77aadd", "#eedd88"}

// Chart geometry in SVG user units (pixels).
const (
	chartLeft     = 80  // room for the y-axis labels
	chartTop      = 56  // room for the title
	chartHeight   = 320 // plot area
	chartBottom   = 40  // room for the layer labels
	barWidth      = 16
	groupGap      = 14
	legendWidth   = 150
	minChartWidth = 720
)

// WriteSVG draws image 0's cycles per layer as an SVG bar chart: for each
// layer a simulated bar (absent in a reference run) beside the estimator's,
// both stacked by op and unit, the text table's columns, in its order (each
// segment's tooltip names the op and its cycles), so that a layer's gap to
// the estimator shows which op it comes from. A simulated layer whose ops add
// up to less than its time gets an "other" segment for the rest (waiting on
// the hand-over between stages); ops that overlap stack above the layer's time.
func (r *Report) WriteSVG(w io.Writer) error {
	if len(r.Layers) == 0 {
		return errors.New("report: no layers to chart")
	}
	cols, colour := r.chartColumns()
	sim := !r.Reference
	bars := 1
	if sim {
		bars = 2
	}
	groupWidth := bars*barWidth + groupGap
	plotWidth := len(r.Layers)*groupWidth + groupGap
	width := max(chartLeft+plotWidth+legendWidth, minChartWidth) // the title needs room on small models
	height := chartTop + chartHeight + chartBottom

	top := 0.0
	for _, l := range r.Layers {
		top = max(top, float64(l.EstimatorCycles), stackHeight(l, false))
		if sim {
			top = max(top, float64(l.Cycles), stackHeight(l, true))
		}
	}
	step, ticks := axisTicks(top)
	scale := chartHeight / (step * float64(ticks))
	y := func(c float64) float64 { return chartTop + chartHeight - c*scale }

	var b bytes.Buffer
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="11">`+"\n",
		width, height, width, height)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="white"/>`+"\n", width, height)
	title := fmt.Sprintf("%s on %s (%s", r.Model, r.Topology, r.Fidelity)
	if r.Balance != "" {
		title += ", " + r.Balance
	}
	title += "): cycles of image 0 per layer"
	fmt.Fprintf(&b, `<text x="%d" y="20" font-size="14" font-weight="bold">%s</text>`+"\n", chartLeft, esc(title))
	sub := fmt.Sprintf("estimator %s cycles per image", group(r.EstimatorCyclesPerImage))
	if sim {
		sub = fmt.Sprintf("simulated %s, %s; left bar simulated (S), right bar estimator (E)",
			groupf(r.CyclesPerImage), sub)
	}
	fmt.Fprintf(&b, `<text x="%d" y="38">%s</text>`+"\n", chartLeft, esc(sub))

	for i := 0; i <= ticks; i++ {
		c := step * float64(i)
		fmt.Fprintf(&b, `<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#dddddd"/>`+"\n",
			chartLeft, chartLeft+plotWidth, y(c), y(c))
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" text-anchor="end">%s</text>`+"\n", chartLeft-6, y(c)+4, group(int64(c)))
	}
	fmt.Fprintf(&b, `<text transform="translate(14 %d) rotate(-90)" text-anchor="middle">cycles</text>`+"\n",
		chartTop+chartHeight/2)

	for i, l := range r.Layers {
		x := chartLeft + groupGap + i*groupWidth
		if sim {
			r.writeBar(&b, l, true, x, y, colour)
			x += barWidth
		}
		r.writeBar(&b, l, false, x, y, colour)
		mid := chartLeft + groupGap + i*groupWidth + bars*barWidth/2
		fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="middle">%d</text>`+"\n", mid, chartTop+chartHeight+16, l.Index)
	}
	fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="middle">layer</text>`+"\n",
		chartLeft+plotWidth/2, chartTop+chartHeight+34)

	legendX := chartLeft + plotWidth + 16
	legend := cols
	for _, l := range r.Layers {
		if sim && float64(l.Cycles) > stackHeight(l, true) {
			legend = append(slices.Clone(cols), otherColumn)
			break
		}
	}
	for i, c := range legend {
		ly := chartTop + i*16
		fmt.Fprintf(&b, `<rect x="%d" y="%d" width="10" height="10" fill="%s"/>`, legendX, ly, colour[c])
		fmt.Fprintf(&b, `<text x="%d" y="%d">%s</text>`+"\n", legendX+16, ly+9, esc(c))
	}
	b.WriteString("</svg>\n")
	_, err := w.Write(b.Bytes())
	return err
}

// otherColumn is the part of a simulated layer's time no op accounts for.
const otherColumn = "other"

// chartColumns lists the op columns in order of first appearance and gives each a colour.
func (r *Report) chartColumns() ([]string, map[string]string) {
	cols := r.columns()
	colour := map[string]string{otherColumn: "#cccccc"}
	for i, c := range cols {
		colour[c] = palette[i%len(palette)]
	}
	return cols, colour
}

func stackHeight(l Layer, sim bool) float64 {
	var sum int64
	for _, o := range l.Ops {
		sum += opCycles(o, sim)
	}
	return float64(sum)
}

func opCycles(o Op, sim bool) int64 {
	if sim {
		return o.Cycles
	}
	return o.EstimatorCycles
}

// writeBar stacks one layer's ops from the axis up, in execution order.
func (r *Report) writeBar(b *bytes.Buffer, l Layer, sim bool, x int, y func(float64) float64, colour map[string]string) {
	which, total := "E", l.EstimatorCycles
	if sim {
		which, total = "S", l.Cycles
	}
	base := 0.0
	segment := func(column, name string, c int64) {
		if c <= 0 {
			return
		}
		y0, y1 := y(base), y(base+float64(c))
		fmt.Fprintf(b, `<rect x="%d" y="%.2f" width="%d" height="%.2f" fill="%s"><title>layer %d %s %s: %s cycles</title></rect>`+"\n",
			x, y1, barWidth-1, y0-y1, colour[column], l.Index, which, esc(name), group(c))
		base += float64(c)
	}
	var sum int64
	for _, o := range l.Ops {
		c := opCycles(o, sim)
		segment(o.Name, o.Name, c)
		sum += c
	}
	if sim {
		segment(otherColumn, otherColumn, total-sum)
	}
	fmt.Fprintf(b, `<text x="%d" y="%.1f" text-anchor="middle" font-size="8">%s</text>`+"\n",
		x+barWidth/2, y(max(base, float64(total)))-3, which)
}

// axisTicks picks a round tick step (1, 2 or 5 times a power of ten) and the
// number of steps that cover top.
func axisTicks(top float64) (step float64, ticks int) {
	if top <= 0 {
		return 1, 1
	}
	raw := top / 5
	pow := math.Pow(10, math.Floor(math.Log10(raw)))
	step = 10 * pow
	for _, m := range []float64{1, 2, 5} {
		if m*pow >= raw {
			step = m * pow
			break
		}
	}
	step = max(step, 1) // cycles are whole numbers
	return step, int(math.Ceil(top / step))
}

func esc(s string) string { return html.EscapeString(s) }
