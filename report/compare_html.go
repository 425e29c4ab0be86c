package report

import (
	"bytes"
	"fmt"
	"html/template"
	"io"
	"slices"
	"strconv"

	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
)

// compareTemplate is the body of a comparison page.
var compareTemplate = template.Must(template.New("compare").Funcs(templateFuncs).Parse(compareHTML))

const compareHTML = `
<section id="runs">
<h2>Runs</h2>
<table class="kv">
{{- range $i, $n := .C.Names}}
<tr><th>{{if eq $i 0}}baseline{{else}}run {{inc $i}}{{end}}</th><td>{{$n}}: {{with index $.C.Runs $i}}{{.Title}}{{with .Balance}}, {{.}} balancing{{end}}{{end}}</td></tr>
{{- end}}
</table>
{{- if eq .C.Differences 0}}
<p class="bottleneck">No differences: the runs agree in every compared setting and figure.</p>
{{- end}}
{{- range .C.Notes}}
<p class="note">Note: {{.}}</p>
{{- end}}
</section>

{{- if .C.Config}}
<section id="config">
<h2>Settings that differ</h2>
<table class="sortable" id="config-table">
<thead><tr><th>setting</th>{{range .C.Names}}<th>{{.}}</th>{{end}}</tr></thead>
<tbody>
{{- range .C.Config}}
<tr><td>{{.Key}}</td>{{range .Values}}<td>{{.}}</td>{{end}}</tr>
{{- end}}
</tbody>
</table>
</section>
{{- end}}

<section id="figures">
<h2>Figures</h2>
{{template "rows" (rows "figures-table" "figure" .C.Names .C.Metrics)}}
{{- range .Figures}}
<figure id="{{.ID}}">{{.SVG}}<figcaption>{{.Caption}}</figcaption></figure>
{{- end}}
</section>

{{- if .C.Layers}}
<section id="layers">
<h2>Layers that differ (image 0)</h2>
{{template "rows" (rows "layers-table" "figure" .C.Names .C.Layers)}}
</section>
{{- end}}
{{- if .C.Causes}}
<section id="causes">
<h2>Critical path causes that differ</h2>
{{template "rows" (rows "causes-table" "cause" .C.Names .C.Causes)}}
</section>
{{- end}}
{{- if .C.Units}}
<section id="units">
<h2>Units that changed most</h2>
{{template "rows" (rows "units-table" "unit" .C.Names .C.Units)}}
</section>
{{- end}}
{{- if .C.FIFOs}}
<section id="fifos">
<h2>FIFOs that changed most</h2>
{{template "rows" (rows "fifos-table" "FIFO" .C.Names .C.FIFOs)}}
</section>
{{- end}}

{{- define "rows"}}
<table class="sortable" id="{{.ID}}">
<thead><tr><th>{{.What}}</th>{{range $i, $n := .Names}}<th data-type="num">{{$n}}</th>{{if $i}}<th data-type="num">change</th>{{end}}{{end}}</tr></thead>
<tbody>
{{- range .Rows}}
<tr{{if .Changed}} class="changed"{{end}}><td>{{.Name}}</td>{{range $i, $c := .Cells}}<td data-v="{{$c.Sort}}">{{$c.Text}}</td>{{end}}</tr>
{{- end}}
</tbody>
</table>
{{- end}}
`

// rowsView is a table of compared rows, formatted.
type rowsView struct {
	ID, What string
	Names    []string
	Rows     []rowView
}

type rowView struct {
	Name    string
	Changed bool
	Cells   []cellView
}

type cellView struct {
	Text string
	Sort float64
}

func rowsTable(id, what string, names []string, rows []Row) rowsView {
	v := rowsView{ID: id, What: what, Names: names}
	for _, r := range rows {
		name := r.Name
		if r.Unit != "" {
			name += " (" + r.Unit + ")"
		}
		rv := rowView{Name: name, Changed: r.changed()}
		num := func(p *float64) float64 {
			if p == nil {
				return 0
			}
			return *p
		}
		rv.Cells = append(rv.Cells, cellView{formatValue(r.Values[0], r.Name), num(r.Values[0])})
		for _, x := range r.Values[1:] {
			d := 0.0
			if x != nil && r.Values[0] != nil {
				d = *x - *r.Values[0]
			}
			rv.Cells = append(rv.Cells, cellView{formatValue(x, r.Name), num(x)},
				cellView{formatDelta(x, r.Values[0], r.Name), d})
		}
		v.Rows = append(v.Rows, rv)
	}
	return v
}

