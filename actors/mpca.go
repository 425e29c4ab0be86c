package actors

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"slices"

	"vitflow/kernels"
	"vitflow/runtime"
)

// MPCA is the multi-level parallel compute array: H CHMs of T×C PEs, one
// shared engine that takes the controller's program a snapshot at a time.
//
// Every PE has its own clock. Under the static and balanced policies a PE
// starts an output block when it is free, the block's input row block (or
// probabilities) has arrived, the op's internal operands are complete
// (all of K for Q·K^T, all of V for A·V, the attention of the row for W_O)
// and, with streamed weights, the block's weight block-column has arrived;
// it then works Block.Work cycles. Under the ideal policy the PEs work in
// lock-step rounds of Snapshot.Cost. An output unit (a row block, or one
// head's row block of scores) is complete when its last block is, and goes
// to its consumer no earlier: the consumer waits for the slowest PE, and
// that wait is the imbalance. Finished units leave in program order: those
// of a snapshot, in the order the snapshot lists them, once it has been
// dispatched.
//
// The actor's own clock is the array's dispatch front: it moves to each
// snapshot's start, to the completion of each unit it sends, and to the
// time a PE needs a weight column that has not arrived; while it waits for
// room in a full output FIFO, no PE starts a new block after it (blocks
// already dispatched keep their times). A unit is sent late when the front
// is already past its completion: it waited for an input, a weight column
// or room, or moved to a unit listed before it that finished later. Inputs are taken off their FIFOs when a snapshot first needs
// them, their visible time (runtime.FIFO.RecvAt) starting the PEs on time
// even when the front is later. Since a snapshot's units leave before the
// next snapshot asks for anything, the array never waits for an input that
// depends on an output it holds.
//
// Every time the array computes is a runtime.Tick, so that a recorded run
// knows how it depends on the FIFOs' events and can be re-timed at other
// depths (runtime.Record). The array decides nothing by time: the order of
// its operations follows from the program alone, and a stall on a full
// output changes only times (IfBefore), so its record re-times exactly at
// any depths. (Sending units in the order they complete, each as soon as
// the front passes it, gets some out sooner: DeiT-S on u250 ran about 0.5%
// shorter that way. But each of those decisions by time has to be
// simulated again wherever a depth changes it.)
type MPCA struct {
	Config  Config
	Model   *Model
	Plan    *Plan
	Images  int
	Program Link[Step]
	// Inputs: LayerNorm rows for Q, K and V; probabilities for the row sums
	// and A·V; LayerNorm rows for FC1; GELU rows for FC2.
	XN1, Probs, XN2, Hidden Link[*Tile]
	// Outputs: scores to softmax; W_O, FC1 and FC2 rows to their units.
	Scores, O, FC1, FC2 Link[*Tile]
	// Weights carries CHM i's weight blocks; nil when the weights are on chip.
	Weights []Link[WeightBlock]
	Rec     *Recorder

	// Ops holds, once Run has returned, each op's span on the PEs: [image][layer][op].
	Ops [][][NumOps]OpSpan
	// Busy holds, once Run has returned, the cycles during which at least
	// one PE was working.
	Busy int64
	// TraceBlocks, set before Run, makes Run keep in Blocks every block a
	// PE worked, for a trace; unset, nothing is kept.
	TraceBlocks bool
	Blocks      []BlockSpan

	runs    map[[2]int32]*layerRun
	work    [][2]int64     // every PE's (or lock-step round's) busy interval, for Busy
	pe      []runtime.Tick // every PE's clock, CHM-major
	lockEnd runtime.Tick   // end of the last lock-step round
	// floor is when the array last stalled on a full output: no PE starts
	// a block before it (a PE's clock is the later of pe and floor).
	floor    runtime.Tick
	done     []pending // the snapshot's finished output units
	marks    []mark
	weights  []map[[3]int32][]runtime.Tick // per CHM: (image, layer, op) -> arrival of each column, -1 until then
	channels []*weightOrder                // per memory channel, the order its loader streams in
	deps     []runtime.Tick                // dep's scratch
	starts   []runtime.Tick                // step's scratch: what a block waits for
}

