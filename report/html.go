package report

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"html/template"
	"io"
	"regexp"
	"strings"
)

// The HTML report is one file with nothing outside it: the plots are inline
// SVG, the style and the table-sorting script are inline too, and no font,
// image or script is fetched, so that it opens the same way offline, from
// a mail attachment or a CI artefact.

//go:embed page.css
var pageCSS string

//go:embed page.js
var pageJS string

// pageTemplate is the frame shared by the run report and the comparison.
var pageTemplate = template.Must(template.New("page").Funcs(templateFuncs).Parse(pageHTML))

const pageHTML = `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}}</title>
<style>{{.CSS}}</style>
</head>
<body>
<h1>{{.Title}}</h1>
{{.Body}}
<footer>Written by vitflow. Click a table's heading to sort it.</footer>
<script>{{.JS}}</script>
</body>
</html>
`

var templateFuncs = template.FuncMap{
	"group":  group,
	"groupf": groupf,
	"pct":    func(x float64) string { return fmt.Sprintf("%.1f%%", 100*x) },
	"fixed":  func(digits int, x float64) string { return fmt.Sprintf("%.*f", digits, x) },
	"share":  percent,
	"si":     si,
	"fewer":  fewer,
	"ratio":  ratio,
	"ints":   func(xs []int) string { return joinInts(xs, ", ") },
	"orDash": orDash,
	"signed": func(x float64) string {
		if x > 0 {
			return "+" + groupf(x)
		}
		return groupf(x)
	},
	"signedPct":  func(x float64) string { return fmt.Sprintf("%+.1f%%", 100*x) },
	"deref":      func(p *float64) float64 { return *p },
	"layerRatio": func(l Layer) float64 { return safeRatio(float64(l.Cycles), float64(l.EstimatorCycles)) },
	"inc":        func(i int) int { return i + 1 },
	"images":     images,
	"rows":       rowsTable,
}

// page writes the frame around body.
func page(w io.Writer, title string, body template.HTML) error {
	var b bytes.Buffer
	err := pageTemplate.Execute(&b, struct {
		Title string
		CSS   template.CSS
		JS    template.JS
		Body  template.HTML
	}{title, template.CSS(pageCSS), template.JS(pageJS), body})
	if err != nil {
		return err
	}
	_, err = w.Write(b.Bytes())
	return err
}

// svgHeader is what comes before the <svg> element in the plotter's output:
// an XML declaration and a comment, out of place inside HTML.
var svgHeader = regexp.MustCompile(`^(?s)<\?xml[^>]*\?>\s*(<!--.*?-->\s*)?`)

// Figure is one plot of a page: its inline SVG and a caption.
type Figure struct {
	ID      string
	Caption string
	SVG     template.HTML
}

// figure renders one plot for a page; ok is false when the report has
// nothing for it (err matches ErrNothingToPlot: a reference run has no
// units, for instance). Any other error of the plot is returned.
func figure(id, caption string, svg []byte, err error) (f Figure, ok bool, _ error) {
	if errors.Is(err, ErrNothingToPlot) {
		return Figure{}, false, nil
	}
	if err != nil {
		return Figure{}, false, fmt.Errorf("%s: %w", id, err)
	}
	s := svgHeader.ReplaceAllString(string(svg), "")
	// The plotter's SVG comes from its own escaped text and numbers; it is
	// trusted as markup.
	s = strings.Replace(s, "<svg ", `<svg role="img" aria-label="`+template.HTMLEscapeString(caption)+`" `, 1)
	return Figure{ID: id, Caption: caption, SVG: template.HTML(s)}, true, nil
}

// figureList collects a page's plots, in order, and the first error.
type figureList struct {
	figs []Figure
	err  error
}

// add adds a plot (see figure), unless an earlier one failed.
func (l *figureList) add(id, caption string, svg []byte, err error) {
	if l.err != nil {
		return
	}
	f, ok, err := figure(id, caption, svg, err)
	l.err = err
	if ok {
		l.figs = append(l.figs, f)
	}
}

