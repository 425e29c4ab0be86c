package topology

import (
	"fmt"
	"math"
	"slices"

	"vitflow/actors"
	"vitflow/prune"
	"vitflow/vit"
)

// Mapping is how an op's output blocks are laid out on the MPCA; the
// vocabulary is package actors'.
//
//   - Sweep (the paper's "head-wise" mapping of a linear layer): the output
//     columns are cut into head-dim-wide slices, CHM i takes slices i, i+H, ...,
//     and one slice's ceil(M/b)*ceil(headDim/b) output blocks are dealt to the
//     CHM's T*C PEs.
//   - Expand: the ceil(W/b) output block-columns are spread over the CHMs
//     (CHM i takes block-columns i, i+H, ...) and a CHM's
//     ceil(ceil(W/b)/H)*ceil(M/b) output blocks are dealt to its T*C PEs.
//   - HeadWise: attention head j runs on CHM j mod H; one head's
//     ceil(M/b)*ceil(W/b) output blocks are dealt to the CHM's T*C PEs (Q·K^T, A·V).
//   - RowWise: head j on CHM j mod H; its ceil(M/b) row blocks are dealt to
//     the T PEs of one PE column, each multiplying b×b blocks by a ones vector (row sums).
type Mapping = actors.Mapping

// The mappings.
const (
	Sweep    = actors.Sweep
	Expand   = actors.Expand
	HeadWise = actors.HeadWise
	RowWise  = actors.RowWise
)

// Op is one MPCA operation of an encoder layer (package actors' vocabulary).
type Op = actors.Op

// The ops, in execution order.
const (
	OpQ      = actors.OpQ      // X·W_Q
	OpK      = actors.OpK      // X·W_K
	OpV      = actors.OpV      // X·W_V
	OpQK     = actors.OpQK     // Q·K^T per head
	OpRowSum = actors.OpRowSum // softmax row sums per head, on the MPCA
	OpAV     = actors.OpAV     // A·V per head
	OpO      = actors.OpO      // attention output projection W_O
	OpFC1    = actors.OpFC1    // MLP up-projection (after token dropping)
	OpFC2    = actors.OpFC2    // MLP down-projection
)

// Ops lists every Op in execution order; token dropping (free in the
// estimator) comes between OpO and OpFC1.
var Ops = [...]Op{OpQ, OpK, OpV, OpQK, OpRowSum, OpAV, OpO, OpFC1, OpFC2}

// Shape is the shape of a product Y[M×W] = X[M×N]·Z[N×W]: M rows (tokens),
// N the reduction length, W output columns.
type Shape struct{ M, N, W int }

// Cost is what one op takes on the MPCA.
type Cost struct {
	Mapping Mapping
	// Snapshots is the number of snapshots: rounds in which every PE in use
	// produces one output block (see the package doc). It is also the number
	// of output blocks of the busiest PE.
	Snapshots int64
	// Cycles is the op's latency, the busiest PE's work.
	Cycles int64
}

func ceilDiv(a, b int) int { return (a + b - 1) / b }

// ceilPhi is ceil(x*phi). x*phi is exact in rationals but not in float64:
// a product that is an integer up to rounding must not gain a cycle.
func ceilPhi(x int64, phi float64) int64 {
	return int64(math.Ceil(float64(x)*phi - 1e-6))
}

// pairCycles is the cost of one b×b by b×b block product on a P×P PE, the
// same that the simulated CHMs charge (actors.Geometry.PairCycles).
func pairCycles(g Geometry, b int) int64 {
	return actors.Geometry{T: g.T, C: g.C, H: g.H, P: g.P}.PairCycles(b)
}

