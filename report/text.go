package report

import (
	"cmp"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
)

// Limits on the rows of the text tables; the JSON report has everything.
const (
	maxImageRows = 64
	topRows      = 5
)

// WriteText renders r as aligned text tables for people.
func (r *Report) WriteText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	p := &printer{w: tw}
	r.writeSummary(p)
	r.writeImages(p)
	r.writeLatency(p)
	r.writeLayers(p)
	if !r.Reference {
		r.writeImbalance(p)
		r.writeUnits(p)
		r.writeFIFOs(p)
	}
	if p.err != nil {
		return p.err
	}
	return tw.Flush()
}

// printer remembers the first write error so the table code stays linear.
type printer struct {
	w   io.Writer
	err error
}

func (p *printer) printf(format string, args ...any) {
	if p.err == nil {
		_, p.err = fmt.Fprintf(p.w, format, args...)
	}
}

// row prints cells separated by tabs, ending the line; trailing empty cells
// are dropped so that no line ends in padding.
func (p *printer) row(cells ...string) {
	for len(cells) > 0 && cells[len(cells)-1] == "" {
		cells = cells[:len(cells)-1]
	}
	p.printf("%s\n", strings.Join(cells, "\t"))
}

func (r *Report) weightsText() string {
	switch r.Weights {
	case "random":
		return fmt.Sprintf("random weights (seed %d): predictions are meaningless", r.Seed)
	case "embedded":
		s := fmt.Sprintf("embedded weights %q", r.Variant)
		if r.VariantAbout != "" {
			s += ": " + r.VariantAbout
		}
		if r.VariantTestAccuracy != nil {
			s += fmt.Sprintf("; reference accuracy %.2f%% on the 10,000 MNIST test images", 100**r.VariantTestAccuracy)
		}
		return s
	default:
		return fmt.Sprintf("weights %s", r.Weights)
	}
}

func (r *Report) pruningText() string {
	pr := r.Pruning
	var parts []string
	switch pr.Source {
	case "none":
		parts = append(parts, "no static pruning")
	case "magnitude":
		parts = append(parts, fmt.Sprintf("b=%d density %g (one-shot magnitude)", pr.Block, pr.Density))
	default:
		parts = append(parts, fmt.Sprintf("b=%d density %.3g (masks from the %s weights)", pr.Block, pr.Density, pr.Source))
	}
	if pr.Keep < 1 && len(pr.TDLayers) > 0 {
		parts = append(parts, fmt.Sprintf("token keep %g at layers %s", pr.Keep, joinInts(pr.TDLayers, ",")))
	} else {
		parts = append(parts, "no token dropping")
	}
	return strings.Join(parts, ", ")
}

func (r *Report) writeSummary(p *printer) {
	p.row("model", fmt.Sprintf("%s, %s", r.Model, r.weightsText()))
	p.row("pruning", r.pruningText())
	if r.Reference {
		p.row("run", "reference forward pass only (-reference): no accelerator simulated")
		p.row("estimator", fmt.Sprintf("analytical, for topology %s at %g MHz", r.Topology, r.ClockMHz))
	} else {
		p.row("topology", fmt.Sprintf("%s: %s fidelity, %s load balancing, %g MHz", r.Topology, r.Fidelity, r.Balance, r.ClockMHz))
	}
	p.row("inputs", fmt.Sprintf("%s: %s", images(r.Images), r.Inputs))
	p.row("MACs/image", fmt.Sprintf("%s pruned of %s dense (%s), the paper's count; attention products %s of %s",
		si(r.MACs.Pruned), si(r.MACs.Dense), fewer(r.MACs), si(r.AttentionMACs.Pruned), si(r.AttentionMACs.Dense)))
	p.row("params", fmt.Sprintf("%s pruned of %s dense (%s)", si(r.Params.Pruned), si(r.Params.Dense), fewer(r.Params)))
	p.printf("\n")
}

