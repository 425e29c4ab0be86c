package topology

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"math"
	"slices"

	"vitflow/actors"
	"vitflow/runtime"
)

// DefaultTraceEvents is the cap on a trace's events when TraceOptions
// gives none: the runtime's.
const DefaultTraceEvents = runtime.DefaultTraceEvents

// TraceOptions asks a run for a Perfetto trace (the JSON trace-event
// format; open it in ui.perfetto.dev).
//
// The trace has a process per group of units, in the order data meets
// them: control, memory, patch embedding and classifier, the MPCA (its
// dispatch front: the MPCA actor's clock), each CHM with a track per PE,
// the special-function units, the token dropping module (with a counter per
// layer of the tokens it keeps) and the FIFOs (a counter each of its
// occupancy). Busy slices say what was computed ("L3 FC1 rows 32-47"),
// stall slices which FIFO and which unit at its other end ("starved on
// gelu->mpca waiting for gelu", "blocked on mpca->gelu by gelu"), and arrows
// follow each row block through the units of its layer. Time is in cycles,
// each shown as 1 us. The trace is built from the records every run keeps
// (actors.Recorder) after it ends, so tracing changes no simulated time and
// costs nothing when off.
type TraceOptions struct {
	// W receives the trace; nil: no trace.
	W io.Writer
	// MaxEvents caps the events (0: DefaultTraceEvents). A trace with more
	// ends at the cycle before which it holds everything, says so in a mark
	// there, and the run's Stats.TraceCut is that cycle.
	MaxEvents int
	// Images and Layers, if not nil, trace only those images and encoder
	// layers (the patch embedding and the classifier only when every layer
	// is traced). FIFO counters then cover the traced slices' span.
	Images, Layers []int
}

// RunTraced is Run with a trace described by opt.
func (a *Accelerator) RunTraced(ctx context.Context, images [][]float32, opt TraceOptions) (*SimResult, error) {
	return a.run(ctx, images, opt, nil, false)
}

// check validates opt for a run of images images.
func (opt TraceOptions) check(images, layers int) error {
	if opt.MaxEvents < 0 {
		return fmt.Errorf("simulate: max trace events %d is negative", opt.MaxEvents)
	}
	for _, i := range opt.Images {
		if i < 0 || i >= images {
			return fmt.Errorf("simulate: trace image %d is not in the run (images 0..%d)", i, images-1)
		}
	}
	for _, l := range opt.Layers {
		if l < 0 || l >= layers {
			return fmt.Errorf("simulate: trace layer %d is not in the model (layers 0..%d)", l, layers-1)
		}
	}
	return nil
}

// Groups of units, a process each in the trace, in the order they are
// shown: the CHMs come right after the MPCA's front (see tracer.pid).
const (
	groupControl = iota
	groupMemory
	groupEngines
	groupMPCA
	groupSFU
	groupTokenDrop
	groupFIFOs
)

// unitTracks places the units that are not loaders: group, track.
var unitTracks = map[actors.Stage][2]int{
	actors.StageControl: {groupControl, 1},
	actors.StageEmbed:   {groupEngines, 1}, actors.StageClassifier: {groupEngines, 2},
	actors.StageMPCA:       {groupMPCA, 1},
	actors.StageLayerNorm1: {groupSFU, 1}, actors.StageSoftmax: {groupSFU, 2}, actors.StageResidual1: {groupSFU, 3},
	actors.StageLayerNorm2: {groupSFU, 4}, actors.StageGELU: {groupSFU, 5}, actors.StageResidual2: {groupSFU, 6},
	actors.StageTokenDrop: {groupTokenDrop, 1},
}

// tracer builds one run's trace.
type tracer struct {
	a      *Accelerator
	bt     *built
	stats  *runtime.Stats
	tf     *runtime.TraceFile
	images map[int32]bool // nil: all
	layers map[int32]bool // nil: all
	tracks [][2]int       // per actor: process, track
	first  map[spotKey]runtime.TraceSpot
	names  map[string]string // one copy of each slice name
	span   [2]int64          // the traced slices' extent
	pes    int
}