// OpSpan is when an op ran on the PEs: its first block's start and its last
// block's end.
type OpSpan struct{ Start, End int64 }

// BlockSpan is one output block's time on a PE (under the ideal policy, the
// lock-step round it was in). PE counts CHM-major: chm*Geometry.PEs()+pe.
type BlockSpan struct {
	Start, End   int64
	PE           int32
	Image, Layer int32
	Op           Op
	Unit         int32 // the output unit, as Block.Unit
}

// layerRun is one layer of one image in flight: the input tiles received,
// the on-chip operands (Q, K, V, attention output) and when each output
// unit completed.
type layerRun struct {
	in         [4][]*Tile // by input stream, by unit
	vis        [4][]runtime.Tick
	q, k, v, a []float32
	scores     [][]float32 // per head, once its first row block is due
	ready      [NumOps][]runtime.Tick
	end        [NumOps]runtime.Tick
	unitEnd    [NumOps][]runtime.Tick // latest block end per unit, while an op runs
	opsLeft    int
}

// Input and output streams of the MPCA.
const (
	inXN1 = iota
	inProbs
	inXN2
	inHidden
)

const (
	outScores = iota
	outO
	outFC1
	outFC2
)

// pending is a finished output unit of a snapshot, for output q. The rows
// of W_O, FC1 and FC2 are computed when the snapshot is dispatched (their
// tile has no Data until then; run is their layer's), all its finished rows
// in one product. Simulated time does not depend on when numbers are
// computed, nor on whether they are: a timing-only model never computes
// them.
type pending struct {
	tile         *Tile
	ready        runtime.Tick
	q            int
	layer, image int32
	op           Op
	run          *layerRun
}

// mark records that a snapshot of op started at t: the front's time until
// the next mark is that op's.
type mark struct {
	t            int64
	image, layer int32
	op           Op
}

// Run is the MPCA's actor body.
func (u *MPCA) Run(ctx *runtime.Ctx) error {
	g := u.Config.Geometry
	u.pe = make([]runtime.Tick, g.H*g.PEs())
	u.runs = map[[2]int32]*layerRun{}
	u.Ops = make([][][NumOps]OpSpan, u.Images)
	for i := range u.Ops {
		u.Ops[i] = make([][NumOps]OpSpan, len(u.Model.Layers))
	}
	u.weights = make([]map[[3]int32][]runtime.Tick, len(u.Weights))
	for i := range u.weights {
		u.weights[i] = map[[3]int32][]runtime.Tick{}
	}
	if len(u.Weights) > 0 {
		for _, chms := range u.Config.Memory.ChannelCHMs(g.H) {
			u.channels = append(u.channels, newWeightOrder(u.Plan, u.Model, u.Images, chms))
		}
	}
	for {
		st, err := u.Program.recv(ctx, u.Rec)
		if err != nil {
			if isClosed(err) {
				break
			}
			return err
		}
		if err := u.step(ctx, st); err != nil {
			return fmt.Errorf("image %d layer %d %s snapshot %d: %w", st.Image, st.Layer, st.Op, st.Snapshot, err)
		}
	}
	u.Busy = union(u.work)
	return nil
}

// union is the length of the union of intervals (which it may reorder).
func union(iv [][2]int64) int64 {
	var total, end int64
	add := func(w [2]int64) {
		if w[1] > end {
			total += w[1] - max(w[0], end)
			end = w[1]
		}
	}
	// Sorting the starts with each interval's index in the low bits is a
	// plain integer sort, several times faster than sorting the pairs; it
	// needs the starts below 2^40 cycles (the topology's bound) and at most
	// 2^23 intervals.
	const idxBits = 23
	if len(iv) < 1<<idxBits && !slices.ContainsFunc(iv, func(w [2]int64) bool { return w[0] < 0 || w[0] >= 1<<40 }) {
		keys := make([]int64, len(iv))
		for i, w := range iv {
			keys[i] = w[0]<<idxBits | int64(i)
		}
		slices.Sort(keys)
		for _, k := range keys {
			add(iv[k&(1<<idxBits-1)])
		}
		return total
	}
	slices.SortFunc(iv, func(a, b [2]int64) int { return cmp.Compare(a[0], b[0]) })
	for _, w := range iv {
		add(w)
	}
	return total
}