func (r *Report) writeImages(p *printer) {
	if r.TimingOnly {
		p.row("images", "timing only: no predictions")
		p.printf("\n")
		return
	}
	labelled := len(r.Labels) == len(r.Top1)
	if labelled {
		p.row("image", "label", "top1", "result")
	} else {
		p.row("image", "top1")
	}
	for i, c := range r.Top1 {
		if i == maxImageRows {
			p.row(fmt.Sprintf("... %d more (see -json)", len(r.Top1)-maxImageRows))
			break
		}
		if labelled {
			mark := "wrong"
			if c == r.Labels[i] {
				mark = "ok"
			}
			p.row(strconv.Itoa(i), strconv.Itoa(r.Labels[i]), strconv.Itoa(c), mark)
		} else {
			p.row(strconv.Itoa(i), strconv.Itoa(c))
		}
	}
	if r.Accuracy != nil {
		p.row("accuracy", fmt.Sprintf("%d/%d = %.1f%%", r.correct(), len(r.Top1), 100**r.Accuracy))
	}
	p.printf("\n")
}

func (r *Report) writeLatency(p *printer) {
	if r.Reference {
		p.row("estimator", fmt.Sprintf("%s cycles/image = %.2f us", group(r.EstimatorCyclesPerImage), r.EstimatorUSPerImage))
		p.printf("\n")
		return
	}
	p.row("latency", fmt.Sprintf("%s cycles/image = %.2f us at %g MHz, %s images/s (%s cycles for %s)",
		groupf(r.CyclesPerImage), r.LatencyUSPerImage, r.ClockMHz, groupf(r.ImagesPerSecond), group(r.CyclesTotal), images(r.Images)))
	p.row("estimator", fmt.Sprintf("%s cycles/image = %.2f us; simulated is %s",
		group(r.EstimatorCyclesPerImage), r.EstimatorUSPerImage, ratio(r.CyclesPerImage, float64(r.EstimatorCyclesPerImage))))
	p.printf("\n")
	if len(r.CriticalPath) == 0 {
		return
	}
	n := float64(max(r.Images, 1))
	p.row("critical path", "cycles/image", "share")
	for _, c := range r.CriticalPath {
		if c.Cycles != 0 || strings.HasPrefix(c.Cause, "MPCA") {
			p.row(c.Cause, groupf(c.PerImage), percent(c.Cycles, r.CyclesTotal))
		}
	}
	p.row("total", groupf(float64(r.CyclesTotal)/n), "")
	p.printf("\n")
	var gap int64
	for _, g := range r.Gap {
		gap += g.Cycles
	}
	p.row("gap to the estimator", "cycles/image")
	for _, g := range r.Gap {
		if g.Cycles != 0 || strings.HasPrefix(g.Cause, "MPCA") {
			p.row(g.Cause, groupf(g.PerImage))
		}
	}
	p.row("total", groupf(float64(gap)/n))
	p.printf("\n")
	if r.Bottleneck != "" {
		p.row("bottleneck", r.Bottleneck)
		p.printf("\n")
	}
	if len(r.Backpressure) > 0 {
		p.row("full FIFOs on the critical path", "depth", "on chip", "writer waited")
		for i, b := range r.Backpressure {
			if i == topRows {
				break
			}
			p.row(b.FIFO, strconv.Itoa(b.Depth), bytesText(b.Bytes), group(b.Cycles))
		}
		p.printf("\n")
	}
}

