package report

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"image/color"
	"math"
	"slices"
	"strconv"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgsvg"
)

// The plots are drawn with gonum.org/v1/plot, which lays out axes, ticks and
// legends and renders SVG (and PNG or PDF, should they be wanted) from the
// same plot, instead of the hand-placed SVG elements of before.

// palette colours categories (ops, runs) in order of first appearance: the
// Okabe-Ito colours, then Paul Tol's muted set, all distinguishable in the
// common forms of colour blindness, and of different lightness for print.
var palette = []color.Color{
	hex(0x0072b2), hex(0xe69f00), hex(0x009e73), hex(0x56b4e9), hex(0xd55e00), hex(0xcc79a7),
	hex(0xf0e442), hex(0x000000), hex(0x332288), hex(0x88ccee), hex(0x44aa99), hex(0x117733),
	hex(0x999933), hex(0xddcc77), hex(0xcc6677), hex(0x882255), hex(0xaa4499), hex(0x888888),
	hex(0x6699cc), hex(0xee8866), hex(0xbbbbbb), hex(0x77aadd),
}

// The colours of busy, starved and blocked cycles, and of "other" (the part
// of a layer's time no op accounts for).
var (
	busyColour    = hex(0x0072b2)
	starvedColour = hex(0xe69f00)
	blockedColour = hex(0xd55e00)
	otherColour   = hex(0xcccccc)
)

func hex(v uint32) color.Color {
	return color.RGBA{R: uint8(v >> 16), G: uint8(v >> 8), B: uint8(v), A: 0xff}
}

// colourOf is the i-th category's colour.
func colourOf(i int) color.Color { return palette[i%len(palette)] }

// Plot sizes.
const (
	plotWidth  = 7.5 * vg.Inch
	plotHeight = 3.6 * vg.Inch
)

// newPlot returns a plot with a sans-serif font throughout (the default is
// serif) and a title.
func newPlot(title string) *plot.Plot {
	p := plot.New()
	sans := func(f *font.Font) { f.Variant = "Sans" }
	sans(&p.Title.TextStyle.Font)
	for _, a := range []*plot.Axis{&p.X, &p.Y} {
		sans(&a.Label.TextStyle.Font)
		sans(&a.Tick.Label.Font)
	}
	sans(&p.Legend.TextStyle.Font)
	p.Title.Text = title
	p.Title.TextStyle.Font.Size = 12
	p.Legend.TextStyle.Font.Size = 9
	p.X.Tick.Label.Font.Size = 9
	p.Y.Tick.Label.Font.Size = 9
	p.X.Label.TextStyle.Font.Size = 10
	p.Y.Label.TextStyle.Font.Size = 10
	return p
}

// newLegend returns a legend for the right of a plot, outside its data
// area (a legend inside hides the bars it names).
func newLegend() *plot.Legend {
	l := plot.NewLegend()
	l.TextStyle.Font.Variant = "Sans"
	l.TextStyle.Font.Size = 9
	l.Top = true
	l.YOffs = -vg.Points(22) // below the title
	return &l
}

// numberTicks are five to ten round ticks (1, 2, 2.5 or 5 times a power of
// ten apart) labelled with thousands separators and no needless decimals: the
// default has two or three, labelled 2500 cycles "2500.00".
var numberTicks = plot.TickerFunc(func(lo, hi float64) []plot.Tick {
	step := niceStep((hi - lo) / 6)
	decimals := 0
	for decimals < 6 && math.Abs(step*math.Pow(10, float64(decimals))-math.Round(step*math.Pow(10, float64(decimals)))) > 1e-9 {
		decimals++
	}
	var ticks []plot.Tick
	for k := math.Ceil(lo / step); k*step <= hi+step*1e-9; k++ {
		v := k * step
		label := groupf(v)
		if math.Abs(v) < 100 {
			label = strconv.FormatFloat(v, 'f', decimals, 64)
		}
		ticks = append(ticks, plot.Tick{Value: v, Label: label})
	}
	return ticks
})

// niceStep is the smallest of 1, 2, 2.5 and 5 times a power of ten at least raw.
func niceStep(raw float64) float64 {
	if !(raw > 0) || math.IsInf(raw, 0) {
		return 1
	}
	pow := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 2.5, 5} {
		if m*pow >= raw*(1-1e-9) {
			return m * pow
		}
	}
	return 10 * pow
}

