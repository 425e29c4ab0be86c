package actors

import (
	"errors"
	"fmt"

	"vitflow/kernels"
	"vitflow/runtime"
)

// SFUKind is what a special-function unit computes.
type SFUKind int

const (
	// LayerNormUnit: Dst = LayerNorm(X) over Rows rows of Cols.
	LayerNormUnit SFUKind = iota
	// SoftmaxUnit: X = softmax of each of its Rows rows of Cols, in place
	// (exponentials, row sums and normalisation in one fused kernel).
	SoftmaxUnit
	// GELUUnit: X = GELU(X) over Rows*Cols elements.
	GELUUnit
	// ResidualUnit: Dst = X + Y over Rows*Cols elements.
	ResidualUnit
)

var sfuNames = [...]string{"layernorm", "softmax", "gelu", "residual"}

func (k SFUKind) String() string {
	if k >= 0 && int(k) < len(sfuNames) {
		return sfuNames[k]
	}
	return fmt.Sprintf("SFUKind(%d)", int(k))
}

// SFUJob is one use of a special-function unit. Elements is what the cost
// model charges (the real elements; X may hold padding). The unit fills Work.
type SFUJob struct {
	Dst, X, Y   []float32
	Gamma, Beta []float32
	Eps         float32
	Rows, Cols  int
	Elements    int
	Work        int64
}

// SFU is a pipelined special-function unit: a job of n elements costs
// Cost.Cycles(n), or nothing when Free.
type SFU struct {
	Kind    SFUKind
	Cost    UnitCost
	Free    bool
	In, Out *runtime.FIFO[*SFUJob]
}

// Run is the unit's actor body.
func (u *SFU) Run(ctx *runtime.Ctx) error {
	return serve(ctx, u.In, u.Out, func(j *SFUJob) (int64, error) {
		n := j.Rows * j.Cols
		if n < 0 || len(j.X) < n || (u.Kind == LayerNormUnit || u.Kind == ResidualUnit) && len(j.Dst) < n ||
			u.Kind == ResidualUnit && len(j.Y) < n {
			return 0, fmt.Errorf("%s job of %d×%d does not fit its buffers", u.Kind, j.Rows, j.Cols)
		}
		switch u.Kind {
		case LayerNormUnit:
			kernels.LayerNorm(j.Dst[:n], j.X[:n], j.Gamma, j.Beta, j.Rows, j.Cols, j.Eps)
		case SoftmaxUnit:
			kernels.SoftmaxRows(j.X[:n], j.Rows, j.Cols)
		case GELUUnit:
			kernels.GELU(j.X[:n], j.X[:n])
		case ResidualUnit:
			kernels.Add(j.Dst[:n], j.X[:n], j.Y[:n])
		default:
			return 0, fmt.Errorf("unknown unit kind %d", int(u.Kind))
		}
		if u.Free {
			return 0, nil
		}
		j.Work = u.Cost.Cycles(j.Elements)
		return j.Work, nil
	}, func() string { return u.Kind.String() })
}

// serve runs a unit that answers each job on in with the same job on out,
// after do has computed it and returned the cycles to charge.
func serve[J any](ctx *runtime.Ctx, in, out *runtime.FIFO[J], do func(J) (int64, error), label func() string) error {
	for {
		j, err := in.Recv(ctx)
		if errors.Is(err, runtime.ErrClosed) {
			return nil
		}
		if err != nil {
			return err
		}
		n, err := do(j)
		if err != nil {
			return err
		}
		if n > 0 {
			ctx.Work(n, label())
		}
		if err := out.Send(ctx, j); err != nil {
			return err
		}
	}
}

// DropJob is one use of the token dropping module: from the N×Dim hidden
// states X and the Heads attention matrices Probs (heads × N × N), keep the
// Kept tokens whose head-averaged CLS attention is highest and fuse the rest.
// The module fills Out ([CLS, kept..., fused], (Kept+2)×Dim), KeptIdx (input
// positions, descending score) and Work.
type DropJob struct {
	X       []float32
	N, Dim  int
	Probs   []float32
	Heads   int
	Kept    int
	Out     []float32
	KeptIdx []int
	Work    int64
}

// TokenDropper is the token dropping module (PAPER.md section 4): it averages
// the CLS attention rows over the kept heads, selects the top Kept tokens
// (kernels.TopK: ties to the lower index), fuses the dropped ones weighted by
// their scores (not renormalised) and re-packs the token buffer. Its time is
// Cost.Cycles, or nothing when Free.
type TokenDropper struct {
	Cost    TokenDropCost
	Free    bool
	In, Out *runtime.FIFO[*DropJob]
}

