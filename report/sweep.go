package report

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"html/template"
	"io"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"

	"vitflow/topology"
)

// Sweep is what a design-space sweep measured: one row per point.
type Sweep struct {
	Model      string `json:"model"`
	Weights    string `json:"weights"`
	Topology   string `json:"topology"`
	Inputs     string `json:"inputs"`
	Images     int    `json:"images"`
	TimingOnly bool   `json:"timing_only"`
	// Axes are the swept keys, in order.
	Axes []string   `json:"axes"`
	Rows []SweepRow `json:"rows"`
}

// SweepRow is one point of a sweep.
type SweepRow struct {
	Index int    `json:"index"`
	Hash  string `json:"hash"`
	// Settings are the axes' values, in axis order.
	Settings []Setting `json:"settings"`
	// CyclesPerImage is the run's makespan over its images (the throughput's
	// inverse); LatencyUS is an image's mean time from entering the patch
	// embedding to leaving the classifier.
	CyclesPerImage  float64 `json:"cycles_per_image"`
	LatencyUS       float64 `json:"latency_us"`
	ImagesPerSecond float64 `json:"images_per_second"`
	PEUtilization   float64 `json:"pe_utilization"`
	// Cause is the largest cause of the critical path.
	Cause string `json:"critical_cause"`
	// Accuracy is the fraction of images classified right, when labels are known.
	Accuracy *float64 `json:"accuracy,omitempty"`
	// MACs (linear layers) and Params of one image after pruning.
	MACs      int64              `json:"macs"`
	Params    int64              `json:"params"`
	Resources topology.Resources `json:"resources"`
	// Error is why the point failed; the other fields are then zero.
	Error string `json:"error,omitempty"`
}

// ok reports whether the point ran.
func (r SweepRow) ok() bool { return r.Error == "" }

// Name is the row's settings as key=value pairs.
func (r SweepRow) Name() string { return SettingsName(r.Settings) }

// SettingsName writes settings as key=value pairs, "base" when there are none.
func SettingsName(settings []Setting) string {
	if len(settings) == 0 {
		return "base"
	}
	parts := make([]string, len(settings))
	for i, s := range settings {
		parts[i] = s.Key + "=" + s.Value
	}
	return strings.Join(parts, " ")
}

// ParetoFront returns the indices of the points that no other point
// dominates, minimising x and y (negate one to maximise it), sorted by x.
// NaN points are left out; of equal points the first is kept.
func ParetoFront(x, y []float64) []int {
	idx := make([]int, 0, len(x))
	for i := range x {
		if !math.IsNaN(x[i]) && !math.IsNaN(y[i]) {
			idx = append(idx, i)
		}
	}
	slices.SortStableFunc(idx, func(a, b int) int { return cmp.Or(cmp.Compare(x[a], x[b]), cmp.Compare(y[a], y[b])) })
	var front []int
	best := math.Inf(1)
	for _, i := range idx {
		if y[i] < best {
			front = append(front, i)
			best = y[i]
		}
	}
	return front
}

// okRows are the rows that ran.
func (s *Sweep) okRows() []SweepRow {
	var out []SweepRow
	for _, r := range s.Rows {
		if r.ok() {
			out = append(out, r)
		}
	}
	return out
}

// hasAccuracy reports whether rows, rows that ran, have an accuracy.
func hasAccuracy(rows []SweepRow) bool { return len(rows) > 0 && rows[0].Accuracy != nil }

// AccuracyFront returns the rows on the accuracy-latency Pareto front
// (lowest latency, highest accuracy), fastest first; nil without accuracy.
func (s *Sweep) AccuracyFront() []SweepRow { return accuracyFront(s.okRows()) }

// MemoryFront returns the rows on the on-chip memory-latency Pareto front,
// fastest first.
func (s *Sweep) MemoryFront() []SweepRow { return memoryFront(s.okRows()) }

// accuracyFront and memoryFront are the fronts among rows that ran.
func accuracyFront(rows []SweepRow) []SweepRow {
	if !hasAccuracy(rows) {
		return nil
	}
	return front(rows, func(r SweepRow) float64 { return -*r.Accuracy })
}

func memoryFront(rows []SweepRow) []SweepRow {
	return front(rows, func(r SweepRow) float64 { return float64(r.Resources.OnChipBytes) })
}