func (u *MPCA) run(image, layer int32) *layerRun {
	key := [2]int32{image, layer}
	r := u.runs[key]
	if r != nil {
		return r
	}
	L := &u.Model.Layers[layer]
	b := u.Config.Block
	rin, rout := ceilDiv(L.TokensIn, b), ceilDiv(L.TokensOut, b)
	units := [4]int{rin, L.Heads * rin, rout, rout}
	r = &layerRun{opsLeft: int(NumOps)}
	for s, n := range units {
		r.in[s] = make([]*Tile, n)
		r.vis[s] = make([]runtime.Tick, n)
	}
	for o := range NumOps {
		r.ready[o] = make([]runtime.Tick, u.Plan.Layers[layer][o].Units)
		r.unitEnd[o] = make([]runtime.Tick, u.Plan.Layers[layer][o].Units)
	}
	u.runs[key] = r
	return r
}

// inputOf is the stream an op's units read, unit for unit (-1: none).
func inputOf(o Op) int {
	switch o {
	case OpQ, OpK, OpV:
		return inXN1
	case OpRowSum, OpAV:
		return inProbs
	case OpFC1:
		return inXN2
	case OpFC2:
		return inHidden
	}
	return -1
}

func (u *MPCA) inputLink(s int) Link[*Tile] {
	return [4]Link[*Tile]{u.XN1, u.Probs, u.XN2, u.Hidden}[s]
}

// need returns input unit unit of stream s for (image, layer) and its
// visible time, receiving tiles until it has arrived.
func (u *MPCA) need(ctx *runtime.Ctx, image, layer int32, s int, unit int32) (*Tile, runtime.Tick, error) {
	r := u.run(image, layer)
	if t := r.in[s][unit]; t != nil {
		return t, r.vis[s][unit], nil
	}
	u.Rec.at(int(image), int(layer))
	for {
		t, vis, err := u.inputLink(s).recvAt(ctx, u.Rec)
		if err != nil {
			return nil, runtime.Tick{}, err
		}
		if int(t.Layer) >= len(u.Model.Layers) || t.Image < 0 || int(t.Image) >= u.Images {
			return nil, runtime.Tick{}, fmt.Errorf("input tile of image %d layer %d is outside the run", t.Image, t.Layer)
		}
		tr := u.run(t.Image, t.Layer)
		if int(t.Unit) >= len(tr.in[s]) || tr.in[s][t.Unit] != nil {
			return nil, runtime.Tick{}, fmt.Errorf("unexpected input tile %d of image %d layer %d", t.Unit, t.Image, t.Layer)
		}
		tr.in[s][t.Unit], tr.vis[s][t.Unit] = t, vis
		if t.Image == image && t.Layer == layer && t.Unit == unit {
			return t, vis, nil
		}
	}
}