// Run is the module's actor body.
func (u *TokenDropper) Run(ctx *runtime.Ctx) error {
	return serve(ctx, u.In, u.Out, func(j *DropJob) (int64, error) {
		n, d := j.N, j.Dim
		if n < 2 || j.Heads < 1 || j.Kept < 1 || j.Kept >= n-1 || len(j.X) < n*d || len(j.Probs) < j.Heads*n*n {
			return 0, fmt.Errorf("drop %d of %d tokens over %d heads: bad job", n-1-j.Kept, n, j.Heads)
		}
		scores := make([]float32, n-1)
		for h := range j.Heads {
			for t, a := range j.Probs[h*n*n+1 : h*n*n+n] {
				scores[t] += a
			}
		}
		for t := range scores {
			scores[t] /= float32(j.Heads)
		}
		out := make([]float32, (j.Kept+2)*d)
		copy(out, j.X[:d])
		kept := kernels.TopK(scores, j.Kept)
		dropped := make([]bool, n)
		for i := 1; i < n; i++ {
			dropped[i] = true
		}
		for i := range kept {
			kept[i]++ // score t belongs to token t+1
			dropped[kept[i]] = false
			copy(out[(i+1)*d:(i+2)*d], j.X[kept[i]*d:])
		}
		fused := out[(j.Kept+1)*d:]
		for t, drop := range dropped {
			if !drop {
				continue
			}
			a := scores[t-1]
			for i, v := range j.X[t*d : (t+1)*d] {
				fused[i] += a * v
			}
		}
		j.Out, j.KeptIdx = out, kept
		if u.Free {
			return 0, nil
		}
		j.Work = u.Cost.Cycles(n, j.Kept, d)
		return j.Work, nil
	}, func() string { return "tokendrop" })
}

// EmbedJob is one image through the patch embedding: Image (CHW) in, X
// (Tokens × Dim: CLS, DIST if any, patch embeddings, plus position
// embeddings) out.
type EmbedJob struct {
	Image []float32
	X     []float32
	Work  int64
}

// PatchEmbed is the patch embedding engine: a dense Patches × PatchLen by
// PatchLen × Dim product, then the class tokens and the position embeddings.
// Its time is Cost.Cycles(MACs), or nothing when Free.
type PatchEmbed struct {
	Model   *Model
	Cost    MACCost
	Free    bool
	In, Out *runtime.FIFO[*EmbedJob]
}

// Run is the engine's actor body.
func (u *PatchEmbed) Run(ctx *runtime.Ctx) error {
	m := u.Model
	return serve(ctx, u.In, u.Out, func(j *EmbedJob) (int64, error) {
		ps, side, d := m.PatchSize, m.ImageSize, m.Dim
		if len(j.Image) != m.InChans*side*side {
			return 0, fmt.Errorf("image has %d values, want %d", len(j.Image), m.InChans*side*side)
		}
		grid, plen := side/ps, m.InChans*ps*ps
		patches := make([]float32, 0, grid*grid*plen)
		for py := range grid {
			for px := range grid {
				for ch := range m.InChans {
					for r := range ps {
						row := j.Image[ch*side*side+(py*ps+r)*side+px*ps:]
						patches = append(patches, row[:ps]...)
					}
				}
			}
		}
		np := grid * grid
		emb := make([]float32, np*d)
		kernels.GemmParallel(0, false, false, np, d, plen, 1, patches, plen, m.PatchW, d, 0, emb, d)
		kernels.AddBias(emb, m.PatchB, np, d)
		x := make([]float32, 0, m.Tokens*d)
		x = append(x, m.ClsToken...)
		x = append(x, m.DistToken...)
		x = append(x, emb...)
		if len(x) != m.Tokens*d || len(m.PosEmbed) != len(x) {
			return 0, fmt.Errorf("%d tokens of %d, position embeddings for %d values", len(x)/d, d, len(m.PosEmbed))
		}
		kernels.Add(x, x, m.PosEmbed)
		j.X = x
		if u.Free {
			return 0, nil
		}
		j.Work = u.Cost.Cycles(np * plen * d)
		return j.Work, nil
	}, func() string { return "patchembed" })
}

// ClassifyJob is the last layer's output X in, the logits out.
type ClassifyJob struct {
	X      []float32
	Logits []float32
	Work   int64
}

// Classifier applies the final LayerNorm and the linear head to the CLS
// token. Its time is Cost.Cycles(Dim*NumClasses) plus the final LayerNorm of
// one row on the LayerNorm cost, or nothing when Free.
type Classifier struct {
	Model     *Model
	Cost      MACCost
	LayerNorm UnitCost
	Free      bool
	In, Out   *runtime.FIFO[*ClassifyJob]
}

// Run is the engine's actor body.
func (u *Classifier) Run(ctx *runtime.Ctx) error {
	m := u.Model
	return serve(ctx, u.In, u.Out, func(j *ClassifyJob) (int64, error) {
		d := m.Dim
		if len(j.X) < d {
			return 0, fmt.Errorf("hidden states of %d values, want at least %d", len(j.X), d)
		}
		cls := make([]float32, d)
		kernels.LayerNorm(cls, j.X[:d], m.NormW, m.NormB, 1, d, m.LNEps)
		logits := make([]float32, m.NumClasses)
		kernels.Gemm(false, false, 1, m.NumClasses, d, 1, cls, d, m.HeadW, m.NumClasses, 0, logits, m.NumClasses)
		kernels.AddBias(logits, m.HeadB, 1, m.NumClasses)
		j.Logits = logits
		if u.Free {
			return 0, nil
		}
		j.Work = u.LayerNorm.Cycles(d) + u.Cost.Cycles(d*m.NumClasses)
		return j.Work, nil
	}, func() string { return "classifier" })
}
