package actors

import (
	"fmt"
	"math"

	"vitflow/runtime"
)

// Port is a unit's pair of FIFOs as the controller sees them: jobs out, answers back.
type Port[J any] struct {
	In, Out *runtime.FIFO[J]
}

// Controller runs the layer program for every image, dispatching each stage
// to its unit and waiting for the answer before the next stage, and records
// when everything happened. An MPCA op goes to every CHM the schedule uses,
// with that CHM's plan; the op ends when the last CHM has answered.
type Controller struct {
	Model    *Model
	Schedule *Schedule
	Images   [][]float32
	// CHMs[i].In carries jobs to CHM i; CHMs[i].Out its answers.
	CHMs       []Port[*MPCAJob]
	LayerNorm  Port[*SFUJob]
	Softmax    Port[*SFUJob]
	GELU       Port[*SFUJob]
	Residual   Port[*SFUJob]
	TokenDrop  Port[*DropJob]
	PatchEmbed Port[*EmbedJob]
	Classifier Port[*ClassifyJob]

	// Records holds one record per image once Run has returned.
	Records []ImageRecord
}

// ImageRecord is what the controller saw of one image.
type ImageRecord struct {
	Logits     []float32
	Start, End int64
	Embed      StageRecord
	Classify   StageRecord
	Layers     []LayerRecord
}

// LayerRecord is one encoder layer of one image.
type LayerRecord struct {
	TokensIn, TokensOut int
	Start, End          int64
	Ops                 [NumOps]OpRecord
	// Stages are the non-MPCA stages in program order.
	Stages []StageRecord
}

// OpRecord is one MPCA op: Cycles from dispatch to the last answer, of which
// Compute is the busiest CHM's planned work, Memory the CHMs' extra time
// waiting for weights, and Latency the rest (FIFO latency of the dispatch
// and of the answers).
type OpRecord struct {
	Ran                              bool
	Cycles, Compute, Memory, Latency int64
}

// StageRecord is one dispatch to a special-function unit, the token dropping
// module, the patch embedding or the classifier: Cycles from dispatch to
// answer, Work the unit's charge, Latency the rest.
type StageRecord struct {
	Name                  string
	Cycles, Work, Latency int64
}

// Run is the controller's actor body.
func (u *Controller) Run(ctx *runtime.Ctx) error {
	if len(u.Schedule.Layers) != len(u.Model.Layers) || len(u.Model.Layers) == 0 {
		return fmt.Errorf("a schedule of %d layers for a model of %d", len(u.Schedule.Layers), len(u.Model.Layers))
	}
	if n := len(u.Schedule.Layers[0][0].CHMs); len(u.CHMs) != n {
		return fmt.Errorf("%d CHM ports for a schedule of %d CHMs", len(u.CHMs), n)
	}
	jobs := make([]MPCAJob, len(u.CHMs))
	ws := newWorkspace(u.Model)
	u.Records = make([]ImageRecord, 0, len(u.Images))
	for i, img := range u.Images {
		rec, err := u.image(ctx, img, jobs, ws)
		if err != nil {
			return fmt.Errorf("image %d: %w", i, err)
		}
		u.Records = append(u.Records, rec)
	}
	return nil
}

// workspace is the on-chip token buffer: every intermediate of a layer,
// sized for the longest sequence and reused by every layer and image (each
// stage finishes before the next starts, so nothing is overwritten early).
type workspace struct {
	xn, q, k, v, o, probs, hid, mlp []float32
	h                               [2][]float32 // the residual stream, alternating
}

func newWorkspace(m *Model) *workspace {
	n, d := m.Tokens, m.Dim
	var wk, hp, heads int
	for _, l := range m.Layers {
		wk, hp, heads = max(wk, l.Heads*m.HeadDim), max(hp, l.FC1.Cols), max(heads, l.Heads)
	}
	return &workspace{xn: make([]float32, n*d), q: make([]float32, n*wk), k: make([]float32, n*wk),
		v: make([]float32, n*wk), o: make([]float32, n*wk), probs: make([]float32, heads*n*n),
		hid: make([]float32, n*hp), mlp: make([]float32, n*d), h: [2][]float32{make([]float32, n*d), make([]float32, n*d)}}
}