// spotKey names a unit's first slice on a row block, for the arrows: an
// actor's (op -1), or the PEs' first block of an op (actor -1).
type spotKey struct {
	actor        int
	op           actors.Op
	image, layer int32
	unit         int32
}

// writeTrace writes the trace of a finished run (opt.MaxEvents set) and
// returns the cycle it stops at (0: whole).
func (a *Accelerator) writeTrace(bt *built, stats *runtime.Stats, opt TraceOptions) (int64, error) {
	tr := &tracer{a: a, bt: bt, stats: stats, tf: runtime.NewTraceFile(), first: map[spotKey]runtime.TraceSpot{}, names: map[string]string{},
		span: [2]int64{never, 0}, pes: a.config.Geometry.PEs()}
	if opt.Images != nil {
		tr.images = map[int32]bool{}
		for _, i := range opt.Images {
			tr.images[int32(i)] = true
		}
	}
	if opt.Layers != nil {
		tr.layers = map[int32]bool{}
		for _, l := range opt.Layers {
			tr.layers[int32(l)] = true
		}
	}
	tr.tf.Note(fmt.Sprintf("time: 1 cycle is shown as 1 us (the clock is %g MHz: 1 cycle is %.4g ns)",
		a.desc.ClockMHz, 1000/a.desc.ClockMHz))
	tr.layout()
	tr.units()
	tr.blocks()
	tr.arrows()
	tr.counters()
	return tr.tf.Write(opt.W, opt.MaxEvents) // run has set the default
}

// never is a time after every event.
const never = math.MaxInt64

// traced reports whether the trace shows image's layer (-1: outside the
// encoder layers).
func (tr *tracer) traced(image, layer int32) bool {
	if tr.images != nil && !tr.images[image] {
		return false
	}
	if layer < 0 {
		return tr.layers == nil
	}
	return tr.layers == nil || tr.layers[layer]
}

// pid is a group's process: pids count in the order processes are shown
// (which is also their sort index), for viewers that order them by pid.
func (tr *tracer) pid(group int) int {
	if group > groupMPCA {
		group += tr.a.config.Geometry.H // after the CHMs
	}
	return group + 1
}

// chm is CHM c's process, right after the MPCA's.
func (tr *tracer) chm(c int) int { return tr.pid(groupMPCA) + 1 + c }

// layout names the processes and tracks.
func (tr *tracer) layout() {
	tf := tr.tf
	for g, name := range []string{groupControl: "control", groupMemory: "memory (weight loaders)",
		groupEngines: "patch embedding and classifier", groupMPCA: "MPCA", groupSFU: "special-function units",
		groupTokenDrop: "token dropping", groupFIFOs: "FIFO occupancy"} {
		tf.Process(tr.pid(g), name, tr.pid(g))
	}
	for c := range tr.a.config.Geometry.H {
		tf.Process(tr.chm(c), fmt.Sprintf("MPCA CHM %d", c), tr.chm(c))
		for p := range tr.pes {
			tf.Thread(tr.chm(c), p+1, fmt.Sprintf("CHM %d PE %d", c, p), p)
		}
	}
	loaders := 0
	for i, name := range tr.bt.net.Actors {
		stage := tr.bt.stages[i]
		t := unitTracks[stage]
		if stage == actors.StageMemory { // one loader of several
			loaders++
			t = [2]int{groupMemory, loaders}
		}
		t[0] = tr.pid(t[0])
		tr.tracks = append(tr.tracks, t)
		label := name
		if stage == actors.StageMPCA {
			label = name + ": dispatch front"
		}
		tf.Thread(t[0], t[1], label, t[1])
	}
}

// actor is the index of the one actor of stage (not StageMemory, which
// has one per channel).
func (tr *tracer) actor(stage actors.Stage) int { return slices.Index(tr.bt.stages, stage) }