// reportTemplate is the body of a run's report.
var reportTemplate = template.Must(template.New("report").Funcs(templateFuncs).Parse(reportHTML))

const reportHTML = `
<section id="summary">
<h2>Summary</h2>
<table class="kv">
{{- if .R.Reference}}
<tr><th>run</th><td>reference forward pass only: no accelerator simulated</td></tr>
{{- else}}
<tr><th>latency</th><td>{{groupf .R.CyclesPerImage}} cycles/image = {{fixed 2 .R.LatencyUSPerImage}} µs at {{.R.ClockMHz}} MHz ({{group .R.CyclesTotal}} cycles for {{images .R.Images}})</td></tr>
<tr><th>throughput</th><td>{{group .Throughput}} images/s</td></tr>
{{- end}}
<tr><th>estimator</th><td>{{group .R.EstimatorCyclesPerImage}} cycles/image = {{fixed 2 .R.EstimatorUSPerImage}} µs{{if not .R.Reference}}; simulated is {{ratio .R.CyclesPerImage .EstimatorFloat}}{{end}}</td></tr>
{{- if .R.Accuracy}}
<tr><th>accuracy</th><td>{{pct (deref .R.Accuracy)}} of {{images .R.Images}}</td></tr>
{{- end}}
{{- if .R.PEUtilization}}
<tr><th>PE utilisation</th><td>{{pct .R.PEUtilization}}</td></tr>
{{- end}}
<tr><th>MACs/image</th><td>{{si .R.MACs.Pruned}} pruned of {{si .R.MACs.Dense}} dense ({{fewer .R.MACs}}), the paper's count; attention products {{si .R.AttentionMACs.Pruned}} of {{si .R.AttentionMACs.Dense}}</td></tr>
<tr><th>parameters</th><td>{{si .R.Params.Pruned}} pruned of {{si .R.Params.Dense}} dense ({{fewer .R.Params}})</td></tr>
</table>
{{- if .R.Bottleneck}}
<p class="bottleneck">{{.R.Bottleneck}}</p>
{{- end}}
</section>

<section id="configuration">
<h2>Configuration</h2>
<table class="kv">
<tr><th>model</th><td>{{.R.Model}}</td></tr>
<tr><th>weights</th><td>{{.Weights}}</td></tr>
<tr><th>seed</th><td>{{.R.Seed}}</td></tr>
<tr><th>inputs</th><td>{{images .R.Images}}: {{.R.Inputs}}</td></tr>
<tr><th>pruning</th><td>{{.Pruning}}</td></tr>
<tr><th>topology</th><td>{{.R.Topology}}: {{.R.Fidelity}} fidelity, {{orDash .R.Balance}} load balancing, {{.R.ClockMHz}} MHz</td></tr>
</table>
{{- if .R.Hardware}}
<h3>Every setting of the topology, as a topology file names it</h3>
<div class="settings" id="hardware">
{{- range .R.Hardware}}
<div><code>{{.Key}}</code> = <code>{{.Value}}</code></div>
{{- end}}
</div>
{{- end}}
</section>

{{- if .R.CriticalPath}}
<section id="causes">
<h2>Where the cycles went: the critical path by cause</h2>
<div class="row">
{{with .Causes}}<figure id="{{.ID}}">{{.SVG}}<figcaption>{{.Caption}}</figcaption></figure>{{end}}
<table class="sortable" id="cause-table">
<thead><tr><th>cause</th><th data-type="num">cycles/image</th><th data-type="num">share</th></tr></thead>
<tbody>
{{- range .R.CriticalPath}}
<tr><td>{{.Cause}}</td><td data-v="{{.PerImage}}">{{groupf .PerImage}}</td><td data-v="{{.Cycles}}">{{share .Cycles $.R.CyclesTotal}}</td></tr>
{{- end}}
</tbody>
</table>
{{- if .R.Gap}}
<div>
<h3>Gap to the estimator</h3>
<table class="sortable" id="gap-table">
<thead><tr><th>cause</th><th data-type="num">cycles/image</th></tr></thead>
<tbody>
{{- range .R.Gap}}
<tr><td>{{.Cause}}</td><td data-v="{{.PerImage}}">{{signed .PerImage}}</td></tr>
{{- end}}
</tbody>
</table>
</div>
{{- end}}
</div>
{{- if .R.Backpressure}}
<h3>Full FIFOs on the critical path</h3>
<table class="sortable" id="backpressure-table">
<thead><tr><th>FIFO</th><th data-type="num">depth</th><th data-type="num">bytes</th><th data-type="num">cycles waited</th></tr></thead>
<tbody>
{{- range .R.Backpressure}}
<tr><td>{{.FIFO}}</td><td data-v="{{.Depth}}">{{.Depth}}</td><td data-v="{{.Bytes}}">{{group .Bytes}}</td><td data-v="{{.Cycles}}">{{group .Cycles}}</td></tr>
{{- end}}
</tbody>
</table>
{{- end}}
</section>
{{- end}}

<section id="plots">
<h2>Plots</h2>
{{- range .Figures}}
<figure id="{{.ID}}">{{.SVG}}<figcaption>{{.Caption}}</figcaption></figure>
{{- end}}
</section>

<section id="tables">
<h2>Layers (image 0)</h2>
<table class="sortable" id="layers">
<thead><tr><th data-type="num">layer</th><th data-type="num">tokens in</th><th data-type="num">tokens kept</th><th data-type="num">heads</th>{{if not .R.Reference}}<th data-type="num">cycles</th>{{end}}<th data-type="num">estimator</th>{{if not .R.Reference}}<th data-type="num">simulated / estimator</th><th data-type="num">PE max/mean</th>{{end}}</tr></thead>
<tbody>
{{- range .R.Layers}}
<tr><td data-v="{{.Index}}">{{.Index}}</td><td data-v="{{.TokensIn}}">{{.TokensIn}}</td><td data-v="{{.TokensOut}}">{{.TokensOut}}</td><td data-v="{{.HeadsKept}}">{{.HeadsKept}}</td>{{if not $.R.Reference}}<td data-v="{{.Cycles}}">{{group .Cycles}}</td>{{end}}<td data-v="{{.EstimatorCycles}}">{{group .EstimatorCycles}}</td>{{if not $.R.Reference}}<td data-v="{{layerRatio .}}">{{fixed 3 (layerRatio .)}}</td><td data-v="{{.PEImbalance}}">{{fixed 3 .PEImbalance}}</td>{{end}}</tr>
{{- end}}
</tbody>
</table>

{{- if .R.Units}}
<h2>Units</h2>
<table class="sortable" id="units">
<thead><tr><th>unit</th><th data-type="num">busy</th><th data-type="num">starved</th><th data-type="num">blocked</th><th data-type="num">utilisation</th><th data-type="num">on the critical path</th><th data-type="num">hidden by overlap</th><th>starved most on</th><th>blocked most on</th></tr></thead>
<tbody>
{{- range .R.Units}}
<tr><td>{{.Name}}</td><td data-v="{{.Busy}}">{{group .Busy}}</td><td data-v="{{.Starved}}">{{group .Starved}}</td><td data-v="{{.Blocked}}">{{group .Blocked}}</td><td data-v="{{.Utilization}}">{{pct .Utilization}}</td><td data-v="{{.Critical}}">{{group .Critical}}</td><td data-v="{{.Hidden}}">{{group .Hidden}}</td><td>{{orDash .StarvedOn}}</td><td>{{orDash .BlockedOn}}</td></tr>
{{- end}}
</tbody>
</table>
{{- end}}

{{- if .R.FIFOs}}
<h2>FIFOs</h2>
<table class="sortable" id="fifos">
<thead><tr><th>FIFO</th><th data-type="num">depth</th><th data-type="num">bytes</th><th>depth set by</th><th data-type="num">elements</th><th data-type="num">max occupancy</th><th data-type="num">mean occupancy</th><th data-type="num">time full</th><th data-type="num">time empty</th></tr></thead>
<tbody>
{{- range .R.FIFOs}}
<tr><td>{{.Name}}</td><td data-v="{{.Capacity}}">{{.Capacity}}</td><td data-v="{{.Bytes}}">{{group .Bytes}}</td><td>{{orDash .SetBy}}</td><td data-v="{{.Elements}}">{{group .Elements}}</td><td data-v="{{.MaxOccupancy}}">{{.MaxOccupancy}}</td><td data-v="{{.MeanOccupancy}}">{{fixed 2 .MeanOccupancy}}</td><td data-v="{{.FullFraction}}">{{pct .FullFraction}}</td><td data-v="{{.EmptyFraction}}">{{pct .EmptyFraction}}</td></tr>
{{- end}}
</tbody>
</table>
{{- end}}
</section>
`