// writeLayers prints image 0's cycles per layer and op: a "sim" line (the
// layer's share of the critical path, by op and unit) and an "est" line
// (the estimator's) per layer, in columns of the ops and units that have any.
func (r *Report) writeLayers(p *printer) {
	if len(r.Layers) == 0 {
		return
	}
	cols := r.columns()
	if r.Reference {
		p.printf("estimated cycles of image 0 per layer and op\n")
		p.row(append([]string{"layer", "tokens", "heads", "total"}, cols...)...)
	} else {
		p.printf("cycles of image 0 per layer: its critical path by op and unit (sim) and the estimator (est); PE max/mean over all PEs of the MPCA\n")
		p.row(append([]string{"layer", "tokens", "heads", "PE max/mean", "", "total"}, cols...)...)
	}
	for _, l := range r.Layers {
		sim, est := map[string]int64{}, map[string]int64{}
		for _, o := range l.Ops {
			sim[o.Name] += o.Cycles
			est[o.Name] += o.EstimatorCycles
		}
		first := []string{strconv.Itoa(l.Index), fmt.Sprintf("%d->%d", l.TokensIn, l.TokensOut), strconv.Itoa(l.HeadsKept)}
		if r.Reference {
			p.row(append(first, cells(l.EstimatorCycles, cols, est)...)...)
			continue
		}
		p.row(append(append(first, fmt.Sprintf("%.3f", l.PEImbalance), "sim"), cells(l.Cycles, cols, sim)...)...)
		p.row(append([]string{"", "", "", "", "est"}, cells(l.EstimatorCycles, cols, est)...)...)
	}
	p.printf("\n")
}

// columns lists the layer columns that hold any cycles, in the order the
// layers list them (every layer lists the same ones): the MPCA ops always,
// the other units when on the path.
func (r *Report) columns() []string {
	used := map[string]bool{}
	for _, l := range r.Layers {
		for _, o := range l.Ops {
			used[o.Name] = used[o.Name] || o.Kind == KindMPCA || o.Cycles != 0
		}
	}
	var cols []string
	for _, l := range r.Layers {
		for _, o := range l.Ops {
			if used[o.Name] && !slices.Contains(cols, o.Name) {
				cols = append(cols, o.Name)
			}
		}
	}
	return cols
}

func cells(total int64, cols []string, byCol map[string]int64) []string {
	out := []string{group(total)}
	for _, c := range cols {
		out = append(out, group(byCol[c]))
	}
	return out
}

func (r *Report) writeImbalance(p *printer) {
	if len(r.Imbalance) == 0 {
		return
	}
	var ideal int64
	for _, im := range r.Imbalance {
		if im.Policy == "ideal" {
			ideal = im.ComputeCycles
		}
	}
	p.printf("PE load of image 0 over the MPCA ops, each op alone: the busiest PE's work summed (max/mean over all PEs, idle ones included) and the fluid bound, the work spread evenly over every PE\n")
	p.row("policy", "max/mean", "busiest PE", "over fluid bound", "vs ideal", "")
	var faster []string
	for _, im := range r.Imbalance {
		used := ""
		if im.Used {
			used = "<- this run"
		}
		vs := "-"
		if ideal > 0 {
			vs = fmt.Sprintf("%+.1f%%", 100*float64(im.ComputeCycles-ideal)/float64(ideal))
		}
		over := "-"
		if im.FluidCycles > 0 {
			over = fmt.Sprintf("%+.1f%%", 100*float64(im.ComputeCycles-im.FluidCycles)/float64(im.FluidCycles))
		}
		p.row(im.Policy, fmt.Sprintf("%.3f", im.MaxOverMean), group(im.ComputeCycles), over, vs, used)
		if im.Policy != "ideal" && im.ComputeCycles < ideal {
			faster = append(faster, fmt.Sprintf("%s by %s cycles", im.Policy, group(ideal-im.ComputeCycles)))
		}
	}
	if len(faster) > 0 {
		p.row("faster than lock-step ideal", strings.Join(faster, ", ")+": free-running PEs start their next block as soon as a light one ends, where the ideal policy's rounds wait for the slowest PE and pad partial rounds")
	}
	p.printf("\n")
}