func (u *Controller) image(ctx *runtime.Ctx, img []float32, jobs []MPCAJob, ws *workspace) (ImageRecord, error) {
	m := u.Model
	d, hd := m.Dim, m.HeadDim
	rec := ImageRecord{Start: ctx.Now(), Layers: make([]LayerRecord, len(m.Layers))}
	ej := &EmbedJob{Image: img}
	var err error
	if rec.Embed, err = stage(ctx, "patchembed", u.PatchEmbed, ej, &ej.Work); err != nil {
		return rec, err
	}
	x, n := ej.X, m.Tokens
	for l := range m.Layers {
		L := &m.Layers[l]
		lr := &rec.Layers[l]
		lr.TokensIn, lr.Start = n, ctx.Now()
		if n != L.TokensIn {
			return rec, fmt.Errorf("layer %d: %d tokens arrive, the schedule planned %d", l, n, L.TokensIn)
		}
		sfu := func(name string, p Port[*SFUJob], j *SFUJob) error {
			r, err := stage(ctx, name, p, j, &j.Work)
			lr.Stages = append(lr.Stages, r)
			return err
		}
		mpca := func(o Op, fill func(j *MPCAJob)) error {
			r, err := u.mpca(ctx, l, o, jobs, fill)
			lr.Ops[o] = r
			return err
		}
		wk := hd * L.Heads
		xn := ws.xn[:n*d]
		if err := sfu("layernorm1", u.LayerNorm, &SFUJob{Dst: xn, X: x, Gamma: L.Norm1W, Beta: L.Norm1B, Eps: m.LNEps,
			Rows: n, Cols: d, Elements: n * d}); err != nil {
			return rec, err
		}
		q, k, v := ws.q[:n*wk], ws.k[:n*wk], ws.v[:n*wk]
		for _, op := range []struct {
			o    Op
			bias []float32
			out  []float32
		}{{OpQ, L.QB, q}, {OpK, L.KB, k}, {OpV, L.VB, v}} {
			if err := mpca(op.o, func(j *MPCAJob) {
				j.W, j.Bias, j.A, j.LDA, j.C, j.LDC = L.Weight(op.o), op.bias, xn, d, op.out, wk
			}); err != nil {
				return rec, err
			}
		}
		probs := ws.probs[:L.Heads*n*n]
		if err := mpca(OpQK, func(j *MPCAJob) {
			j.A, j.LDA, j.B, j.LDB, j.C = q, wk, k, wk, probs
			j.Scale = float32(1 / math.Sqrt(float64(hd)))
		}); err != nil {
			return rec, err
		}
		if L.Heads > 0 {
			if err := sfu("softmax", u.Softmax, &SFUJob{X: probs, Rows: L.Heads * n, Cols: n, Elements: L.Heads * n * n}); err != nil {
				return rec, err
			}
		}
		if err := mpca(OpRowSum, func(j *MPCAJob) {}); err != nil {
			return rec, err
		}
		o := ws.o[:n*wk]
		if err := mpca(OpAV, func(j *MPCAJob) { j.A, j.B, j.LDB, j.C, j.LDC = probs, v, wk, o, wk }); err != nil {
			return rec, err
		}
		h := ws.h[0][:n*d]
		if &x[0] == &ws.h[0][0] {
			h = ws.h[1][:n*d]
		}
		if err := mpca(OpO, func(j *MPCAJob) { j.W, j.Bias, j.A, j.LDA, j.C, j.LDC = L.O, L.OB, o, wk, h, d }); err != nil {
			return rec, err
		}
		if err := sfu("residual1", u.Residual, &SFUJob{Dst: h, X: h, Y: x, Rows: n, Cols: d, Elements: n * d}); err != nil {
			return rec, err
		}
		// Keeping all but one patch still fuses that one: the length stays
		// n, so TokensOut alone cannot tell whether the layer drops.
		if L.Drop && L.Kept < n-1 {
			dj := &DropJob{X: h, N: n, Dim: d, Probs: probs, Heads: L.Heads, Kept: L.Kept}
			r, err := stage(ctx, "tokendrop", u.TokenDrop, dj, &dj.Work)
			lr.Stages = append(lr.Stages, r)
			if err != nil {
				return rec, err
			}
			h, n = dj.Out, L.TokensOut
		}
		if n != L.TokensOut {
			return rec, fmt.Errorf("layer %d: %d tokens leave, the schedule planned %d", l, n, L.TokensOut)
		}
		xn = xn[:n*d]
		if err := sfu("layernorm2", u.LayerNorm, &SFUJob{Dst: xn, X: h, Gamma: L.Norm2W, Beta: L.Norm2B, Eps: m.LNEps,
			Rows: n, Cols: d, Elements: n * d}); err != nil {
			return rec, err
		}
		hp := L.FC1.Cols
		hid := ws.hid[:n*hp]
		if err := mpca(OpFC1, func(j *MPCAJob) { j.W, j.Bias, j.A, j.LDA, j.C, j.LDC = L.FC1, L.FC1B, xn, d, hid, hp }); err != nil {
			return rec, err
		}
		if err := sfu("gelu", u.GELU, &SFUJob{X: hid, Rows: n, Cols: hp, Elements: n * L.Hidden}); err != nil {
			return rec, err
		}
		mlp := ws.mlp[:n*d]
		if err := mpca(OpFC2, func(j *MPCAJob) { j.W, j.Bias, j.A, j.LDA, j.C, j.LDC = L.FC2, L.FC2B, hid, hp, mlp, d }); err != nil {
			return rec, err
		}
		if err := sfu("residual2", u.Residual, &SFUJob{Dst: h, X: h, Y: mlp, Rows: n, Cols: d, Elements: n * d}); err != nil {
			return rec, err
		}
		x = h
		lr.TokensOut, lr.End = n, ctx.Now()
	}
	cj := &ClassifyJob{X: x}
	if rec.Classify, err = stage(ctx, "classifier", u.Classifier, cj, &cj.Work); err != nil {
		return rec, err
	}
	rec.Logits, rec.End = cj.Logits, ctx.Now()
	return rec, nil
}