// rows names the tokens of row block unit of an n-token sequence; on the
// attention loop (heads) units are head*rows+row.
func (tr *tracer) rows(unit int32, n int, heads bool) string {
	b := tr.a.block
	r := int(unit)
	s := ""
	if heads {
		per := (n + b - 1) / b
		s = fmt.Sprintf("head %d ", r/per)
		r %= per
	}
	return s + fmt.Sprintf("rows %d-%d", r*b, min((r+1)*b, n)-1)
}

// tokens is the length of the sequence a stage or op works on in layer l.
func (tr *tracer) tokens(l int32, stage actors.Stage, op actors.Op) int {
	m := tr.a.model
	if l < 0 {
		return m.Tokens
	}
	L := &m.Layers[l]
	switch stage {
	case actors.StageLayerNorm2, actors.StageGELU, actors.StageResidual2:
		return L.TokensOut
	case actors.StageMPCA:
		return L.OpTokens(op)
	}
	return L.TokensIn
}

func attention(op actors.Op) bool {
	return op == actors.OpQK || op == actors.OpRowSum || op == actors.OpAV
}

// busyName says what a busy segment computed.
func (tr *tracer) busyName(s actors.Segment) string {
	prefix := ""
	if s.Layer >= 0 {
		prefix = fmt.Sprintf("L%d ", s.Layer)
	}
	switch s.Stage {
	case actors.StageMPCA:
		if s.Layer < 0 {
			return "before the first snapshot"
		}
		return prefix + s.Op.Title()
	case actors.StageMemory:
		return prefix + s.Op.Title() + " weights"
	case actors.StageTokenDrop:
		L := &tr.a.model.Layers[s.Layer]
		return fmt.Sprintf("%stoken drop: %d -> %d tokens (top %d kept, the rest fused)", prefix, L.TokensIn, L.TokensOut, L.Kept)
	case actors.StageEmbed:
		prefix += "patch embedding"
	case actors.StageClassifier:
		return fmt.Sprintf("image %d classifier", s.Image)
	default:
		prefix += s.Stage.String()
	}
	if s.Unit < 0 {
		return prefix
	}
	return prefix + " " + tr.rows(s.Unit, tr.tokens(s.Layer, s.Stage, s.Op), s.Stage == actors.StageSoftmax)
}

func (tr *tracer) stallName(s actors.Segment) string {
	k := tr.bt.net.Links[s.Link]
	if s.Kind == actors.Blocked {
		return "blocked on " + k.Name + " by " + tr.bt.net.Actors[k.Reader]
	}
	return "starved on " + k.Name + " waiting for " + tr.bt.net.Actors[k.Writer]
}

// intern returns one copy of name: the same names recur image after image.
func (tr *tracer) intern(name string) string {
	if n, ok := tr.names[name]; ok {
		return n
	}
	tr.names[name] = name
	return name
}

func (tr *tracer) widen(start, end int64) {
	tr.span = [2]int64{min(tr.span[0], start), max(tr.span[1], end)}
}