// weight returns when column col of op o arrived at CHM chm, receiving
// weight blocks (after moving the front to need) until it has.
func (u *MPCA) weight(ctx *runtime.Ctx, chm int32, image, layer int32, o Op, col int32, need runtime.Tick) (runtime.Tick, error) {
	w := u.Model.Layers[layer].Weight(o)
	if w.ColStart[col+1] == w.ColStart[col] {
		return runtime.Tick{}, nil // an all-zero column is never fetched
	}
	key := [3]int32{image, layer, int32(o)}
	if a := u.weights[chm][key]; a != nil && a[col].At >= 0 {
		return a[col], nil
	}
	u.move(ctx, need)
	u.Rec.at(int(image), int(layer))
	ch := u.channels[int(chm)%len(u.channels)] // as Memory.ChannelCHMs deals them
	for {
		k, want, _, ok := ch.next()
		if !ok {
			return runtime.Tick{}, fmt.Errorf("chm%d: column %d of layer %d %s is not in the weight stream", chm, col, layer, o)
		}
		from := ch.chms[k]
		blk, vis, err := u.Weights[from].recvAt(ctx, u.Rec)
		if err != nil {
			return runtime.Tick{}, fmt.Errorf("weights of chm%d: %w", from, err)
		}
		if blk != want {
			return runtime.Tick{}, fmt.Errorf("weight stream of chm%d out of order: got %+v, want %+v", from, blk, want)
		}
		bk := [3]int32{blk.Image, blk.Layer, int32(blk.Op)}
		a := u.weights[from][bk]
		if a == nil {
			bw := u.Model.Layers[blk.Layer].Weight(blk.Op)
			a = make([]runtime.Tick, bw.Cols/bw.B)
			for i := range a {
				a[i] = runtime.TickAt(-1)
			}
			u.weights[from][bk] = a
		}
		if blk.Index == u.Model.Layers[blk.Layer].Weight(blk.Op).ColStart[blk.Col+1]-1 {
			a[blk.Col] = vis
		}
		if from == int(chm) && bk == key && blk.Col == col && a[col].At >= 0 {
			return vis, nil
		}
	}
}