// Figures returns the comparison's plots: latency per run, the critical
// path by cause per run, and (when the runs' layers compare) the cycles per
// layer per run; or the first plot's error other than ErrNothingToPlot.
func (c *Comparison) Figures() ([]Figure, error) {
	var l figureList
	add := l.add
	svg, err := c.latencyPlot()
	add("plot-latency", "Cycles per image of each run, simulated beside the estimator.", svg, err)
	svg, err = c.groupedPlot("critical path by cause, cycles per image", func(_ int, r *Report) []named {
		out := make([]named, len(r.CriticalPath))
		for i, g := range r.CriticalPath {
			out[i] = named{g.Cause, g.PerImage}
		}
		return out
	}, true)
	add("plot-causes", "The critical path of each run by cause, in cycles per image.", svg, err)
	if c.layersCompare() {
		svg, err = c.groupedPlot("cycles of image 0 per layer", func(_ int, r *Report) []named {
			out := make([]named, len(r.Layers))
			for i, l := range r.Layers {
				out[i] = named{strconv.Itoa(l.Index), float64(l.Cycles)}
			}
			return out
		}, false)
		add("plot-layers", "Cycles of image 0 per layer, one bar per run.", svg, err)
	}
	// The changed units' rows are all cycles; of the FIFOs', the fractions
	// of time full and empty share an axis.
	if len(c.Units) > 0 {
		svg, err = c.groupedPlot("units that changed most, cycles", rowFigures(c.Units, nil), true)
		add("plot-units", "The cycles of the units that changed most, one bar per run.", svg, err)
	}
	fractions := func(r Row) bool { return isFraction(r.Name) }
	if slices.ContainsFunc(c.FIFOs, fractions) {
		svg, err = c.groupedPlot("FIFOs that changed most, fraction of the run", rowFigures(c.FIFOs, fractions), true)
		add("plot-fifos", "The fractions of the run the FIFOs that changed most were full or empty, one bar per run.", svg, err)
	}
	return l.figs, l.err
}

// rowFigures gives each run's values of the rows that keep selects (all
// when nil), a missing value as zero.
func rowFigures(rows []Row, keep func(Row) bool) func(i int, r *Report) []named {
	return func(i int, _ *Report) []named {
		var out []named
		for _, row := range rows {
			if keep != nil && !keep(row) {
				continue
			}
			v := 0.0
			if row.Values[i] != nil {
				v = *row.Values[i]
			}
			out = append(out, named{row.Name, v})
		}
		return out
	}
}

func (c *Comparison) layersCompare() bool {
	for _, r := range c.Runs {
		if r.Reference || r.Model != c.Runs[0].Model || len(r.Layers) != len(c.Runs[0].Layers) {
			return false
		}
	}
	return true
}

func (c *Comparison) latencyPlot() ([]byte, error) {
	p := newPlot("cycles per image")
	p.Y.Tick.Marker = numberTicks
	w := barWidth(len(c.Runs), 2)
	simv, estv := make([]float64, len(c.Runs)), make([]float64, len(c.Runs))
	for i, r := range c.Runs {
		if !r.Reference {
			simv[i] = r.CyclesPerImage
		}
		estv[i] = float64(r.EstimatorCyclesPerImage)
	}
	a, b := bars(simv, min(w, 40), colourOf(0)), bars(estv, min(w, 40), colourOf(1))
	a.Offset, b.Offset = -min(w, 40)/2, min(w, 40)/2
	p.Add(plotter.NewGrid(), a, b)
	legend := newLegend()
	legend.Add("simulated", a)
	legend.Add("estimator", b)
	p.NominalX(c.Names...)
	return renderSVG(p, legend, plotWidth, plotHeight*0.8)
}

// groupedPlot draws one figure per name for every run, grouped by name,
// horizontally when the names are long.
func (c *Comparison) groupedPlot(title string, figures func(i int, r *Report) []named, horizontal bool) ([]byte, error) {
	var names []string
	values := make([]map[string]float64, len(c.Runs))
	for i, r := range c.Runs {
		values[i] = map[string]float64{}
		for _, f := range figures(i, r) {
			if _, ok := values[i][f.name]; !ok {
				values[i][f.name] = f.value
			}
			if !slices.Contains(names, f.name) {
				names = append(names, f.name)
			}
		}
	}
	if len(names) == 0 {
		return nil, ErrNothingToPlot
	}
	if horizontal {
		// The plotter draws the first at the bottom.
		for i, j := 0, len(names)-1; i < j; i, j = i+1, j-1 {
			names[i], names[j] = names[j], names[i]
		}
	}
	p := newPlot(title)
	legend := newLegend()
	k := len(c.Runs)
	w := barWidth(len(names), k)
	if horizontal {
		w = min(vg.Points(14)/vg.Length(k), 7)
		p.X.Tick.Marker = numberTicks
	} else {
		p.Y.Tick.Marker = numberTicks
	}
	for i := range c.Runs {
		vs := make([]float64, len(names))
		for j, n := range names {
			vs[j] = values[i][n]
		}
		b := bars(finite(vs), w, colourOf(i))
		b.Horizontal = horizontal
		b.Offset = (vg.Length(i) - vg.Length(k-1)/2) * w
		if horizontal {
			b.Offset = -b.Offset // the first run on top, as in the legend
		}
		p.Add(b)
		legend.Add(c.Names[i], b)
	}
	p.Add(plotter.NewGrid())
	if horizontal {
		p.NominalY(names...)
		return renderSVG(p, legend, plotWidth+2*vg.Inch, vg.Length(len(names))*16+vg.Inch)
	}
	p.NominalX(names...)
	return renderSVG(p, legend, plotWidth+vg.Inch, plotHeight)
}

// WriteHTML writes the comparison as one self-contained HTML page, rendered
// whole before anything is written.
func (c *Comparison) WriteHTML(w io.Writer) error {
	figs, err := c.Figures()
	if err != nil {
		return err
	}
	var body bytes.Buffer
	err = compareTemplate.Execute(&body, struct {
		C       *Comparison
		Figures []Figure
	}{c, figs})
	if err != nil {
		return err
	}
	return page(w, fmt.Sprintf("vitflow: comparison of %d runs", len(c.Runs)), template.HTML(body.String()))
}