// units adds every unit's busy and stall slices, from its record. Pieces
// that touch and say the same are one slice.
func (tr *tracer) units() {
	type piece struct {
		seg actors.Segment
		on  bool
	}
	same := func(x, y actors.Segment) bool {
		return x.End == y.Start && x.Kind == y.Kind && x.Stage == y.Stage && x.Op == y.Op && x.Link == y.Link &&
			x.Image == y.Image && x.Layer == y.Layer && x.Unit == y.Unit
	}
	for i, rec := range tr.bt.recs {
		t := tr.tracks[i]
		var cur piece
		flush := func() {
			if !cur.on {
				return
			}
			s := cur.seg
			args := []runtime.TraceArg{{Name: "image", Value: int64(s.Image)}}
			if s.Layer >= 0 {
				args = append(args, runtime.TraceArg{Name: "layer", Value: int64(s.Layer)})
			}
			if s.Kind == actors.Busy {
				tr.tf.Slice(t[0], t[1], "busy", tr.intern(tr.busyName(s)), s.Start, s.End-s.Start, args...)
				// Only work sets the span the counters cover: a unit's wait
				// for its first traced input can start at cycle 0.
				tr.widen(s.Start, s.End)
			} else {
				tr.tf.Slice(t[0], t[1], "stall", tr.intern(tr.stallName(s)), s.Start, s.End-s.Start, args...)
			}
			cur.on = false
		}
		for _, s := range rec.Segments {
			if !tr.traced(s.Image, s.Layer) {
				flush()
				continue
			}
			if s.Kind == actors.Busy && s.Unit >= 0 {
				k := spotKey{actor: i, op: -1, image: s.Image, layer: s.Layer, unit: s.Unit}
				if _, ok := tr.first[k]; !ok {
					tr.first[k] = runtime.TraceSpot{Pid: t[0], Tid: t[1], Start: s.Start, Dur: s.End - s.Start}
				}
			}
			if s.Stage == actors.StageTokenDrop && s.Kind == actors.Busy {
				k := spotKey{actor: i, op: -1, image: s.Image, layer: s.Layer, unit: -1}
				if _, ok := tr.first[k]; !ok {
					tr.first[k] = runtime.TraceSpot{Pid: t[0], Tid: t[1], Start: s.Start, Dur: s.End - s.Start}
				}
			}
			if cur.on && same(cur.seg, s) {
				cur.seg.End = s.End
				continue
			}
			flush()
			cur = piece{seg: s, on: true}
		}
		flush()
	}
}

// blocks adds the PEs' slices: each block of an op's output unit on its
// PE, touching pieces of one unit merged.
func (tr *tracer) blocks() {
	mu := tr.bt.mpca
	byPE := make([][]actors.BlockSpan, tr.a.config.Geometry.H*tr.pes)
	for _, b := range mu.Blocks {
		if tr.traced(b.Image, b.Layer) {
			byPE[b.PE] = append(byPE[b.PE], b)
		}
	}
	for pe, list := range byPE {
		slices.SortStableFunc(list, func(x, y actors.BlockSpan) int { return cmp.Compare(x.Start, y.Start) })
		pid, tid := tr.chm(pe/tr.pes), pe%tr.pes+1
		for i := 0; i < len(list); {
			b := list[i]
			j := i + 1
			for j < len(list) && list[j].Start == list[j-1].End && list[j].Op == b.Op && list[j].Unit == b.Unit &&
				list[j].Image == b.Image && list[j].Layer == b.Layer {
				j++
			}
			end := list[j-1].End
			name := fmt.Sprintf("L%d %s %s", b.Layer, b.Op.Title(), tr.rows(b.Unit, tr.tokens(b.Layer, actors.StageMPCA, b.Op), attention(b.Op)))
			tr.tf.Slice(pid, tid, "busy", tr.intern(name), b.Start, end-b.Start,
				runtime.TraceArg{Name: "image", Value: int64(b.Image)}, runtime.TraceArg{Name: "layer", Value: int64(b.Layer)})
			tr.widen(b.Start, end)
			for _, c := range list[i:j] {
				k := spotKey{actor: -1, op: c.Op, image: c.Image, layer: c.Layer, unit: c.Unit}
				if f, ok := tr.first[k]; !ok || c.Start < f.Start {
					tr.first[k] = runtime.TraceSpot{Pid: pid, Tid: tid, Start: c.Start, Dur: c.End - c.Start}
				}
			}
			i = j
		}
	}
}