// step runs one snapshot.
func (u *MPCA) step(ctx *runtime.Ctx, st Step) error {
	if int(st.Layer) >= len(u.Model.Layers) || st.Op < 0 || st.Op >= NumOps || int(st.Image) >= u.Images || st.Image < 0 {
		return fmt.Errorf("not in the program")
	}
	op := &u.Plan.Layers[st.Layer][st.Op]
	if int(st.Snapshot) >= len(op.Snapshots) || st.Snapshot < 0 {
		return fmt.Errorf("op has %d snapshots", len(op.Snapshots))
	}
	snap := &op.Snapshots[st.Snapshot]
	r := u.run(st.Image, st.Layer)
	unitEnd := r.unitEnd[st.Op]
	span := &u.Ops[st.Image][st.Layer][st.Op]
	in := inputOf(st.Op)
	streamed := u.Weights != nil && st.Op.Linear()
	g := u.Config.Geometry
	lock := u.Config.Policy == Ideal

	// The time each block may start, from its PE, its operands and its
	// weights; start is the earliest (started: there is one).
	var start runtime.Tick
	started := false
	lockStart := ctx.Max(u.lockEnd, u.floor)
	for _, b := range snap.Blocks {
		pe := &u.pe[int(b.CHM)*g.PEs()+int(b.PE)]
		// The block's PE (or the round) and operands, and its input; the
		// floor holds, as nothing is sent before the snapshot is dispatched.
		ts := append(u.starts[:0], u.dep(ctx, r, st.Layer, st.Op, b.Unit))
		if lock {
			ts = append(ts, lockStart)
		} else {
			ts = append(ts, *pe, u.floor)
		}
		if in >= 0 {
			_, vis, err := u.need(ctx, st.Image, st.Layer, in, b.Unit)
			if err != nil {
				return err
			}
			ts = append(ts, vis)
		}
		u.starts = ts
		t := ctx.Max(ts...)
		if streamed {
			a, err := u.weight(ctx, b.CHM, st.Image, st.Layer, st.Op, b.Col, t)
			if err != nil {
				return err
			}
			t = ctx.Max(t, a)
		}
		if lock {
			lockStart = t
			continue
		}
		end := t.Add(b.Work)
		*pe = end
		if b.Work > 0 {
			u.work = append(u.work, [2]int64{t.At, end.At})
			if u.TraceBlocks {
				u.Blocks = append(u.Blocks, BlockSpan{Start: t.At, End: end.At, PE: b.CHM*int32(g.PEs()) + b.PE,
					Image: st.Image, Layer: st.Layer, Op: st.Op, Unit: b.Unit})
			}
		}
		unitEnd[b.Unit] = ctx.Max(unitEnd[b.Unit], end)
		if started {
			start = ctx.Min(start, t)
		} else {
			start, started = t, true
		}
		span.End = max(span.End, end.At)
	}
	if lock && len(snap.Blocks) > 0 {
		end := lockStart.Add(snap.Cost)
		u.lockEnd = end
		u.work = append(u.work, [2]int64{lockStart.At, end.At})
		for _, b := range snap.Blocks {
			unitEnd[b.Unit] = ctx.Max(unitEnd[b.Unit], end)
			if u.TraceBlocks && end.At > lockStart.At {
				u.Blocks = append(u.Blocks, BlockSpan{Start: lockStart.At, End: end.At, PE: b.CHM*int32(g.PEs()) + b.PE,
					Image: st.Image, Layer: st.Layer, Op: st.Op, Unit: b.Unit})
			}
		}
		start, started = lockStart, true
		span.End = max(span.End, end.At)
	}
	// Units without blocks (no heads, no neurons) still take their inputs.
	for _, unit := range snap.Done {
		t := ctx.Max(unitEnd[unit], u.dep(ctx, r, st.Layer, st.Op, unit))
		if in >= 0 {
			_, vis, err := u.need(ctx, st.Image, st.Layer, in, unit)
			if err != nil {
				return err
			}
			t = ctx.Max(t, vis)
		}
		unitEnd[unit] = t
	}
	if started {
		if st.Snapshot == 0 {
			span.Start = start.At
		}
		span.Start = min(span.Start, start.At)
		if n := len(u.marks); n == 0 || start.At > u.marks[n-1].t {
			u.marks = append(u.marks, mark{t: start.At, image: st.Image, layer: st.Layer, op: st.Op})
		}
	}
	u.done = u.done[:0]
	for _, unit := range snap.Done {
		if err := u.complete(ctx, r, st, unit); err != nil {
			return err
		}
	}
	if err := u.send(ctx); err != nil {
		return err
	}
	if int(st.Snapshot) == len(op.Snapshots)-1 {
		if r.opsLeft--; r.opsLeft == 0 {
			delete(u.runs, [2]int32{st.Image, st.Layer})
		}
		if streamed {
			for i := range u.weights {
				delete(u.weights[i], [3]int32{st.Image, st.Layer, int32(st.Op)})
			}
		}
	}
	if started {
		u.move(ctx, start)
	}
	return nil
}

// dep is when the internal operands of unit unit of op o are complete.
func (u *MPCA) dep(ctx *runtime.Ctx, r *layerRun, layer int32, o Op, unit int32) runtime.Tick {
	rows := u.Plan.Layers[layer][o].Rows
	switch o {
	case OpQK:
		return ctx.Max(r.ready[OpQ][int(unit)%rows], r.end[OpK])
	case OpAV:
		return r.end[OpV]
	case OpO:
		u.deps = append(u.deps[:0], runtime.Tick{})
		for h := range u.Model.Layers[layer].Heads {
			j := h*rows + int(unit)
			u.deps = append(u.deps, r.ready[OpAV][j], r.ready[OpRowSum][j])
		}
		return ctx.Max(u.deps...)
	}
	return runtime.Tick{}
}