// LinearCost is the cost of a linear layer Y = X·Z of shape s whose weight Z
// has block density phi (see docs/DESIGN.md section 3): the cheaper of the sweep and
// expand mappings (sweep on a tie), each with
// cycles = ceil(snapshots * ceil(N/b) * ceil(b/p)^2 * b * phi), where
//
//	sweep:  snapshots = ceil(ceil(M/b)*ceil(headDim/b) / (t*c)) * ceil(ceil(W/headDim)/h)
//	expand: snapshots = ceil(ceil(ceil(W/b)/h) * ceil(M/b) / (t*c))
//
// headDim is the width of an attention head (64 in the paper).
func LinearCost(g Geometry, b, headDim int, s Shape, phi float64) Cost {
	rows := ceilDiv(s.M, b)
	sweep := int64(ceilDiv(rows*ceilDiv(headDim, b), g.PEs()) * ceilDiv(ceilDiv(s.W, headDim), g.H))
	expand := int64(ceilDiv(ceilDiv(ceilDiv(s.W, b), g.H)*rows, g.PEs()))
	perSnapshot := int64(ceilDiv(s.N, b)) * pairCycles(g, b)
	c := Cost{Mapping: Sweep, Snapshots: sweep, Cycles: ceilPhi(sweep*perSnapshot, phi)}
	if e := ceilPhi(expand*perSnapshot, phi); e < c.Cycles {
		c = Cost{Mapping: Expand, Snapshots: expand, Cycles: e}
	}
	return c
}

// HeadwiseCost is the cost of a dense per-head product of shape s for each of
// heads heads (Q·K^T with N = headDim, W = tokens; A·V with N = tokens,
// W = headDim):
//
//	cycles = ceil(heads/h) * ceil(ceil(M/b)*ceil(W/b) / (t*c)) * ceil(N/b) * ceil(b/p)^2 * b
func HeadwiseCost(g Geometry, b, heads int, s Shape) Cost {
	snapshots := int64(ceilDiv(heads, g.H) * ceilDiv(ceilDiv(s.M, b)*ceilDiv(s.W, b), g.PEs()))
	return Cost{Mapping: HeadWise, Snapshots: snapshots,
		Cycles: snapshots * int64(ceilDiv(s.N, b)) * pairCycles(g, b)}
}

// RowSumCost is the cost of the softmax row sums of heads M×N attention
// matrices, computed on the MPCA as products with a ones vector:
//
//	cycles = ceil(ceil(M/b)/t) * ceil(heads/h) * ceil(N/b) * ceil(b/p) * b
func RowSumCost(g Geometry, b, heads, m, n int) Cost {
	snapshots := int64(ceilDiv(ceilDiv(m, b), g.T) * ceilDiv(heads, g.H))
	return Cost{Mapping: RowWise, Snapshots: snapshots,
		Cycles: snapshots * int64(ceilDiv(n, b)*ceilDiv(b, g.P)*b)}
}

// LayerPruning is the static pruning of one encoder layer as the estimator sees it.
type LayerPruning struct {
	// HeadsKept is the number of attention heads that survive, 0..Heads.
	HeadsKept int
	// PhiQ, PhiK, PhiV and PhiO are the block densities, in [0, 1], of W_Q,
	// W_K, W_V (their kept heads' columns) and W_O (its kept heads' rows).
	PhiQ, PhiK, PhiV, PhiO float64
	// Hidden is the number of kept MLP neurons, the width of FC1's output.
	Hidden int
}

// DensePruning is the unpruned model: every head, every block, every neuron.
func DensePruning(model vit.Config) []LayerPruning {
	layers := make([]LayerPruning, model.Depth)
	for i := range layers {
		layers[i] = LayerPruning{HeadsKept: model.Heads, PhiQ: 1, PhiK: 1, PhiV: 1, PhiO: 1, Hidden: model.MLPHidden}
	}
	return layers
}

// KeptHeadDensity is the block density inside the kept heads of a matrix
// pruned to density over all heads (see docs/DESIGN.md section 3):
//
//	phi = ceil(D*headDim*Heads/b^2)*density / ceil(D*headDim*headsKept/b^2)
//
// It is 0 when no head is kept.
func KeptHeadDensity(model vit.Config, b int, density float64, headsKept int) float64 {
	blocks := func(heads int) float64 { return float64(ceilDiv(model.Dim*model.HeadDim()*heads, b*b)) }
	if headsKept <= 0 {
		return 0
	}
	return blocks(model.Heads) * density / blocks(headsKept)
}