// renderSVG draws p on a w×h SVG canvas, with legend (if not nil) at the
// right, outside the plot.
func renderSVG(p *plot.Plot, legend *plot.Legend, w, h vg.Length) ([]byte, error) {
	c := vgsvg.New(w, h)
	drawWithLegend(draw.New(c), p, legend)
	var b bytes.Buffer
	if _, err := c.WriteTo(&b); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// drawWithLegend draws p on dc with legend (if not nil) at the right,
// outside the plot.
func drawWithLegend(dc draw.Canvas, p *plot.Plot, legend *plot.Legend) {
	if legend == nil {
		p.Draw(dc)
		return
	}
	r := legend.Rectangle(dc)
	p.Draw(draw.Crop(dc, 0, -(r.Max.X-r.Min.X)-vg.Points(10), 0, 0))
	legend.Draw(dc)
}

// bars returns a bar chart of vs with no outline.
func bars(vs []float64, width vg.Length, c color.Color) *plotter.BarChart {
	b, err := plotter.NewBarChart(plotter.Values(vs), width)
	if err != nil {
		panic(err) // width is a positive constant, and Values accepts any finite numbers
	}
	b.Color = c
	b.LineStyle.Width = 0
	return b
}

// finite replaces NaN and infinities, which the plotter refuses, by zero.
func finite(vs []float64) []float64 {
	for i, v := range vs {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			vs[i] = 0
		}
	}
	return vs
}

// Stack is one stacked bar series of the per-layer chart: one op's (or
// "other"'s) cycles in each layer, simulated or from the estimator.
type Stack struct {
	Column    string
	Simulated bool
	Cycles    []float64 // per layer, in r.Layers order
}

// otherColumn is the part of a simulated layer's time no op accounts for.
const otherColumn = "other"

// LayerStacks returns the series of the per-layer chart, bottom up: for each
// op column in the text table's order the simulated cycles (absent in a
// reference run), then the same for the estimator. A simulated layer whose
// ops add up to less than its time gets an "other" segment for the rest
// (waiting on the hand-over between stages); ops that overlap stack above
// the layer's time. Columns that are zero everywhere are left out.
func (r *Report) LayerStacks() []Stack {
	cols := r.columns()
	var out []Stack
	for _, sim := range []bool{true, false} {
		if sim && r.Reference {
			continue
		}
		for _, c := range cols {
			s := Stack{Column: c, Simulated: sim, Cycles: make([]float64, len(r.Layers))}
			used := false
			for i, l := range r.Layers {
				for _, o := range l.Ops {
					if o.Name == c {
						s.Cycles[i] += float64(opCycles(o, sim))
					}
				}
				used = used || s.Cycles[i] > 0
			}
			if used {
				out = append(out, s)
			}
		}
		if !sim {
			continue
		}
		other := Stack{Column: otherColumn, Simulated: true, Cycles: make([]float64, len(r.Layers))}
		used := false
		for i, l := range r.Layers {
			var sum int64
			for _, o := range l.Ops {
				sum += o.Cycles
			}
			if rest := l.Cycles - sum; rest > 0 {
				other.Cycles[i] = float64(rest)
				used = true
			}
		}
		if used {
			out = append(out, other)
		}
	}
	return out
}

func opCycles(o Op, sim bool) int64 {
	if sim {
		return o.Cycles
	}
	return o.EstimatorCycles
}

// ErrNothingToPlot is what a plot's error matches (errors.Is) when the
// report has no data for the plot (a reference run has no units, for
// instance): the HTML page leaves such a plot out, and fails on any other
// error.
var ErrNothingToPlot = errors.New("report: nothing to plot")

// noData is a plot's error when the report has nothing for it: its own
// message, matching ErrNothingToPlot.
type noData string

func (e noData) Error() string        { return string(e) }
func (e noData) Is(target error) bool { return target == ErrNothingToPlot }

// ErrNoLayers is returned when a report has no layers to chart; it matches
// ErrNothingToPlot.
var ErrNoLayers error = noData("report: no layers to chart")