func front(rows []SweepRow, y func(SweepRow) float64) []SweepRow {
	xs, ys := make([]float64, len(rows)), make([]float64, len(rows))
	for i, r := range rows {
		xs[i], ys[i] = r.LatencyUS, y(r)
	}
	var out []SweepRow
	for _, i := range ParetoFront(xs, ys) {
		out = append(out, rows[i])
	}
	return out
}

// Plot is one of a sweep's plots.
type Plot struct {
	// Name is a file name stem, e.g. "accuracy-latency"; Caption says what it shows.
	Name, Caption string
	p             *plot.Plot
	legend        *plot.Legend
}

// SVG renders the plot.
func (p Plot) SVG() ([]byte, error) { return renderSVG(p.p, p.legend, plotWidth, plotHeight) }

// PNG renders the plot at 150 dots per inch, from the same plot as SVG.
func (p Plot) PNG() ([]byte, error) {
	c := vgimg.PngCanvas{Canvas: vgimg.NewWith(vgimg.UseWH(plotWidth, plotHeight), vgimg.UseDPI(150))}
	drawWithLegend(draw.New(c), p.p, p.legend)
	var b bytes.Buffer
	if _, err := c.WriteTo(&b); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// Plots returns the sweep's plots: accuracy against latency (with labels),
// latency against on-chip memory, each with its Pareto front marked, and
// latency against each swept axis. ErrNothingToPlot if no point ran.
func (s *Sweep) Plots() ([]Plot, error) {
	rows := s.okRows()
	if len(rows) == 0 {
		return nil, noData("no point of the sweep ran")
	}
	var out []Plot
	lat := func(r SweepRow) float64 { return r.LatencyUS }
	if hasAccuracy(rows) {
		out = append(out, scatter(rows, "accuracy-latency", "Accuracy against latency", "the Pareto-optimal points (no other point is both faster and more accurate) are joined.",
			"latency per image (µs)", "accuracy (%)", lat, func(r SweepRow) float64 { return 100 * *r.Accuracy }, accuracyFront(rows)))
	}
	out = append(out, scatter(rows, "memory-latency", "On-chip memory against latency", "the Pareto-optimal points (no other point is both faster and smaller) are joined; on-chip memory counts the FIFOs and any weights kept on chip.",
		"latency per image (µs)", "on-chip memory (KiB)", lat, func(r SweepRow) float64 { return float64(r.Resources.OnChipBytes) / 1024 }, memoryFront(rows)))
	for k, axis := range s.Axes {
		out = append(out, s.axisPlot(rows, k, axis))
	}
	return out, nil
}

// scatter plots every row and joins the front's.
func scatter(rows []SweepRow, name, title, note, xLabel, yLabel string, x, y func(SweepRow) float64, front []SweepRow) Plot {
	p := newPlot(title)
	p.X.Label.Text, p.Y.Label.Text = xLabel, yLabel
	p.X.Tick.Marker, p.Y.Tick.Marker = numberTicks, numberTicks
	xy := func(rows []SweepRow) plotter.XYs {
		pts := make(plotter.XYs, len(rows))
		for i, r := range rows {
			pts[i] = plotter.XY{X: x(r), Y: y(r)}
		}
		return pts
	}
	legend := newLegend()
	all, _ := plotter.NewScatter(xy(rows)) // finite points never fail
	all.GlyphStyle.Color = colourOf(0)
	all.GlyphStyle.Shape = draw.CircleGlyph{}
	all.GlyphStyle.Radius = vg.Points(2.5)
	p.Add(all)
	legend.Add("point", all)
	line, pts, _ := plotter.NewLinePoints(xy(front))
	line.Color, pts.Color = colourOf(4), colourOf(4)
	line.Dashes = []vg.Length{vg.Points(4), vg.Points(2)}
	pts.Shape = draw.BoxGlyph{}
	pts.Radius = vg.Points(3)
	p.Add(line, pts)
	legend.Add("Pareto front", line, pts)
	return Plot{Name: name, Caption: title + ": " + note, p: p, legend: legend}
}

// axisPlot plots latency against axis k: every row that ran (rows), and
// the fastest at each value joined. A numeric axis is drawn to scale; any
// other by position, with every value the sweep took.
func (s *Sweep) axisPlot(rows []SweepRow, k int, axis string) Plot {
	var values []string
	for _, r := range s.Rows {
		if v := r.Settings[k].Value; !slices.Contains(values, v) {
			values = append(values, v)
		}
	}
	numeric := true
	xs := map[string]float64{}
	for _, v := range values {
		f, err := strconv.ParseFloat(v, 64)
		numeric = numeric && err == nil
		xs[v] = f
	}
	if !numeric {
		for i, v := range values {
			xs[v] = float64(i)
		}
	}
	p := newPlot("Latency against " + axis)
	p.X.Label.Text, p.Y.Label.Text = axis, "latency per image (µs)"
	p.Y.Tick.Marker = numberTicks
	// A tick at each value the axis took, as it was written, unless there
	// are too many to label.
	p.X.Tick.Marker = plot.TickerFunc(func(float64, float64) []plot.Tick {
		ticks := make([]plot.Tick, len(values))
		for i, v := range values {
			ticks[i] = plot.Tick{Value: xs[v], Label: v}
		}
		return ticks
	})
	lo, hi := -0.5, float64(len(values))-0.5
	if numeric {
		if len(values) > maxAxisTicks {
			p.X.Tick.Marker = numberTicks
		}
		lo, hi = slices.Min(slices.Collect(maps.Values(xs))), slices.Max(slices.Collect(maps.Values(xs)))
		pad := max(hi-lo, 1) * 0.05 // keeps the end points' glyphs inside
		lo, hi = lo-pad, hi+pad
	}
	p.X.Min, p.X.Max = lo, hi
	pts := make(plotter.XYs, len(rows))
	best := map[string]float64{}
	for i, r := range rows {
		v := r.Settings[k].Value
		pts[i] = plotter.XY{X: xs[v], Y: r.LatencyUS}
		if b, ok := best[v]; !ok || r.LatencyUS < b {
			best[v] = r.LatencyUS
		}
	}
	legend := newLegend()
	sc, _ := plotter.NewScatter(pts)
	sc.GlyphStyle.Color = colourOf(0)
	sc.GlyphStyle.Shape = draw.CircleGlyph{}
	sc.GlyphStyle.Radius = vg.Points(2.5)
	p.Add(sc)
	legend.Add("point", sc)
	var fast plotter.XYs
	for _, v := range values {
		if b, ok := best[v]; ok {
			fast = append(fast, plotter.XY{X: xs[v], Y: b})
		}
	}
	slices.SortFunc(fast, func(a, b plotter.XY) int { return cmp.Compare(a.X, b.X) })
	line, lp, _ := plotter.NewLinePoints(fast)
	line.Color, lp.Color = colourOf(1), colourOf(1)
	lp.Shape = draw.BoxGlyph{}
	p.Add(line, lp)
	legend.Add("fastest at each value", line, lp)
	caption := fmt.Sprintf("Latency against %s: every point (the other axes vary), and the fastest point at each value joined.", axis)
	return Plot{Name: "latency-" + fileStem(axis), Caption: caption, p: p, legend: legend}
}

// maxAxisTicks is the most values an axis plot labels one by one.
const maxAxisTicks = 12

// fileStem makes a key usable in a file name (fifo.depths.mpca->gelu).
func fileStem(key string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '.' || r == '_' {
			return r
		}
		return '-'
	}, strings.ToLower(key))
}

