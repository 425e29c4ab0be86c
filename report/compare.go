package report

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
)

// maxReportBytes bounds a report file read for a comparison: a report with
// the logits of 10,000 images is a few MB.
const maxReportBytes = 256 << 20

// ReadReport decodes a report written by the command's -json. Anything else
// (another JSON file, a trace, text) is an error that says so, in one line.
func ReadReport(r io.Reader) (*Report, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxReportBytes+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxReportBytes {
		return nil, fmt.Errorf("not a vitflow report: larger than %d MiB", maxReportBytes>>20)
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(data, &fields); err != nil {
		var syntax *json.SyntaxError
		if errors.As(err, &syntax) {
			return nil, fmt.Errorf("not a vitflow report (written by run -json): not JSON: %v at byte %d", syntax, syntax.Offset)
		}
		return nil, fmt.Errorf("not a vitflow report (written by run -json): not a JSON object")
	}
	// The fields every report has, simulated or not.
	for _, k := range []string{"model", "topology", "fidelity", "images", "pruning", "layers"} {
		if _, ok := fields[k]; !ok {
			return nil, fmt.Errorf("not a vitflow report (written by run -json): no %q field", k)
		}
	}
	rep := new(Report)
	if err := json.Unmarshal(data, rep); err != nil {
		return nil, fmt.Errorf("not a vitflow report: %v", err)
	}
	if rep.Model == "" || rep.Images < 1 || len(rep.Layers) == 0 {
		return nil, fmt.Errorf("not a vitflow report: no model, images or layers")
	}
	for _, f := range rep.FIFOs {
		if f.Capacity < 1 {
			return nil, fmt.Errorf("not a vitflow report: FIFO %q has depth %d (a run's FIFOs hold at least 1)", f.Name, f.Capacity)
		}
	}
	return rep, nil
}

// Comparison sets runs side by side: the first is the baseline and every
// figure of the others is compared with it. Only what differs is listed,
// but for Metrics, which always holds the headline figures.
type Comparison struct {
	Names []string  `json:"names"`
	Runs  []*Report `json:"-"`
	// Config lists the settings (model, pruning, topology) that differ.
	Config []ConfigDiff `json:"config"`
	// Metrics are the headline figures: latency, accuracy, counts, PE load.
	Metrics []Row `json:"metrics"`
	// Layers, Causes, Units and FIFOs hold the rows that differ; units and
	// FIFOs the most changed first, at most changedRows of them.
	Layers []Row `json:"layers"`
	Causes []Row `json:"causes"`
	Units  []Row `json:"units"`
	FIFOs  []Row `json:"fifos"`
	// Notes say what could not be compared, and why.
	Notes []string `json:"notes"`
}

// ConfigDiff is one setting that differs between the runs.
type ConfigDiff struct {
	Key    string   `json:"key"`
	Values []string `json:"values"` // per run; "-" where a run does not have it
}

// Row is one compared figure, one value per run (nil where a run does not
// have it).
type Row struct {
	Name   string     `json:"name"`
	Unit   string     `json:"unit,omitempty"`
	Values []*float64 `json:"values"`
}

// changed reports whether any run's value differs from the baseline's.
func (r Row) changed() bool {
	for _, v := range r.Values[1:] {
		if (v == nil) != (r.Values[0] == nil) || v != nil && !same(*v, *r.Values[0]) {
			return true
		}
	}
	return false
}

// same treats values equal to 1e-9 relative as equal: figures computed as
// ratios of the same integers may differ in the last bit.
func same(a, b float64) bool {
	return a == b || math.Abs(a-b) <= 1e-9*math.Max(math.Abs(a), math.Abs(b))
}

// change is the largest difference from the baseline, for ranking.
func (r Row) change() float64 {
	var c float64
	base := 0.0
	if r.Values[0] != nil {
		base = *r.Values[0]
	}
	for _, v := range r.Values[1:] {
		x := 0.0
		if v != nil {
			x = *v
		}
		c = max(c, math.Abs(x-base))
	}
	return c
}

// changedRows bounds the units and FIFOs listed as changed.
const changedRows = 10

// Differences counts what differs: settings and rows.
func (c *Comparison) Differences() int {
	n := len(c.Config) + len(c.Layers) + len(c.Causes) + len(c.Units) + len(c.FIFOs)
	for _, m := range c.Metrics {
		if m.changed() {
			n++
		}
	}
	return n
}

func val(x float64) *float64 { return &x }

// Compare sets runs side by side, the first as the baseline; names name
// them (their files). Reports of different models are compared where they
// can be (latency, causes, units and FIFOs by name), and Notes say what
// could not.
func Compare(names []string, runs []*Report) (*Comparison, error) {
	if len(runs) < 2 || len(names) != len(runs) {
		return nil, errors.New("report: compare needs at least two reports, each with a name")
	}
	c := &Comparison{Names: names, Runs: runs}
	c.compareConfig()
	c.compareMetrics()
	c.compareLayers()
	c.Causes = rowsByName(runs, func(r *Report) []named {
		out := make([]named, len(r.CriticalPath))
		for i, g := range r.CriticalPath {
			out[i] = named{g.Cause, g.PerImage}
		}
		return out
	}, "cycles/image")
	c.Units = changedMost(c, "unit", "cycles", func(r *Report) []Unit { return r.Units }, func(u Unit) (string, []named) {
		return u.Name, []named{{"busy", float64(u.Busy)}, {"starved", float64(u.Starved)},
			{"blocked", float64(u.Blocked)}, {"on the critical path", float64(u.Critical)}}
	})
	c.FIFOs = changedMost(c, "FIFO", "", func(r *Report) []FIFO { return r.FIFOs }, func(f FIFO) (string, []named) {
		return f.Name, []named{{"depth", float64(f.Capacity)}, {"mean occupancy", f.MeanOccupancy},
			{"time full", f.FullFraction}, {"time empty", f.EmptyFraction}}
	})
	return c, nil
}

// configOf flattens a report's configuration into settings by key.
func configOf(r *Report) ([]string, map[string]string) {
	keys := []string{"model", "weights", "variant", "seed", "inputs", "images", "reference",
		"pruning.source", "pruning.block", "pruning.density", "pruning.keep", "pruning.td_layers",
		"topology", "fidelity", "balance", "clock_mhz"}
	m := map[string]string{
		"model": r.Model, "weights": r.Weights, "variant": r.Variant, "seed": strconv.FormatUint(r.Seed, 10),
		"inputs": r.Inputs, "images": strconv.Itoa(r.Images), "reference": strconv.FormatBool(r.Reference),
		"pruning.source": r.Pruning.Source, "pruning.block": strconv.Itoa(r.Pruning.Block),
		"pruning.density": fmt.Sprint(r.Pruning.Density), "pruning.keep": fmt.Sprint(r.Pruning.Keep),
		"pruning.td_layers": "[" + joinInts(r.Pruning.TDLayers, ", ") + "]",
		"topology":          r.Topology, "fidelity": r.Fidelity, "balance": r.Balance, "clock_mhz": fmt.Sprint(r.ClockMHz),
	}
	for _, s := range r.Hardware {
		switch s.Key {
		case "name", "balance", "fidelity", "clock_mhz":
			continue // the report's own fields above
		}
		k := "topology." + s.Key
		keys = append(keys, k)
		m[k] = s.Value
	}
	return keys, m
}

func (c *Comparison) compareConfig() {
	var keys []string
	maps := make([]map[string]string, len(c.Runs))
	for i, r := range c.Runs {
		ks, m := configOf(r)
		maps[i] = m
		for _, k := range ks {
			if !slices.Contains(keys, k) {
				keys = append(keys, k)
			}
		}
	}
	for _, k := range keys {
		d := ConfigDiff{Key: k}
		differ := false
		for i, m := range maps {
			v, ok := m[k]
			if !ok {
				v = "-"
			}
			d.Values = append(d.Values, v)
			differ = differ || v != d.Values[0] && i > 0
		}
		if differ {
			c.Config = append(c.Config, d)
		}
	}
}

func (c *Comparison) compareMetrics() {
	sim := func(r *Report, x float64) *float64 {
		if r.Reference {
			return nil
		}
		return val(x)
	}
	add := func(name, unit string, f func(r *Report) *float64) {
		row := Row{Name: name, Unit: unit}
		for _, r := range c.Runs {
			row.Values = append(row.Values, f(r))
		}
		c.Metrics = append(c.Metrics, row)
	}
	add("latency", "cycles/image", func(r *Report) *float64 { return sim(r, r.CyclesPerImage) })
	add("latency", "µs/image", func(r *Report) *float64 { return sim(r, r.LatencyUSPerImage) })
	add("throughput", "images/s", func(r *Report) *float64 { return sim(r, r.ImagesPerSecond) })
	add("estimator", "cycles/image", func(r *Report) *float64 { return val(float64(r.EstimatorCyclesPerImage)) })
	add("accuracy", "", func(r *Report) *float64 {
		if r.Accuracy == nil {
			return nil
		}
		return val(*r.Accuracy)
	})
	add("MACs/image (pruned)", "", func(r *Report) *float64 { return val(float64(r.MACs.Pruned)) })
	add("parameters (pruned)", "", func(r *Report) *float64 { return val(float64(r.Params.Pruned)) })
	add("PE utilisation", "", func(r *Report) *float64 { return sim(r, r.PEUtilization) })
	add("PE max/mean, policy that ran", "", func(r *Report) *float64 {
		for _, im := range r.Imbalance {
			if im.Used {
				return val(im.MaxOverMean)
			}
		}
		return nil
	})
	add("MPCA compute, policy that ran", "cycles/image 0", func(r *Report) *float64 {
		for _, im := range r.Imbalance {
			if im.Used {
				return val(float64(im.ComputeCycles))
			}
		}
		return nil
	})
	// Each policy's imbalance depends on the masks only, not on the policy
	// that ran: a change here is a change of pruning or of the PE array.
	var policies []string
	for _, r := range c.Runs {
		for _, im := range r.Imbalance {
			if !slices.Contains(policies, im.Policy) {
				policies = append(policies, im.Policy)
			}
		}
	}
	for _, p := range policies {
		add("PE max/mean under "+p, "", func(r *Report) *float64 {
			for _, im := range r.Imbalance {
				if im.Policy == p {
					return val(im.MaxOverMean)
				}
			}
			return nil
		})
	}
	for i, r := range c.Runs {
		if r.Reference {
			c.Notes = append(c.Notes, fmt.Sprintf("%s is a reference run: it has no simulated figures (latency, causes, units, FIFOs)", c.Names[i]))
		}
	}
}

func (c *Comparison) compareLayers() {
	base := c.Runs[0]
	for i, r := range c.Runs[1:] {
		if r.Model != base.Model || len(r.Layers) != len(base.Layers) {
			c.Notes = append(c.Notes, fmt.Sprintf("layers not compared: %s is %s with %d layers, %s is %s with %d",
				c.Names[0], base.Model, len(base.Layers), c.Names[i+1], r.Model, len(r.Layers)))
			return
		}
	}
	c.Layers = rowsByName(c.Runs, func(r *Report) []named {
		var out []named
		for _, l := range r.Layers {
			p := fmt.Sprintf("layer %d ", l.Index)
			out = append(out, named{p + "tokens in", float64(l.TokensIn)}, named{p + "tokens kept", float64(l.TokensOut)},
				named{p + "heads", float64(l.HeadsKept)}, named{p + "estimator cycles", float64(l.EstimatorCycles)})
			if !r.Reference {
				out = append(out, named{p + "cycles", float64(l.Cycles)}, named{p + "PE max/mean", l.PEImbalance})
				for _, o := range l.Ops {
					out = append(out, named{p + o.Name + " cycles", float64(o.Cycles)})
				}
			}
		}
		return out
	}, "")
}

// named is one figure of one run.
type named struct {
	name  string
	value float64
}

// rowsByName lines up the figures of every run by name, in the order they
// first appear, and keeps the rows that differ.
func rowsByName(runs []*Report, figures func(*Report) []named, unit string) []Row {
	var order []string
	byRun := make([]map[string]float64, len(runs))
	for i, r := range runs {
		byRun[i] = map[string]float64{}
		for _, f := range figures(r) {
			if _, ok := byRun[i][f.name]; !ok && !slices.Contains(order, f.name) {
				order = append(order, f.name)
			}
			byRun[i][f.name] = f.value
		}
	}
	var rows []Row
	for _, name := range order {
		row := Row{Name: name, Unit: unit}
		for i := range runs {
			if v, ok := byRun[i][name]; ok {
				row.Values = append(row.Values, val(v))
			} else {
				row.Values = append(row.Values, nil)
			}
		}
		if row.changed() {
			rows = append(rows, row)
		}
	}
	return rows
}

// changedMost returns the rows of the changedRows members (units or FIFOs:
// what names them) of the runs that changed most, each one's rows together,
// and notes the ones only some runs have. of lists a run's members, and
// figures gives a member's name and its figures, each named for what it is
// ("busy"): its row is the member's name and the figure's.
func changedMost[T any](c *Comparison, what, unit string, of func(*Report) []T, figures func(T) (string, []named)) []Row {
	members := func(r *Report) []string {
		var names []string
		for _, m := range of(r) {
			name, _ := figures(m)
			names = append(names, name)
		}
		return names
	}
	rows := rowsByName(c.Runs, func(r *Report) []named {
		var out []named
		for _, m := range of(r) {
			name, fs := figures(m)
			for _, f := range fs {
				out = append(out, named{name + " " + f.name, f.value})
			}
		}
		return out
	}, unit)
	// A member's change is its largest row change, relative to the row's
	// scale so that cycles and fractions rank together.
	score := map[string]float64{}
	var order []string
	all := map[string]int{}
	for _, r := range c.Runs {
		for _, m := range members(r) {
			all[m]++
			if all[m] == 1 {
				order = append(order, m)
			}
		}
	}
	owner := func(row Row) string {
		for _, m := range order {
			if strings.HasPrefix(row.Name, m+" ") {
				return m
			}
		}
		return ""
	}
	for _, row := range rows {
		scale := 0.0
		for _, v := range row.Values {
			if v != nil {
				scale = max(scale, math.Abs(*v))
			}
		}
		if scale > 0 {
			m := owner(row)
			score[m] = max(score[m], row.change()/scale)
		}
	}
	ranked := slices.Clone(order)
	ranked = slices.DeleteFunc(ranked, func(m string) bool { return score[m] == 0 })
	slices.SortStableFunc(ranked, func(a, b string) int { return cmp.Compare(score[b], score[a]) })
	ranked = ranked[:min(len(ranked), changedRows)]
	var out []Row
	for _, m := range ranked {
		for _, row := range rows {
			if owner(row) == m {
				out = append(out, row)
			}
		}
	}
	for _, m := range order {
		if all[m] < len(c.Runs) {
			var have []string
			for i, r := range c.Runs {
				if slices.Contains(members(r), m) {
					have = append(have, c.Names[i])
				}
			}
			c.Notes = append(c.Notes, fmt.Sprintf("%s %s is only in %s", what, m, strings.Join(have, ", ")))
		}
	}
	return out
}

// formatValue formats a figure for a table: fractions as percentages,
// large numbers grouped, small ones with three significant digits.
func formatValue(v *float64, name string) string {
	if v == nil {
		return "-"
	}
	x := *v
	switch {
	case isFraction(name):
		return fmt.Sprintf("%.1f%%", 100*x)
	case math.Abs(x) >= 100 || x == math.Trunc(x):
		return groupf(x)
	}
	return strconv.FormatFloat(x, 'g', 4, 64)
}

func isFraction(name string) bool {
	for _, s := range []string{"accuracy", "utilisation", "time full", "time empty"} {
		if strings.HasSuffix(name, s) {
			return true
		}
	}
	return false
}

// formatDelta is a run's difference from the baseline: absolute, and
// relative when the baseline is not zero.
func formatDelta(v, base *float64, name string) string {
	if v == nil || base == nil || same(*v, *base) {
		return ""
	}
	d := *v - *base
	if isFraction(name) {
		return fmt.Sprintf("%+.1f pt", 100*d)
	}
	s := "+"
	if d < 0 {
		s = "-"
	}
	abs := formatValue(val(math.Abs(d)), name)
	if *base != 0 {
		return fmt.Sprintf("%s%s (%+.1f%%)", s, abs, 100*d / *base)
	}
	return s + abs
}

// WriteText prints the comparison as aligned text tables.
func (c *Comparison) WriteText(w io.Writer) error {
	var b bytes.Buffer
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	p := &printer{w: tw}
	// Every cell ends in a tab, the last too: a line with fewer cells would
	// end tabwriter's column and misalign the lines after it. The padding
	// this leaves at the ends of lines is trimmed below.
	cells := func(cs []string) { p.printf("%s\t\n", strings.Join(cs, "\t")) }
	for i, n := range c.Names {
		role := "compared with the baseline"
		if i == 0 {
			role = "the baseline"
		}
		r := c.Runs[i]
		run := fmt.Sprintf("%s (%s): %s", n, role, r.Model)
		if r.Topology != "" {
			run += " on " + r.Topology
		}
		if r.Balance != "" { // a reference run has none
			run += ", " + r.Balance
		}
		p.row(fmt.Sprintf("run %d", i+1), run)
	}
	p.printf("\n")
	if c.Differences() == 0 {
		p.printf("no differences: the runs agree in every compared setting and figure\n\n")
	}
	if len(c.Config) > 0 {
		cells(append([]string{"settings that differ"}, c.Names...))
		for _, d := range c.Config {
			values := make([]string, len(d.Values))
			for i, v := range d.Values {
				values[i] = orDash(v)
			}
			cells(append([]string{d.Key}, values...))
		}
		p.printf("\n")
	}
	table := func(title string, rows []Row, all bool) {
		if len(rows) == 0 {
			return
		}
		head := []string{title, c.Names[0]}
		for _, n := range c.Names[1:] {
			head = append(head, n, "change")
		}
		cells(head)
		for _, r := range rows {
			if !all && !r.changed() {
				continue
			}
			name := r.Name
			if r.Unit != "" {
				name += " (" + r.Unit + ")"
			}
			row := []string{name, formatValue(r.Values[0], r.Name)}
			for _, v := range r.Values[1:] {
				row = append(row, formatValue(v, r.Name), formatDelta(v, r.Values[0], r.Name))
			}
			cells(row)
		}
		p.printf("\n")
	}
	table("figures", c.Metrics, true)
	table("layers that differ (image 0)", c.Layers, false)
	table("critical path causes that differ", c.Causes, false)
	table("units that changed most", c.Units, false)
	table("FIFOs that changed most", c.FIFOs, false)
	for _, n := range c.Notes {
		p.printf("note: %s\n", n)
	}
	if p.err != nil {
		return p.err
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	lines := strings.Split(b.String(), "\n")
	for i, l := range lines {
		lines[i] = strings.TrimRight(l, " ")
	}
	_, err := io.WriteString(w, strings.Join(lines, "\n"))
	return err
}