// LayerPlotSVG draws image 0's cycles per layer: for each layer a simulated
// bar (absent in a reference run) beside the estimator's, both stacked by op
// and unit (LayerStacks), so that a layer's gap to the estimator shows
// which op it comes from.
func (r *Report) LayerPlotSVG() ([]byte, error) {
	if len(r.Layers) == 0 {
		return nil, ErrNoLayers
	}
	title := fmt.Sprintf("%s on %s (%s", r.Model, r.Topology, r.Fidelity)
	if r.Balance != "" {
		title += ", " + r.Balance
	}
	title += "): cycles of image 0 per layer"
	p := newPlot(title)
	sim := !r.Reference
	if sim {
		p.X.Label.Text = fmt.Sprintf("layer: left bar simulated (%s cycles/image), right bar estimator (%s)",
			groupf(r.CyclesPerImage), group(r.EstimatorCyclesPerImage))
	} else {
		p.X.Label.Text = fmt.Sprintf("layer: estimator (%s cycles/image)", group(r.EstimatorCyclesPerImage))
	}
	p.Y.Label.Text = "cycles"
	width := barWidth(len(r.Layers), 2)
	colour := map[string]color.Color{otherColumn: otherColour}
	for i, c := range r.columns() {
		colour[c] = colourOf(i)
	}
	var below [2]*plotter.BarChart
	seen := map[string]bool{}
	legend := newLegend()
	p.Y.Tick.Marker = numberTicks
	for _, s := range r.LayerStacks() {
		b := bars(s.Cycles, width, colour[s.Column])
		k := 1
		if s.Simulated {
			k = 0
		}
		if sim {
			b.Offset = vg.Length(2*k-1) * width / 2
		}
		if below[k] != nil {
			b.StackOn(below[k])
		}
		below[k] = b
		p.Add(b)
		if !seen[s.Column] {
			seen[s.Column] = true
			legend.Add(s.Column, b)
		}
	}
	names := make([]string, len(r.Layers))
	for i, l := range r.Layers {
		names[i] = strconv.Itoa(l.Index)
	}
	p.NominalX(names...)
	p.Add(plotter.NewGrid())
	return renderSVG(p, legend, plotWidth+1.2*vg.Inch, plotHeight+vg.Inch)
}

// barWidth fits n groups of k bars in the plot width.
func barWidth(n, k int) vg.Length {
	w := (plotWidth - vg.Inch) / vg.Length(n*k+n)
	return min(max(w, 2), 28)
}

// UnitPlotSVG draws each unit's busy, starved and blocked cycles over the
// whole run as stacked horizontal bars, the busiest at the top.
func (r *Report) UnitPlotSVG() ([]byte, error) {
	if len(r.Units) == 0 {
		return nil, noData("report: no units to chart (a reference run has none)")
	}
	units := slices.Clone(r.Units)
	// The plotter draws the first value at the bottom: least busy first.
	slices.SortStableFunc(units, func(a, b Unit) int {
		if c := cmp.Compare(a.Busy, b.Busy); c != 0 {
			return c
		}
		return cmp.Compare(b.Name, a.Name)
	})
	p := newPlot(fmt.Sprintf("units over the run (%s cycles): busy, starved (waiting for input), blocked (waiting for space)", group(r.CyclesTotal)))
	p.X.Label.Text = "cycles"
	n := len(units)
	w := min(max((plotHeight+vg.Length(n)*14-vg.Inch)/vg.Length(n+1), 3), 14)
	var names []string
	var prev *plotter.BarChart
	legend := newLegend()
	p.X.Tick.Marker = numberTicks
	for _, part := range []struct {
		name   string
		colour color.Color
		value  func(Unit) int64
	}{
		{"busy", busyColour, func(u Unit) int64 { return u.Busy }},
		{"starved", starvedColour, func(u Unit) int64 { return u.Starved }},
		{"blocked", blockedColour, func(u Unit) int64 { return u.Blocked }},
	} {
		vs := make([]float64, n)
		for i, u := range units {
			vs[i] = float64(part.value(u))
		}
		b := bars(vs, w, part.colour)
		b.Horizontal = true
		if prev != nil {
			b.StackOn(prev)
		}
		prev = b
		p.Add(b)
		legend.Add(part.name, b)
	}
	for _, u := range units {
		names = append(names, u.Name)
	}
	p.NominalY(names...)
	p.Add(plotter.NewGrid())
	return renderSVG(p, legend, plotWidth+0.8*vg.Inch, vg.Length(n)*14+1.3*vg.Inch)
}

// meanFill is a FIFO's time-weighted mean occupancy over its capacity.
func (f FIFO) meanFill() float64 {
	if f.Capacity == 0 {
		return 0
	}
	return f.MeanOccupancy / float64(f.Capacity)
}