// arrows follows every row block of every traced layer through its units:
// LayerNorm 1, Q, the first head's Q·K^T, softmax and A·V, W_O, the first
// residual add (and the token dropping module), LayerNorm 2, FC1, GELU,
// FC2 and the second residual add. A unit that did not work on it (a free
// unit, a removed head) is passed over.
func (tr *tracer) arrows() {
	m := tr.a.model
	sfu := func(stage actors.Stage, img, l, unit int32) spotKey {
		return spotKey{actor: tr.actor(stage), op: -1, image: img, layer: l, unit: unit}
	}
	pe := func(op actors.Op, img, l, unit int32) spotKey {
		return spotKey{actor: -1, op: op, image: img, layer: l, unit: unit}
	}
	for img := range int32(len(tr.bt.embed.Pixels)) {
		for l := range int32(len(m.Layers)) {
			if !tr.traced(img, l) {
				continue
			}
			L := &m.Layers[l]
			b := tr.a.block
			for r := range int32((L.TokensIn + b - 1) / b) {
				chain := []spotKey{sfu(actors.StageLayerNorm1, img, l, r), pe(actors.OpQ, img, l, r), pe(actors.OpQK, img, l, r),
					sfu(actors.StageSoftmax, img, l, r), pe(actors.OpAV, img, l, r), pe(actors.OpO, img, l, r), sfu(actors.StageResidual1, img, l, r)}
				if L.Drops() {
					chain = append(chain, sfu(actors.StageTokenDrop, img, l, -1))
				}
				if int(r)*b < L.TokensOut {
					chain = append(chain, sfu(actors.StageLayerNorm2, img, l, r), pe(actors.OpFC1, img, l, r), sfu(actors.StageGELU, img, l, r),
						pe(actors.OpFC2, img, l, r), sfu(actors.StageResidual2, img, l, r))
				}
				name := fmt.Sprintf("image %d L%d %s", img, l, tr.rows(r, L.TokensIn, false))
				var from *runtime.TraceSpot
				for _, k := range chain {
					to, ok := tr.first[k]
					if !ok {
						continue
					}
					if from != nil {
						tr.tf.Flow("row block", name, *from, to)
					}
					from = &to
				}
			}
		}
	}
}

// counters adds each FIFO's occupancy and each layer's tokens kept.
func (tr *tracer) counters() {
	lo, hi := tr.span[0], tr.span[1]
	whole := tr.images == nil && tr.layers == nil
	if whole {
		lo, hi = 0, never
	}
	for i, f := range tr.stats.FIFOs {
		name := tr.bt.net.Links[i].Name
		// A FIFO that changed more often than it could keep is complete up
		// to its first lost change: the trace ends there if that is in the
		// traced span, and leaves the counter out if it is before.
		switch cut := f.LevelsCut; {
		case cut == 0 || cut > hi:
		case cut <= lo:
			tr.tf.Note(fmt.Sprintf("FIFO %s's occupancy is left out: it changed more often than the event cap before the traced span", name))
			continue
		default:
			tr.tf.CutAt(cut, fmt.Sprintf("FIFO %s changed more often than the event cap", name))
		}
		level, shown := int64(0), false
		for _, v := range f.Levels {
			if v.Time > hi {
				break
			}
			if v.Time < lo {
				level = v.Elements
				continue
			}
			if !shown && v.Time > lo {
				tr.tf.Counter(tr.pid(groupFIFOs), name, "elements", lo, level)
			}
			shown = true
			tr.tf.Counter(tr.pid(groupFIFOs), name, "elements", v.Time, v.Elements)
		}
		if !shown && lo < hi && lo != never {
			tr.tf.Counter(tr.pid(groupFIFOs), name, "elements", lo, level)
		}
	}
	// Tokens: a layer's count from when its first row block starts, for
	// each traced image.
	m := tr.a.model
	ln1 := tr.actor(actors.StageLayerNorm1)
	for img := range int32(len(tr.bt.embed.Pixels)) {
		for l := range int32(len(m.Layers)) {
			if !tr.traced(img, l) {
				continue
			}
			at := int64(never)
			for _, k := range []spotKey{{actor: ln1, op: -1, image: img, layer: l}, {actor: -1, op: actors.OpQ, image: img, layer: l}} {
				if s, ok := tr.first[k]; ok {
					at = min(at, s.Start)
				}
			}
			if at != never {
				tr.tf.Counter(tr.pid(groupTokenDrop), fmt.Sprintf("L%d tokens kept", l), "tokens", at, int64(m.Layers[l].TokensOut))
			}
		}
	}
}