func (r *Report) writeUnits(p *printer) {
	if len(r.Units) == 0 {
		return
	}
	onPath := slices.Clone(r.Units)
	slices.SortStableFunc(onPath, func(a, b Unit) int { return cmp.Compare(b.Critical, a.Critical) })
	if onPath[0].Critical > 0 {
		p.row("units on the critical path", "on path", "share", "busy", "hidden by overlap")
		for i, u := range onPath {
			if i == topRows || u.Critical == 0 {
				break
			}
			p.row(u.Name, group(u.Critical), percent(u.Critical, r.CyclesTotal), group(u.Busy), group(u.Hidden))
		}
		p.printf("\n")
	}
	busiest := Busiest(r.Units, topRows)
	p.row("busiest units", "utilization", "busy", "starved", "mostly on", "blocked", "mostly on")
	for _, u := range busiest {
		p.row(u.Name, fmt.Sprintf("%.1f%%", 100*u.Utilization), group(u.Busy),
			group(u.Starved), orDash(u.StarvedOn), group(u.Blocked), orDash(u.BlockedOn))
	}
	if r.PEUtilization > 0 {
		p.row("PEs", fmt.Sprintf("%.1f%%", 100*r.PEUtilization), "(their real work over the makespan)")
	}
	p.printf("\n")
	blocked := MostBlocked(r.Units, topRows)
	if len(blocked) == 0 {
		p.printf("no unit was ever blocked by a full FIFO\n\n")
		return
	}
	p.row("most blocked units", "blocked", "mostly on", "utilization")
	for _, u := range blocked {
		p.row(u.Name, group(u.Blocked), orDash(u.BlockedOn), fmt.Sprintf("%.1f%%", 100*u.Utilization))
	}
	p.printf("\n")
}

func (r *Report) writeFIFOs(p *printer) {
	full := FullestFIFOs(r.FIFOs, topRows)
	if len(full) == 0 {
		if len(r.FIFOs) > 0 {
			p.printf("no FIFO was ever full\n\n")
		}
		return
	}
	p.row("fullest FIFOs", "capacity", "on chip", "max occupancy", "time full", "time empty")
	model := false
	for _, f := range full {
		name := f.Name
		if f.SetBy == "model" {
			name += " *"
			model = true
		}
		p.row(name, strconv.Itoa(f.Capacity), bytesText(f.Bytes), strconv.Itoa(f.MaxOccupancy),
			fmt.Sprintf("%.1f%%", 100*f.FullFraction), fmt.Sprintf("%.1f%%", 100*f.EmptyFraction))
	}
	if model {
		p.printf("* sized by the model (the token buffer, the command queue), not by the topology file\n")
	}
	p.printf("\n")
}

// bytesText is a byte count in KiB or B.
func bytesText(n int64) string {
	if n >= 1<<10 {
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// images says "1 image" or "n images".
func images(n int) string { return plural(n, "image") }

// plural counts n of noun: "1 image", "3 images".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// groupf formats x rounded to an integer, or with one decimal below 100,
// with thousands separators.
func groupf(x float64) string {
	if x > -100 && x < 100 && x != float64(int64(x)) {
		return fmt.Sprintf("%.1f", x)
	}
	return group(int64(math.Round(x)))
}

// group formats n with thousands separators.
func group(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	if neg {
		s = s[1:]
	}
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// si formats a count with a k, M or G suffix.
func si(n int64) string {
	x := float64(n)
	switch {
	case x >= 1e9:
		return fmt.Sprintf("%.2f G", x/1e9)
	case x >= 1e6:
		return fmt.Sprintf("%.2f M", x/1e6)
	case x >= 1e3:
		return fmt.Sprintf("%.1f k", x/1e3)
	}
	return strconv.FormatInt(n, 10)
}

// fewer says how many times fewer the pruned count is.
func fewer(c Counts) string {
	if c.Pruned == 0 {
		return "all pruned"
	}
	return fmt.Sprintf("%.2fx fewer", float64(c.Dense)/float64(c.Pruned))
}

// ratio says how much larger sim is than est.
func ratio(sim, est float64) string {
	if est == 0 {
		return "n/a (the estimate is 0)"
	}
	return fmt.Sprintf("%.3fx it (%+.1f%%)", sim/est, 100*(sim-est)/est)
}

func percent(part, whole int64) string {
	if whole == 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f%%", 100*float64(part)/float64(whole))
}

func joinInts(xs []int, sep string) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = strconv.Itoa(x)
	}
	return strings.Join(s, sep)
}