func safeRatio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

// Title is the heading of r's pages.
func (r *Report) Title() string {
	if r.Reference {
		return fmt.Sprintf("vitflow: %s, reference run", r.Model)
	}
	return fmt.Sprintf("vitflow: %s on %s", r.Model, r.Topology)
}

// Figures returns the plots of r's HTML report that r has data for, in the
// order the page shows them, or the first plot's error other than
// ErrNothingToPlot.
func (r *Report) Figures() ([]Figure, error) {
	var l figureList
	svg, err := r.LayerPlotSVG()
	l.add("plot-layers", "Cycles of image 0 per layer, stacked by op and unit: the critical path's share of each (simulated, left) beside the analytical estimator (right).", svg, err)
	svg, err = r.UnitPlotSVG()
	l.add("plot-units", "Each unit's busy, starved and blocked cycles over the run, busiest first.", svg, err)
	svg, err = r.OccupancyPlotSVG()
	l.add("plot-occupancy", "Occupancy over simulated time of the FIFOs with the highest mean fill (time-weighted mean occupancy over depth), as a fraction of their depth (means over buckets of equal width).", svg, err)
	svg, err = r.HistogramPlotSVG()
	l.add("plot-histograms", "Each FIFO's time-weighted occupancy histogram: the fraction of the run it held each number of elements.", svg, err)
	svg, err = r.ImbalancePlotSVG()
	l.add("plot-imbalance", "PE load imbalance per MPCA op under each load-balancing policy, for the same masks: the busiest PE's work over the mean PE's, averaged over the layers, with the layers' range.", svg, err)
	svg, err = r.TokensPlotSVG()
	l.add("plot-tokens", "Tokens each layer of image 0 took in and kept (token dropping).", svg, err)
	return l.figs, l.err
}