// stage sends j to a unit and waits for the answer; work points at the
// job's Work, which the unit fills.
func stage[J any](ctx *runtime.Ctx, name string, p Port[J], j J, work *int64) (StageRecord, error) {
	r := StageRecord{Name: name}
	t := ctx.Now()
	if err := p.In.Send(ctx, j); err != nil {
		return r, fmt.Errorf("%s: %w", name, err)
	}
	if _, err := p.Out.Recv(ctx); err != nil {
		return r, fmt.Errorf("%s: %w", name, err)
	}
	r.Cycles, r.Work = ctx.Now()-t, *work
	r.Latency = r.Cycles - r.Work
	return r, nil
}

// mpca runs op o of layer l on every CHM its plan uses; fill sets the operands.
func (u *Controller) mpca(ctx *runtime.Ctx, l int, o Op, jobs []MPCAJob, fill func(j *MPCAJob)) (OpRecord, error) {
	plan := &u.Schedule.Layers[l][o]
	var r OpRecord
	t := ctx.Now()
	for i := range jobs {
		cp := &plan.CHMs[i]
		if !cp.Used() {
			continue
		}
		j := &jobs[i]
		*j = MPCAJob{Layer: l, Op: o, Plan: cp, Cost: plan.Cost, M: u.Model.Layers[l].TokensIn, HeadDim: u.Model.HeadDim}
		if o == OpFC1 || o == OpFC2 {
			j.M = u.Model.Layers[l].TokensOut
		}
		fill(j)
		if err := u.CHMs[i].In.Send(ctx, j); err != nil {
			return r, fmt.Errorf("layer %d %s: chm%d: %w", l, o, i, err)
		}
		r.Ran = true
	}
	if !r.Ran {
		return r, nil
	}
	first, last := int64(math.MaxInt64), int64(0)
	for i := range jobs {
		if !plan.CHMs[i].Used() {
			continue
		}
		j, err := u.CHMs[i].Out.Recv(ctx)
		if err != nil {
			return r, fmt.Errorf("layer %d %s: chm%d: %w", l, o, i, err)
		}
		first, last = min(first, j.Start), max(last, j.End)
	}
	r.Cycles = ctx.Now() - t
	r.Compute = plan.Compute
	r.Memory = last - first - plan.Compute
	r.Latency = r.Cycles - (last - first)
	return r, nil
}