// FIFOsByMeanFill returns up to n FIFOs by time-weighted mean occupancy over
// capacity, highest first (ties by name), leaving out FIFOs never used.
func FIFOsByMeanFill(fifos []FIFO, n int) []FIFO {
	var used []FIFO
	for _, f := range fifos {
		if f.MeanOccupancy > 0 {
			used = append(used, f)
		}
	}
	return top(used, n, FIFO.meanFill, func(f FIFO) string { return f.Name })
}

// meanFillShown is the number of FIFOs the occupancy-over-time plot shows.
const meanFillShown = 6

// OccupancyPlotSVG draws the occupancy over simulated time, as a fraction
// of the depth, of the FIFOs with the highest mean fill (FIFOsByMeanFill).
func (r *Report) OccupancyPlotSVG() ([]byte, error) {
	fifos := FIFOsByMeanFill(r.FIFOs, meanFillShown)
	if len(fifos) == 0 {
		return nil, noData("report: no FIFO occupancy to chart (a reference run has none)")
	}
	p := newPlot(fmt.Sprintf("occupancy over simulated time of the %d FIFOs with the highest mean fill", len(fifos)))
	p.X.Label.Text = "simulated cycle"
	p.Y.Label.Text = "mean occupancy / depth"
	p.Y.Min, p.Y.Max = 0, 1
	p.Y.Tick.Marker = numberTicks
	p.X.Tick.Marker = numberTicks
	legend := newLegend()
	for i, f := range fifos {
		xys := make(plotter.XYs, 0, 2*len(f.OccupancyOverTime))
		for j, m := range f.OccupancyOverTime {
			from := float64(int64(j) * f.BucketCycles)
			to := min(from+float64(f.BucketCycles), float64(r.CyclesTotal))
			y := m / float64(f.Capacity)
			xys = append(xys, plotter.XY{X: from, Y: y}, plotter.XY{X: to, Y: y})
		}
		l, err := plotter.NewLine(xys)
		if err != nil {
			return nil, fmt.Errorf("report: FIFO %s: %w", f.Name, err)
		}
		l.Color = colourOf(i)
		l.Width = vg.Points(1.2)
		// Dashes tell the lines apart in grey print too.
		l.Dashes = [][]vg.Length{nil, {vg.Points(5), vg.Points(2)}, {vg.Points(1), vg.Points(2)},
			{vg.Points(6), vg.Points(2), vg.Points(1), vg.Points(2)}, {vg.Points(3), vg.Points(3)}, {vg.Points(9), vg.Points(3)}}[i%6]
		p.Add(l)
		legend.Add(fmt.Sprintf("%s (depth %d)", f.Name, f.Capacity), l)
	}
	p.Add(plotter.NewGrid())
	return renderSVG(p, legend, plotWidth+2*vg.Inch, plotHeight)
}

// histogramBins is the most bars of one FIFO's occupancy histogram: deeper
// FIFOs have their levels grouped.
const histogramBins = 32

// OccupancyBins groups f's time-weighted occupancy histogram into at most
// histogramBins bins of equal width: the fraction of the run in each, and
// each bin's lowest occupancy.
func (f FIFO) OccupancyBins() ([]float64, []int) {
	levels := len(f.Occupancy)
	if levels == 0 {
		return nil, nil
	}
	per := (levels + histogramBins - 1) / histogramBins
	var total int64
	for _, c := range f.Occupancy {
		total += c
	}
	var fr []float64
	var lows []int
	for lo := 0; lo < levels; lo += per {
		hi := min(lo+per, levels) - 1
		var sum int64
		for _, c := range f.Occupancy[lo : hi+1] {
			sum += c
		}
		v := 0.0
		if total > 0 {
			v = float64(sum) / float64(total)
		}
		fr = append(fr, v)
		lows = append(lows, lo)
	}
	return fr, lows
}

// histogramColumns is the number of histograms in a row.
const histogramColumns = 4

