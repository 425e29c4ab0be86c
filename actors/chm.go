package actors

import (
	"errors"
	"fmt"

	"vitflow/kernels"
	"vitflow/runtime"
)

// MPCAJob is the controller's order to one CHM for one op. Operands travel as
// slices of the on-chip token buffer; the CHM writes its own output columns
// (or heads) of C, fills Start and End, and sends the job back.
type MPCAJob struct {
	Layer int
	Op    Op
	Plan  *CHMPlan
	Cost  OpCost
	// Linear ops: C[M × ...] = A·W + Bias, for the block-columns Plan.Cols.
	W    *kernels.BlockSparse
	Bias []float32
	// Q·K^T: C (heads × M × M) = Scale · A_h · B_h^T with A = Q, B = K.
	// A·V: C_h (M × HeadDim) = A_h · B_h with A = the probabilities, B = V.
	A, B, C       []float32
	LDA, LDB, LDC int
	M             int
	HeadDim       int
	Scale         float32
	// Start and End are the CHM's clock on receiving the job and on finishing it.
	Start, End int64
}

// WeightBlock is one non-zero weight block on its way from memory to a CHM:
// block Index of the op's packed matrix, in block-column Col.
type WeightBlock struct {
	Layer int32
	Op    Op
	Col   int32
	Index int32
}

// CHM is one compute head module: a T×C array of P×P systolic PEs. For each
// job it computes its share of the op with kernels (a linear op's output
// block-columns with BlockSparse.MulBlockColumn, a head's Q·K^T or A·V with
// Gemm) and charges time by the policy: under Static and Balanced each PE
// works through its output blocks at PairCycles per non-zero block pair, the
// PEs in parallel; under Ideal every PE in use takes the estimator's
// snapshots. With Weights set, a PE cannot start a block before the block's
// weight block-column has arrived; the wait shows as starved cycles on
// Weights. The row sums of the softmax are charged here as the paper maps
// them; their values come from the softmax unit's fused kernel.
type CHM struct {
	Geometry Geometry
	Policy   Policy
	Jobs     *runtime.FIFO[*MPCAJob]
	Done     *runtime.FIFO[*MPCAJob]
	// Weights is nil when the weights are on chip.
	Weights *runtime.FIFO[WeightBlock]
}

// Run is the CHM's actor body.
func (u *CHM) Run(ctx *runtime.Ctx) error {
	for {
		job, err := u.Jobs.Recv(ctx)
		if errors.Is(err, runtime.ErrClosed) {
			return nil
		}
		if err != nil {
			return err
		}
		job.Start = ctx.Now()
		if err := compute(job); err != nil {
			return fmt.Errorf("layer %d %s: %w", job.Layer, job.Op, err)
		}
		if err := u.charge(ctx, job); err != nil {
			return fmt.Errorf("layer %d %s: %w", job.Layer, job.Op, err)
		}
		job.End = ctx.Now()
		if err := u.Done.Send(ctx, job); err != nil {
			return err
		}
	}
}

// compute does the CHM's share of the job's arithmetic.
func compute(j *MPCAJob) error {
	p := j.Plan
	switch {
	case j.Op.Linear():
		if j.W == nil {
			return errors.New("no weight matrix")
		}
		b := j.W.B
		for _, c := range p.Cols {
			j.W.MulBlockColumn(j.C, j.LDC, j.A, j.LDA, j.M, c)
			bias := j.Bias[c*b : (c+1)*b]
			for r := range j.M {
				row := j.C[r*j.LDC+c*b : r*j.LDC+(c+1)*b]
				for i := range row {
					row[i] += bias[i]
				}
			}
		}
	case j.Op == OpQK:
		n, hd := j.M, j.HeadDim
		for _, h := range p.Cols {
			kernels.Gemm(false, true, n, n, hd, j.Scale, j.A[h*hd:], j.LDA, j.B[h*hd:], j.LDB, 0, j.C[h*n*n:], n)
		}
	case j.Op == OpAV:
		n, hd := j.M, j.HeadDim
		for _, h := range p.Cols {
			kernels.Gemm(false, false, n, hd, n, 1, j.A[h*n*n:], n, j.B[h*hd:], j.LDB, 0, j.C[h*hd:], j.LDC)
		}
	case j.Op == OpRowSum:
		// Time only: see the CHM doc.
	default:
		return fmt.Errorf("unknown op %d", int(j.Op))
	}
	return nil
}