// UniformPruning prunes every layer like the paper's estimator: W_Q, W_K,
// W_V and W_O at block density density over all heads, headsKept[i] heads
// kept in layer i (nil keeps them all), and prune.Kept(MLPHidden, mlpDensity)
// MLP neurons, i.e. ceil(MLPHidden*mlpDensity).
func UniformPruning(model vit.Config, b int, density, mlpDensity float64, headsKept []int) ([]LayerPruning, error) {
	if err := checkModel(model, b); err != nil {
		return nil, err
	}
	for _, d := range []struct {
		name string
		v    float64
	}{{"density", density}, {"MLP density", mlpDensity}} {
		if !(d.v > 0 && d.v <= 1) {
			return nil, fmt.Errorf("estimate: %s %v is outside (0, 1]", d.name, d.v)
		}
	}
	if headsKept != nil && len(headsKept) != model.Depth {
		return nil, fmt.Errorf("estimate: %d kept-head counts for %d layers", len(headsKept), model.Depth)
	}
	layers := make([]LayerPruning, model.Depth)
	for i := range layers {
		h := model.Heads
		if headsKept != nil {
			h = headsKept[i]
		}
		if h < 0 || h > model.Heads {
			return nil, fmt.Errorf("estimate: layer %d keeps %d heads, want 0..%d", i, h, model.Heads)
		}
		phi := KeptHeadDensity(model, b, density, h)
		if phi > 1 {
			return nil, fmt.Errorf("estimate: layer %d: density %v cannot fit in %d of %d heads (block density %.3g > 1)",
				i, density, h, model.Heads, phi)
		}
		layers[i] = LayerPruning{HeadsKept: h, PhiQ: phi, PhiK: phi, PhiV: phi, PhiO: phi,
			Hidden: prune.Kept(model.MLPHidden, mlpDensity)}
	}
	return layers, nil
}

// MaskPruning measures the pruning that real masks apply: kept heads
// (vit.LayerMask.HeadKept), the fraction of each matrix's blocks inside the
// kept heads that are non-zero, and the kept neurons. A nil p or nil masks are dense.
func MaskPruning(model vit.Config, p *vit.Pruning) ([]LayerPruning, error) {
	if p == nil || p.Layers == nil {
		return DensePruning(model), nil
	}
	if err := checkModel(model, p.Block); err != nil {
		return nil, err
	}
	if len(p.Layers) != model.Depth {
		return nil, fmt.Errorf("estimate: %d layer masks for %d layers", len(p.Layers), model.Depth)
	}
	nb := model.Dim / p.Block
	layers := make([]LayerPruning, model.Depth)
	for i, m := range p.Layers {
		for _, mask := range [][]bool{m.Q, m.K, m.V, m.Proj} {
			if mask != nil && len(mask) != nb*nb {
				return nil, fmt.Errorf("estimate: layer %d: block mask of %d entries, want %d", i, len(mask), nb*nb)
			}
		}
		if m.Neurons != nil && len(m.Neurons) != model.MLPHidden {
			return nil, fmt.Errorf("estimate: layer %d: neuron mask of %d entries, want %d", i, len(m.Neurons), model.MLPHidden)
		}
		l := LayerPruning{Hidden: model.MLPHidden}
		for h := range model.Heads {
			if m.HeadKept(model, p.Block, h) {
				l.HeadsKept++
			}
		}
		// Removed heads hold no non-zero blocks, so counting the whole
		// matrix counts the kept heads' blocks.
		inKept := float64(nb * (model.HeadDim() / p.Block) * l.HeadsKept)
		phi := func(mask []bool) float64 {
			if l.HeadsKept == 0 {
				return 0
			}
			if mask == nil {
				return 1
			}
			return float64(count(mask)) / inKept
		}
		l.PhiQ, l.PhiK, l.PhiV, l.PhiO = phi(m.Q), phi(m.K), phi(m.V), phi(m.Proj)
		if m.Neurons != nil {
			l.Hidden = count(m.Neurons)
		}
		layers[i] = l
	}
	return layers, nil
}

func count(mask []bool) int {
	n := 0
	for _, k := range mask {
		if k {
			n++
		}
	}
	return n
}