// HistogramPlotSVG draws every FIFO's time-weighted occupancy histogram
// (the fraction of the run spent at each occupancy), small multiples in
// rows of histogramColumns, in the order of r.FIFOs.
func (r *Report) HistogramPlotSVG() ([]byte, error) {
	var fifos []FIFO
	for _, f := range r.FIFOs {
		if len(f.Occupancy) > 0 {
			fifos = append(fifos, f)
		}
	}
	if len(fifos) == 0 {
		return nil, noData("report: no FIFO histograms to chart (a reference run, or a report without them)")
	}
	rows := (len(fifos) + histogramColumns - 1) / histogramColumns
	plots := make([][]*plot.Plot, rows)
	for i := range plots {
		plots[i] = make([]*plot.Plot, histogramColumns)
	}
	for i, f := range fifos {
		fr, lows := f.OccupancyBins()
		p := newPlot(fmt.Sprintf("%s (depth %d)", f.Name, f.Capacity))
		p.Title.TextStyle.Font.Size = 8
		p.X.Tick.Label.Font.Size = 6
		p.Y.Tick.Label.Font.Size = 6
		p.Y.Min, p.Y.Max = 0, 1
		p.Y.Tick.Marker = numberTicks
		p.X.Label.Text = "occupancy"
		p.X.Label.TextStyle.Font.Size = 7
		b := bars(fr, (1.8*vg.Inch-vg.Length(30))/vg.Length(len(fr)+1), colourOf(0))
		p.Add(b)
		// Label the first, middle and last bins of many: all would overlap.
		names := make([]string, len(lows))
		for k, lo := range lows {
			if len(lows) <= 8 || k == 0 || k == len(lows)/2 || k == len(lows)-1 {
				names[k] = strconv.Itoa(lo)
			}
		}
		p.NominalX(names...)
		plots[i/histogramColumns][i%histogramColumns] = p
	}
	const tileW, tileH = 1.9 * vg.Inch, 1.5 * vg.Inch
	w, h := tileW*histogramColumns, tileH*vg.Length(rows)+0.3*vg.Inch
	c := vgsvg.New(w, h)
	dc := draw.New(c)
	// A heading for the whole grid, above the tiles.
	head := newPlot("").Title.TextStyle
	head.Font.Size = 11
	head.XAlign = draw.XCenter
	head.YAlign = draw.YTop
	dc.FillText(head, vg.Point{X: w / 2, Y: h - 2}, "time-weighted occupancy of each FIFO: fraction of the run at each occupancy")
	grid := draw.Crop(dc, 0, 0, 0, -0.3*vg.Inch)
	tiles := draw.Tiles{Rows: rows, Cols: histogramColumns, PadX: vg.Points(4), PadY: vg.Points(4)}
	canvases := plot.Align(plots, tiles, grid)
	for i := range plots {
		for j, p := range plots[i] {
			if p != nil {
				p.Draw(canvases[i][j])
			}
		}
	}
	var b bytes.Buffer
	if _, err := c.WriteTo(&b); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// OpLoad is an MPCA op's PE load under one policy over image 0's layers:
// the mean of the layers' max/mean PE load, and its smallest and largest.
type OpLoad struct {
	Op, Policy     string
	Mean, Min, Max float64
}

// OpLoads returns the PE load of each MPCA op (in execution order) under
// each policy the report has, over image 0's layers.
func (r *Report) OpLoads() []OpLoad {
	type key struct{ op, policy string }
	acc := map[key]*OpLoad{}
	count := map[key]int{}
	var order []key
	for _, l := range r.Layers {
		for _, o := range l.Ops {
			for _, pl := range o.Loads {
				if pl.Mean == 0 {
					continue // no PE worked: the op has no imbalance to show
				}
				k := key{o.Name, pl.Policy}
				v := pl.Max / pl.Mean
				a, ok := acc[k]
				if !ok {
					a = &OpLoad{Op: o.Name, Policy: pl.Policy, Min: v, Max: v}
					acc[k] = a
					order = append(order, k)
				}
				a.Mean += v
				a.Min, a.Max = min(a.Min, v), max(a.Max, v)
				count[k]++
			}
		}
	}
	out := make([]OpLoad, len(order))
	for i, k := range order {
		out[i] = *acc[k]
		out[i].Mean /= float64(count[k])
	}
	return out
}

// glyphs tell the policies apart without colour.
var glyphs = []draw.GlyphDrawer{draw.CircleGlyph{}, draw.TriangleGlyph{}, draw.BoxGlyph{}, draw.PyramidGlyph{}, draw.CrossGlyph{}}

// ImbalancePlotSVG draws each MPCA op's PE load imbalance (the busiest PE's
// work over the mean PE's) under each balancing policy: a mark at the mean
// over the layers, a bar from the smallest to the largest layer's.
func (r *Report) ImbalancePlotSVG() ([]byte, error) {
	loads := r.OpLoads()
	if len(loads) == 0 {
		return nil, noData("report: no PE loads to chart (a reference run, or a report without them)")
	}
	var ops, policies []string
	for _, l := range loads {
		if !slices.Contains(ops, l.Op) {
			ops = append(ops, l.Op)
		}
		if !slices.Contains(policies, l.Policy) {
			policies = append(policies, l.Policy)
		}
	}
	p := newPlot("PE load per MPCA op under each balancing policy (max/mean PE work; bars: the layers' spread)")
	p.Y.Label.Text = "busiest PE / mean PE"
	p.X.Label.Text = "MPCA op"
	p.Y.Min = 1
	p.Y.Tick.Marker = numberTicks
	legend := newLegend()
	for k, pol := range policies {
		var pts errPoints
		for _, l := range loads {
			if l.Policy != pol {
				continue
			}
			x := float64(slices.Index(ops, l.Op)) + (float64(k)-float64(len(policies)-1)/2)*0.22
			pts.XYs = append(pts.XYs, plotter.XY{X: x, Y: l.Mean})
			pts.YErrors = append(pts.YErrors, struct{ Low, High float64 }{l.Mean - l.Min, l.Max - l.Mean})
		}
		s, err := plotter.NewScatter(pts.XYs)
		if err != nil {
			return nil, fmt.Errorf("report: PE loads: %w", err)
		}
		s.GlyphStyle.Color = colourOf(k)
		s.GlyphStyle.Shape = glyphs[k%len(glyphs)]
		s.GlyphStyle.Radius = vg.Points(3.5)
		e, err := plotter.NewYErrorBars(pts)
		if err != nil {
			return nil, fmt.Errorf("report: PE loads: %w", err)
		}
		e.LineStyle.Color = colourOf(k)
		e.LineStyle.Width = vg.Points(1)
		p.Add(e, s)
		name := pol
		for _, im := range r.Imbalance {
			if im.Policy == pol && im.Used {
				name += " (ran)"
			}
		}
		legend.Add(name, s)
	}
	p.NominalX(ops...)
	p.Add(plotter.NewGrid())
	return renderSVG(p, legend, plotWidth+vg.Inch, plotHeight)
}

// errPoints are points with asymmetric vertical error bars.
type errPoints struct {
	plotter.XYs
	plotter.YErrors
}

// TokensPlotSVG draws the tokens each layer of image 0 takes in and keeps.
func (r *Report) TokensPlotSVG() ([]byte, error) {
	if len(r.Layers) == 0 {
		return nil, ErrNoLayers
	}
	in := make([]float64, len(r.Layers))
	out := make([]float64, len(r.Layers))
	names := make([]string, len(r.Layers))
	for i, l := range r.Layers {
		in[i], out[i], names[i] = float64(l.TokensIn), float64(l.TokensOut), strconv.Itoa(l.Index)
	}
	p := newPlot("tokens per layer of image 0: in, and kept for the next layer")
	p.X.Label.Text = "layer"
	p.Y.Label.Text = "tokens"
	p.Y.Tick.Marker = numberTicks
	w := barWidth(len(r.Layers), 2)
	a, b := bars(in, w, hex(0x56b4e9)), bars(out, w, hex(0x0072b2))
	a.Offset, b.Offset = -w/2, w/2
	p.Add(plotter.NewGrid(), a, b)
	legend := newLegend()
	legend.Add("tokens in", a)
	legend.Add("tokens kept", b)
	p.NominalX(names...)
	return renderSVG(p, legend, plotWidth+vg.Inch, plotHeight*0.8)
}

// CausePlotSVG draws the critical path by cause, in cycles per image.
func (r *Report) CausePlotSVG() ([]byte, error) {
	if len(r.CriticalPath) == 0 {
		return nil, noData("report: no critical path to chart (a reference run has none)")
	}
	causes := slices.Clone(r.CriticalPath)
	slices.Reverse(causes) // the plotter draws the first at the bottom
	vs := make([]float64, len(causes))
	names := make([]string, len(causes))
	for i, c := range causes {
		vs[i], names[i] = c.PerImage, c.Cause
	}
	p := newPlot(fmt.Sprintf("critical path by cause (%s cycles per image)", groupf(r.CyclesPerImage)))
	p.X.Label.Text = "cycles per image"
	b := bars(finite(vs), 10, busyColour)
	b.Horizontal = true
	p.Add(plotter.NewGrid(), b)
	p.NominalY(names...)
	p.X.Tick.Marker = numberTicks
	return renderSVG(p, nil, plotWidth-vg.Inch, vg.Length(len(causes))*14+vg.Inch)
}