// charge advances the clock by the job's time on the PEs, waiting for
// streamed weight block-columns as the PEs need them.
func (u *CHM) charge(ctx *runtime.Ctx, j *MPCAJob) error {
	p, label := j.Plan, j.Op.String()
	if u.Weights == nil || !j.Op.Linear() {
		ctx.Work(p.Compute, label)
		return nil
	}
	w := j.W
	arrived := make([]int64, w.Cols/w.B)
	for i := range arrived {
		arrived[i] = -1
	}
	next := 0
	// await receives block-columns in stream order until col has arrived,
	// first letting the PEs work until need, when col is wanted.
	await := func(col int32, need int64) error {
		for arrived[col] < 0 {
			if next >= len(p.ColOrder) {
				return fmt.Errorf("block-column %d is not in the stream order", col)
			}
			if need > ctx.Now() {
				ctx.Work(need-ctx.Now(), label)
			}
			c := p.ColOrder[next]
			for t := w.ColStart[c]; t < w.ColStart[c+1]; t++ {
				blk, err := u.Weights.Recv(ctx)
				if err != nil {
					return fmt.Errorf("weight block %d of block-column %d: %w", t, c, err)
				}
				if blk.Layer != int32(j.Layer) || blk.Op != j.Op || blk.Col != c || blk.Index != t {
					return fmt.Errorf("weight stream out of order: got layer %d %s block %d of column %d, want layer %d %s block %d of column %d",
						blk.Layer, blk.Op, blk.Index, blk.Col, j.Layer, j.Op, t, c)
				}
			}
			arrived[c] = ctx.Now()
			next++
		}
		return nil
	}
	if u.Policy == Ideal {
		for i := range j.Cost.Snapshots {
			if int(i)+1 < len(p.SnapStart) {
				for _, s := range p.Steps[p.SnapStart[i]:p.SnapStart[i+1]] {
					if err := await(s.Col, ctx.Now()); err != nil {
						return err
					}
				}
			}
			ctx.Work(j.Cost.SnapshotCycles(i), label)
		}
		// Columns of blocks beyond the estimator's snapshots (none when the
		// mapping matches the estimate) still come down the stream.
		for next < len(p.ColOrder) {
			if err := await(p.ColOrder[next], ctx.Now()); err != nil {
				return err
			}
		}
		return nil
	}
	// The PEs run in parallel: take their steps in the order the PEs become
	// free (ties to the lower PE), so that the CHM's clock, which await
	// advances, never passes the time a free PE wants its next column.
	start := ctx.Now()
	pe := make([]int64, u.Geometry.PEs())
	queue := make([][]Step, len(pe))
	for i := range pe {
		pe[i] = start
	}
	for _, s := range p.Steps {
		queue[s.PE] = append(queue[s.PE], s)
	}
	end := start
	for {
		k := -1
		for i, q := range queue {
			if len(q) > 0 && (k < 0 || pe[i] < pe[k]) {
				k = i
			}
		}
		if k < 0 {
			break
		}
		s := queue[k][0]
		queue[k] = queue[k][1:]
		if err := await(s.Col, pe[k]); err != nil {
			return err
		}
		pe[k] = max(pe[k], arrived[s.Col]) + s.Cycles
		end = max(end, pe[k])
	}
	if end > ctx.Now() {
		ctx.Work(end-ctx.Now(), label)
	}
	return nil
}

// Loader streams weight blocks from one off-chip memory channel to the CHMs
// on that channel: for every image, layer and linear op, each CHM's non-zero
// blocks in its plan's ColOrder, the CHMs' block-columns interleaved. A
// block takes Memory.BlockCycles of channel time, and every op's stream
// starts with the memory latency. The loader runs ahead of the CHMs as far as
// their weight FIFOs let it.
type Loader struct {
	Memory   Memory
	Block    int
	Schedule *Schedule
	Model    *Model
	Images   int
	// CHMs are the CHMs on this channel and Out their weight FIFOs.
	CHMs []int
	Out  []*runtime.FIFO[WeightBlock]
}

// Run is the loader's actor body.
func (u *Loader) Run(ctx *runtime.Ctx) error {
	per := u.Memory.BlockCycles(u.Block)
	var owed float64 // channel time not yet charged, below one cycle
	cursor := make([]int, len(u.CHMs))
	for range u.Images {
		for l := range u.Model.Layers {
			for o := range NumOps {
				if !o.Linear() {
					continue
				}
				plan := &u.Schedule.Layers[l][o]
				w := u.Model.Layers[l].Weight(o)
				if u.Memory.Latency > 0 && u.streams(plan, w) {
					ctx.Work(u.Memory.Latency, "latency")
				}
				clear(cursor)
				for more := true; more; {
					more = false
					for k, chm := range u.CHMs {
						order := plan.CHMs[chm].ColOrder
						if cursor[k] >= len(order) {
							continue
						}
						more = true
						c := order[cursor[k]]
						cursor[k]++
						for t := w.ColStart[c]; t < w.ColStart[c+1]; t++ {
							owed += per
							n := int64(owed)
							owed -= float64(n)
							if n > 0 {
								ctx.Work(n, "transfer")
							}
							blk := WeightBlock{Layer: int32(l), Op: o, Col: c, Index: t}
							if err := u.Out[k].Send(ctx, blk); err != nil {
								return err
							}
						}
					}
				}
			}
		}
	}
	return nil
}

// streams reports whether the loader has any block of w to send in the op.
func (u *Loader) streams(plan *OpPlan, w *kernels.BlockSparse) bool {
	for _, chm := range u.CHMs {
		for _, c := range plan.CHMs[chm].ColOrder {
			if w.ColStart[c+1] > w.ColStart[c] {
				return true
			}
		}
	}
	return false
}