// WriteText writes a summary of the sweep: the points, the failures, and
// the Pareto fronts.
func (s *Sweep) WriteText(w io.Writer) error {
	p := &printer{w: w}
	ok := s.okRows()
	mode := ""
	if s.TimingOnly {
		mode = ", timing only (no predictions)"
	}
	p.printf("sweep: %s on %s, %s per point (%s)%s: %s, %d failed\n",
		s.Model, s.Topology, images(s.Images), s.Inputs, mode, plural(len(s.Rows), "point"), len(s.Rows)-len(ok))
	for _, r := range s.Rows {
		if !r.ok() {
			p.printf("  failed: %s: %s\n", r.Name(), r.Error)
		}
	}
	if len(ok) == 0 {
		return p.err
	}
	fastest := slices.MinFunc(ok, func(a, b SweepRow) int { return cmp.Compare(a.LatencyUS, b.LatencyUS) })
	p.printf("fastest: %s: %s cycles/image, %.1f us latency, %s images/s\n",
		fastest.Name(), groupf(fastest.CyclesPerImage), fastest.LatencyUS, groupf(fastest.ImagesPerSecond))
	if front := accuracyFront(ok); front != nil {
		p.printf("\nPareto front, accuracy against latency:\n")
		s.writeFront(p, front, true)
	}
	p.printf("\nPareto front, on-chip memory against latency:\n")
	s.writeFront(p, memoryFront(ok), false)
	return p.err
}