// complete computes output unit unit of the step's op, really (in a
// timing-only model, only its shape), and adds it to u.done if it leaves
// the MPCA.
func (u *MPCA) complete(ctx *runtime.Ctx, r *layerRun, st Step, unit int32) error {
	t := r.unitEnd[st.Op][unit]
	r.ready[st.Op][unit] = t
	r.end[st.Op] = ctx.Max(r.end[st.Op], t)
	m := u.Model
	L := &m.Layers[st.Layer]
	b, hd := u.Config.Block, m.HeadDim
	wk := hd * L.Heads
	rows := u.Plan.Layers[st.Layer][st.Op].Rows
	row := int(unit) % rows
	n := L.OpTokens(st.Op)
	nr := min(b, n-row*b)
	numeric := !m.TimingOnly
	if r.a == nil && numeric {
		r.a = make([]float32, L.TokensIn*wk)
	}
	var out *Tile
	q := -1
	switch st.Op {
	case OpQ, OpK, OpV:
		// Q, K and V stay on chip until Q·K^T and A·V read them, which is
		// after they are complete: computed then, for all rows at once.
	case OpQK:
		// A head's scores are computed whole when its first row block is
		// due (Q and K are complete by then); each row block is a tile of them.
		out, q = &Tile{Image: st.Image, Layer: st.Layer, Unit: unit, Rows: nr, Cols: n}, outScores
		if !numeric {
			break
		}
		u.operands(r, L)
		h := int(unit) / rows
		if r.scores == nil {
			r.scores = make([][]float32, L.Heads)
		}
		if r.scores[h] == nil {
			r.scores[h] = make([]float32, n*n)
			kernels.GemmParallel(0, false, true, n, n, hd, float32(1/math.Sqrt(float64(hd))), r.q[h*hd:], wk, r.k[h*hd:], wk, 0, r.scores[h], n)
		}
		out.Data = r.scores[h][row*b*n : (row*b+nr)*n]
	case OpRowSum:
		// Time only: the paper computes the row sums here, and their cycles
		// are charged here; their values come from the softmax unit's
		// fused kernel, which has already divided by them.
	case OpAV:
		if !numeric {
			break
		}
		u.operands(r, L)
		h := int(unit) / rows
		kernels.Gemm(false, false, nr, hd, n, 1, r.in[inProbs][unit].Data, n, r.v[h*hd:], wk, 0, r.a[row*b*wk+h*hd:], wk)
	case OpO, OpFC1, OpFC2:
		out := &Tile{Image: st.Image, Layer: st.Layer, Unit: unit, Rows: nr, Cols: L.Weight(st.Op).Cols}
		q := outO
		if st.Op == OpFC1 {
			q = outFC1
		} else if st.Op == OpFC2 {
			q = outFC2
		}
		u.done = append(u.done, pending{tile: out, ready: t, q: q, image: st.Image, layer: st.Layer, op: st.Op, run: r})
		return nil
	}
	if out != nil {
		if err := finite(StageMPCA, st.Op, out); err != nil {
			return err
		}
		u.done = append(u.done, pending{tile: out, ready: t, q: q, image: st.Image, layer: st.Layer, op: st.Op})
	}
	return nil
}

// materialize computes the rows of the snapshot's finished units of a
// linear op (one op of one layer), each run of consecutive row blocks in one
// product.
func (u *MPCA) materialize(done []pending) error {
	first := done[0]
	r, L := first.run, &u.Model.Layers[first.layer]
	b, w := u.Config.Block, L.Weight(first.op)
	n := L.OpTokens(first.op)
	var rows []*Tile
	for _, p := range done {
		rows = append(rows, p.tile)
	}
	slices.SortFunc(rows, func(x, y *Tile) int { return cmp.Compare(x.Unit, y.Unit) })
	for i := 0; i < len(rows); {
		j := i + 1
		for j < len(rows) && rows[j].Unit == rows[j-1].Unit+1 {
			j++
		}
		r0, r1 := int(rows[i].Unit), int(rows[j-1].Unit)+1
		m := min(r1*b, n) - r0*b
		var in, bias []float32
		switch first.op {
		case OpO:
			in, bias = r.a[r0*b*w.Rows:(r0*b+m)*w.Rows], L.OB
		case OpFC1, OpFC2:
			s, bs := inXN2, L.FC1B
			if first.op == OpFC2 {
				s, bs = inHidden, L.FC2B
			}
			in, bias = make([]float32, 0, m*w.Rows), bs
			for row := r0; row < r1; row++ {
				in = append(in, r.in[s][row].Data...)
			}
		}
		out := make([]float32, m*w.Cols)
		linear(w, bias, out, in, m)
		for k, t := range rows[i:j] {
			row := r0 + k
			t.Data = out[(row-r0)*b*w.Cols : (min((row+1)*b, n)-r0*b)*w.Cols]
			if err := finite(StageMPCA, first.op, t); err != nil {
				return err
			}
		}
		i = j
	}
	return nil
}