// WriteHTML writes r as one self-contained HTML page: the summary and the
// configuration (with every topology setting), the critical path by cause,
// the plots as inline SVG, and sortable tables of the layers, units and
// FIFOs. The page is rendered whole before anything is written.
func (r *Report) WriteHTML(w io.Writer) error {
	if len(r.Layers) == 0 {
		return ErrNoLayers
	}
	data := struct {
		R              *Report
		Weights        string
		Pruning        string
		Throughput     int64
		EstimatorFloat float64
		Causes         *Figure
		Figures        []Figure
	}{R: r, Weights: r.weightsText(), Pruning: r.pruningText(), Throughput: int64(r.ImagesPerSecond + 0.5),
		EstimatorFloat: float64(r.EstimatorCyclesPerImage)}
	var err error
	if data.Figures, err = r.Figures(); err != nil {
		return err
	}
	svg, err := r.CausePlotSVG()
	f, ok, err := figure("plot-causes", "The critical path by cause, in cycles per image: every cycle of the run, counted once.", svg, err)
	if err != nil {
		return err
	}
	if ok {
		data.Causes = &f
	}
	var body bytes.Buffer
	if err := reportTemplate.Execute(&body, data); err != nil {
		return err
	}
	return page(w, r.Title(), template.HTML(body.String()))
}