// EstimateInput is everything the analytical estimator depends on.
type EstimateInput struct {
	Model    vit.Config
	Geometry Geometry
	// Block is the side b of the pruning blocks and of the MPCA's tiles; it
	// must divide the head width.
	Block int
	// Layers is the pruning of each encoder layer; nil is the dense model.
	Layers []LayerPruning
	// Keep is the token keep rate k in (0, 1] of the TDLayers.
	Keep float64
	// TDLayers are the 0-indexed layers that drop tokens.
	TDLayers []int
}

// OpEstimate is the estimate of one op of one layer.
type OpEstimate struct {
	Op    Op
	Shape Shape
	// Phi is the weight block density (1 for the dense products).
	Phi float64
	Cost
}

// LayerEstimate is the estimate of one encoder layer.
type LayerEstimate struct {
	Index int
	// TokensIn enter the layer; TokensOut leave it (and its MLP runs on them).
	TokensIn, TokensOut int
	DropsTokens         bool
	HeadsKept, Hidden   int
	// Ops are in execution order (see Ops); token dropping costs nothing here.
	Ops    []OpEstimate
	Cycles int64
}

// Op returns the estimate of op o.
func (l LayerEstimate) Op(o Op) OpEstimate {
	for _, e := range l.Ops {
		if e.Op == o {
			return e
		}
	}
	return OpEstimate{Op: o}
}

// Estimation is the analytical estimate of one image's inference.
type Estimation struct {
	Layers []LayerEstimate
	// Cycles is the sum over layers: ops run one after another, nothing overlaps.
	Cycles int64
}

// Estimate is the authors' analytical latency model (see docs/DESIGN.md section 3) of
// one image: per encoder layer, in order, Q, K, V (each M=N_in, N=D,
// W=headDim*H_kept, phi), Q·K^T (head-wise, M=N_in, N=headDim, W=N_in), row
// sums (M=N_in, N=N_in), A·V (head-wise, M=N_in, N=N_in, W=headDim), W_O
// (M=N_in, N=headDim*H_kept, W=D, phi), token dropping (free; in TD layers
// N_out = vit.TokensAfterDrop(N_in, k) = ceil((N_in-1)*k)+2, or N_in when that
// drops nothing, as at k=1), FC1 (M=N_out, N=D, W=Hidden, phi=1) and FC2
// (M=N_out, N=Hidden, W=D, phi=1). Patch embedding, classifier, LayerNorm,
// GELU, softmax's exp and scaling, residuals and memory traffic cost nothing.
func Estimate(in EstimateInput) (Estimation, error) {
	if err := in.check(); err != nil {
		return Estimation{}, err
	}
	layers := in.Layers
	if layers == nil {
		layers = DensePruning(in.Model)
	}
	g, b, hd, dim := in.Geometry, in.Block, in.Model.HeadDim(), in.Model.Dim
	est := Estimation{Layers: make([]LayerEstimate, len(layers))}
	tokens := in.Model.Tokens()
	for i, p := range layers {
		l := LayerEstimate{Index: i, TokensIn: tokens, TokensOut: tokens, DropsTokens: slices.Contains(in.TDLayers, i),
			HeadsKept: p.HeadsKept, Hidden: p.Hidden}
		if l.DropsTokens {
			l.TokensOut = vit.TokensAfterDrop(tokens, in.Keep)
		}
		n, attn := l.TokensIn, hd*p.HeadsKept
		linear := func(op Op, s Shape, phi float64) OpEstimate {
			return OpEstimate{Op: op, Shape: s, Phi: phi, Cost: LinearCost(g, b, hd, s, phi)}
		}
		headwise := func(op Op, s Shape) OpEstimate {
			return OpEstimate{Op: op, Shape: s, Phi: 1, Cost: HeadwiseCost(g, b, p.HeadsKept, s)}
		}
		rowSum := Shape{M: n, N: n, W: 1}
		l.Ops = []OpEstimate{
			linear(OpQ, Shape{M: n, N: dim, W: attn}, p.PhiQ),
			linear(OpK, Shape{M: n, N: dim, W: attn}, p.PhiK),
			linear(OpV, Shape{M: n, N: dim, W: attn}, p.PhiV),
			headwise(OpQK, Shape{M: n, N: hd, W: n}),
			{Op: OpRowSum, Shape: rowSum, Phi: 1, Cost: RowSumCost(g, b, p.HeadsKept, rowSum.M, rowSum.N)},
			headwise(OpAV, Shape{M: n, N: n, W: hd}),
			linear(OpO, Shape{M: n, N: attn, W: dim}, p.PhiO),
			linear(OpFC1, Shape{M: l.TokensOut, N: dim, W: p.Hidden}, 1),
			linear(OpFC2, Shape{M: l.TokensOut, N: p.Hidden, W: dim}, 1),
		}
		for _, op := range l.Ops {
			l.Cycles += op.Cycles
		}
		est.Layers[i] = l
		est.Cycles += l.Cycles
		tokens = l.TokensOut
	}
	return est, nil
}