func (s *Sweep) writeFront(p *printer, rows []SweepRow, accuracy bool) {
	for _, r := range rows {
		extra := bytesText(r.Resources.OnChipBytes) + " on chip"
		if accuracy {
			extra = fmt.Sprintf("accuracy %.1f%%", 100**r.Accuracy)
		}
		p.printf("  %9.1f us  %-18s %s\n", r.LatencyUS, extra, r.Name())
	}
}

var sweepTemplate = template.Must(template.New("sweep").Funcs(templateFuncs).Parse(sweepHTML))

const sweepHTML = `<section>
<p>{{.S.Model}} ({{.S.Weights}}) on {{.S.Topology}}, {{images .S.Images}} per point ({{.S.Inputs}}){{if .S.TimingOnly}}, timing only: the numerics that cannot change timing were skipped, so there are no predictions{{end}}. {{len .S.Rows}} point(s){{if .S.Axes}} over {{range $i, $a := .S.Axes}}{{if $i}}, {{end}}{{$a}}{{end}}{{end}}.</p>
{{- range .Figures}}
<figure id="{{.ID}}">{{.SVG}}<figcaption>{{.Caption}}</figcaption></figure>
{{- end}}
<h2>Points</h2>
<table class="sortable" id="points">
<thead><tr><th data-type="num">#</th>{{range .S.Axes}}<th>{{.}}</th>{{end}}<th data-type="num">cycles/image</th><th data-type="num">latency (µs)</th><th data-type="num">images/s</th><th data-type="num">PE use</th>{{if .Accuracy}}<th data-type="num">accuracy</th>{{end}}<th data-type="num">on-chip bytes</th><th data-type="num">DSPs</th><th data-type="num">BRAM36</th><th data-type="num">URAM</th><th>critical path's largest cause</th><th>error</th></tr></thead>
<tbody>
{{- range .S.Rows}}
<tr><td data-v="{{.Index}}">{{.Index}}</td>{{range .Settings}}<td>{{.Value}}</td>{{end}}<td data-v="{{.CyclesPerImage}}">{{groupf .CyclesPerImage}}</td><td data-v="{{.LatencyUS}}">{{fixed 1 .LatencyUS}}</td><td data-v="{{.ImagesPerSecond}}">{{groupf .ImagesPerSecond}}</td><td data-v="{{.PEUtilization}}">{{pct .PEUtilization}}</td>{{if $.Accuracy}}<td data-v="{{if .Accuracy}}{{deref .Accuracy}}{{end}}">{{if .Accuracy}}{{pct (deref .Accuracy)}}{{end}}</td>{{end}}<td data-v="{{.Resources.OnChipBytes}}">{{group .Resources.OnChipBytes}}</td><td data-v="{{.Resources.DSPs}}">{{.Resources.DSPs}}</td><td data-v="{{.Resources.BRAM36}}">{{.Resources.BRAM36}}</td><td data-v="{{.Resources.URAMs}}">{{.Resources.URAMs}}</td><td>{{.Cause}}</td><td>{{.Error}}</td></tr>
{{- end}}
</tbody>
</table>
<p>Resources are a first-order estimate: DSP48E2 slices for the multipliers, block RAMs and UltraRAMs for the FIFOs' capacity and the weights kept on chip, not logic or routing.</p>
</section>
`

// WriteHTML writes the sweep as one self-contained page: its plots inline
// and a sortable table of every point.
func (s *Sweep) WriteHTML(w io.Writer) error {
	plots, err := s.Plots()
	if err != nil && !errors.Is(err, ErrNothingToPlot) {
		return err
	}
	var l figureList
	for _, p := range plots {
		svg, err := p.SVG()
		l.add("plot-"+p.Name, p.Caption, svg, err)
	}
	if l.err != nil {
		return l.err
	}
	var body bytes.Buffer
	data := struct {
		S        *Sweep
		Figures  []Figure
		Accuracy bool
	}{s, l.figs, hasAccuracy(s.okRows())}
	if err := sweepTemplate.Execute(&body, data); err != nil {
		return err
	}
	return page(w, fmt.Sprintf("vitflow sweep: %s on %s", s.Model, s.Topology), template.HTML(body.String()))
}