// operands computes Q, K and V of the layer from its LayerNorm rows, once.
func (u *MPCA) operands(r *layerRun, L *Layer) {
	if r.q != nil {
		return
	}
	n, d, b := L.TokensIn, u.Model.Dim, u.Config.Block
	xn := make([]float32, n*d)
	for i, t := range r.in[inXN1] {
		copy(xn[i*b*d:], t.Data)
	}
	wk := u.Model.HeadDim * L.Heads
	r.q, r.k, r.v = make([]float32, n*wk), make([]float32, n*wk), make([]float32, n*wk)
	linear(L.Q, L.QB, r.q, xn, n)
	linear(L.K, L.KB, r.k, xn, n)
	linear(L.V, L.VB, r.v, xn, n)
}

// linear is C[m × W] = A[m × K]·W + bias on the non-zero blocks of w.
func linear(w *kernels.BlockSparse, bias, c, a []float32, m int) {
	if w.Cols == 0 {
		return
	}
	if w.Rows == 0 {
		clear(c[:m*w.Cols])
	} else {
		w.MatMulParallel(0, c, a, m)
	}
	kernels.AddBias(c[:m*w.Cols], bias, m, w.Cols)
}

func (u *MPCA) outLink(q int) Link[*Tile] { return [4]Link[*Tile]{u.Scores, u.O, u.FC1, u.FC2}[q] }

// send sends the snapshot's finished units in the order it lists them, the
// front moving to each one's completion first.
func (u *MPCA) send(ctx *runtime.Ctx) error {
	if len(u.done) > 0 && u.done[0].run != nil && !u.Model.TimingOnly {
		if err := u.materialize(u.done); err != nil {
			return err
		}
	}
	for _, p := range u.done {
		u.Rec.at(int(p.image), int(p.layer))
		// The front's time until the unit is done is the unit's op's.
		to := ctx.Max(ctx.Clock(), p.ready)
		if d := p.ready.At - ctx.Now(); d > 0 {
			u.Rec.work(ctx, d, StageMPCA, p.op)
		}
		ctx.Rebase(to)
		before := ctx.Clock()
		if err := u.outLink(p.q).send(ctx, u.Rec, p.tile); err != nil {
			return err
		}
		// A full output FIFO stalls the array: no PE starts a new block
		// before the unit has left.
		now := ctx.Clock()
		u.floor = ctx.IfBefore(before, now, now, u.floor)
	}
	return nil
}

// move advances the clock to t as busy time, each stretch labelled with
// the op whose snapshot was running then.
func (u *MPCA) move(ctx *runtime.Ctx, t runtime.Tick) {
	to := ctx.Max(ctx.Clock(), t)
	for ctx.Now() < t.At {
		// Drop the marks the clock has passed, keeping the current one.
		for len(u.marks) > 1 && u.marks[1].t <= ctx.Now() {
			u.marks = u.marks[1:]
		}
		end, m := t.At, mark{layer: -1}
		if len(u.marks) > 0 {
			m = u.marks[0]
			if len(u.marks) > 1 {
				end = min(t.At, u.marks[1].t)
			}
		}
		u.Rec.at(int(m.image), int(m.layer))
		u.Rec.work(ctx, end-ctx.Now(), StageMPCA, m.op)
	}
	ctx.Rebase(to)
}

func isClosed(err error) bool { return errors.Is(err, runtime.ErrClosed) }