// OpCycles is the estimate's total over layers of op o.
func (e Estimation) OpCycles(o Op) int64 {
	var sum int64
	for _, l := range e.Layers {
		sum += l.Op(o).Cycles
	}
	return sum
}

func checkModel(model vit.Config, b int) error {
	switch {
	case model.Dim <= 0 || model.Heads <= 0 || model.Dim%model.Heads != 0 || model.Depth <= 0 || model.MLPHidden <= 0:
		return fmt.Errorf("estimate: model %q: dim %d, %d heads, depth %d, MLP width %d do not make a ViT",
			model.Name, model.Dim, model.Heads, model.Depth, model.MLPHidden)
	case model.PatchSize <= 0 || model.Tokens() < 2:
		return fmt.Errorf("estimate: model %q: %d tokens, want at least 2", model.Name, model.Tokens())
	case b <= 0 || model.HeadDim()%b != 0:
		return fmt.Errorf("estimate: block size %d does not divide the head width %d", b, model.HeadDim())
	}
	return nil
}

func (in EstimateInput) check() error {
	if err := checkModel(in.Model, in.Block); err != nil {
		return err
	}
	g := in.Geometry
	if g.T < 1 || g.C < 1 || g.H < 1 || g.P < 1 {
		return fmt.Errorf("estimate: geometry t=%d c=%d h=%d p=%d must be positive", g.T, g.C, g.H, g.P)
	}
	if !(in.Keep > 0 && in.Keep <= 1) {
		return fmt.Errorf("estimate: keep rate %v is outside (0, 1]", in.Keep)
	}
	for i, l := range in.TDLayers {
		if l < 0 || l >= in.Model.Depth {
			return fmt.Errorf("estimate: token-dropping layer %d is outside 0..%d", l, in.Model.Depth-1)
		}
		if slices.Contains(in.TDLayers[:i], l) {
			return fmt.Errorf("estimate: token-dropping layer %d listed twice", l)
		}
	}
	if in.Layers == nil {
		return nil
	}
	if len(in.Layers) != in.Model.Depth {
		return fmt.Errorf("estimate: pruning for %d layers, model has %d", len(in.Layers), in.Model.Depth)
	}
	for i, l := range in.Layers {
		if l.HeadsKept < 0 || l.HeadsKept > in.Model.Heads {
			return fmt.Errorf("estimate: layer %d keeps %d heads, want 0..%d", i, l.HeadsKept, in.Model.Heads)
		}
		if l.Hidden < 0 || l.Hidden > in.Model.MLPHidden {
			return fmt.Errorf("estimate: layer %d keeps %d MLP neurons, want 0..%d", i, l.Hidden, in.Model.MLPHidden)
		}
		for _, phi := range []float64{l.PhiQ, l.PhiK, l.PhiV, l.PhiO} {
			if !(phi >= 0 && phi <= 1) {
				return fmt.Errorf("estimate: layer %d: block density %v is outside [0, 1]", i, phi)
			}
		}
	}
	return nil
}

// Microseconds converts cycles at a clock of clockMHz to microseconds.
func Microseconds(cycles int64, clockMHz float64) float64 {
	return float64(cycles) / clockMHz
}
