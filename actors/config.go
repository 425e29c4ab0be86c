package actors

import (
	"fmt"
	"math"

	"vitflow/kernels"
)

// Geometry is the MPCA: H CHMs, each a T×C array of PEs, each PE a P×P
// systolic array.
type Geometry struct{ T, C, H, P int }

// PEs is the number of PEs of one CHM.
func (g Geometry) PEs() int { return g.T * g.C }

// PairCycles is the cost of one b×b by b×b block product on a PE: ceil(b/P)^2 * b.
func (g Geometry) PairCycles(b int) int64 {
	q := int64(ceilDiv(b, g.P))
	return q * q * int64(b)
}

// Policy assigns an op's output blocks to the PEs of a CHM.
type Policy int

const (
	// Ideal runs the PEs in the mapping's lock-step snapshots, every output
	// block costing the mean non-zero work of its weight matrix: the
	// analytical estimator's assumption, made executable.
	Ideal Policy = iota
	// Static deals the blocks to the PEs in mapping order.
	Static
	// Balanced gives each block, heaviest first, to the least-loaded PE.
	Balanced
)

var policyNames = [...]string{"ideal", "static", "balanced"}

func (p Policy) String() string {
	if p >= 0 && int(p) < len(policyNames) {
		return policyNames[p]
	}
	return fmt.Sprintf("Policy(%d)", int(p))
}

// Mapping lays an op's output blocks out on the CHMs.
type Mapping int

const (
	// Sweep: head-width column slices, slice s on CHM s mod H.
	Sweep Mapping = iota
	// Expand: block-column j on CHM j mod H.
	Expand
	// HeadWise: head j on CHM j mod H, its output blocks dealt to the T*C PEs.
	HeadWise
	// RowWise: head j on CHM j mod H, its row blocks dealt to the T PEs of one PE column.
	RowWise
)

var mappingNames = [...]string{"sweep", "expand", "head-wise", "row-wise"}

func (m Mapping) String() string {
	if m >= 0 && int(m) < len(mappingNames) {
		return mappingNames[m]
	}
	return fmt.Sprintf("Mapping(%d)", int(m))
}

// Op is one MPCA operation of an encoder layer.
type Op int

// The MPCA ops in execution order.
const (
	OpQ Op = iota
	OpK
	OpV
	OpQK
	OpRowSum
	OpAV
	OpO
	OpFC1
	OpFC2
	NumOps
)

var opNames = [...]string{"q", "k", "v", "qk", "rowsum", "av", "o", "fc1", "fc2"}

// opTitles are the ops as a reader of the paper names them.
var opTitles = [...]string{"Q", "K", "V", "Q·K^T", "row sums", "A·V", "W_O", "FC1", "FC2"}

// Title is the op's name as the paper writes it ("Q·K^T", "FC1"), for
// traces and pictures; String is the short key of tables and files ("qk").
func (o Op) Title() string {
	if o >= 0 && o < NumOps {
		return opTitles[o]
	}
	return o.String()
}

func (o Op) String() string {
	if o >= 0 && o < NumOps {
		return opNames[o]
	}
	return fmt.Sprintf("Op(%d)", int(o))
}

// Linear reports whether o multiplies by a (streamed) weight matrix.
func (o Op) Linear() bool {
	switch o {
	case OpQ, OpK, OpV, OpO, OpFC1, OpFC2:
		return true
	}
	return false
}

// UnitCost is a pipelined unit: n elements take ceil(n/ElementsPerCycle) + Latency cycles.
type UnitCost struct {
	ElementsPerCycle int
	Latency          int64
}

// Cycles is the time of n elements; 0 for n <= 0.
func (u UnitCost) Cycles(n int) int64 {
	if n <= 0 {
		return 0
	}
	return int64(ceilDiv(n, u.ElementsPerCycle)) + u.Latency
}

// MACCost is a dense engine: m multiply-accumulates take ceil(m/MACsPerCycle) + Latency cycles.
type MACCost struct {
	MACsPerCycle int
	Latency      int64
}

// Cycles is the time of m MACs; 0 for m <= 0.
func (u MACCost) Cycles(m int) int64 {
	if m <= 0 {
		return 0
	}
	return int64(ceilDiv(m, u.MACsPerCycle)) + u.Latency
}

// Selection is the token dropping module's top-k hardware.
type Selection int

const (
	// Streaming is an insertion queue: ceil((N-1)/ScoresPerCycle) + kept cycles.
	Streaming Selection = iota
	// Bitonic is a sorting network over P = nextpow2(N-1) scores:
	// log2(P)*(log2(P)+1)/2 stages of P/2 compare-exchanges, Comparators at a time.
	Bitonic
)

// TokenDropCost is the token dropping module's cost model.
type TokenDropCost struct {
	Selection              Selection
	ScoresPerCycle         int
	Comparators            int
	Latency                int64
	FusionMACsPerCycle     int
	RepackElementsPerCycle int
}

// Cycles is the time to drop tokens from n (CLS included) keeping kept, at width dim:
// fixed latency + selection + fusion of the n-1-kept dropped tokens + re-packing of the kept ones.
func (t TokenDropCost) Cycles(n, kept, dim int) int64 {
	scores := n - 1
	var sel int64
	switch t.Selection {
	case Bitonic:
		p, lg := 1, 0
		for p < scores {
			p, lg = p*2, lg+1
		}
		stages := lg * (lg + 1) / 2
		sel = int64(stages * ceilDiv(p/2, t.Comparators))
	default:
		sel = int64(ceilDiv(scores, t.ScoresPerCycle) + kept)
	}
	dropped := scores - kept
	return t.Latency + sel + int64(ceilDiv(dropped*dim, t.FusionMACsPerCycle)) +
		int64(ceilDiv(kept*dim, t.RepackElementsPerCycle))
}

// Memory is the off-chip memory the loader streams weights from.
type Memory struct {
	// BytesPerCycle is the bandwidth of all channels together.
	BytesPerCycle float64
	// Latency is charged at the start of every op's stream (a new DMA burst).
	Latency int64
	// Channels: CHM i streams from channel i mod Channels, one Loader each.
	Channels int
	// BytesPerWeight sizes a b×b block: b*b*BytesPerWeight bytes.
	BytesPerWeight float64
}

// ChannelCHMs lists, per memory channel in use, the CHMs that stream from
// it: CHM i from channel i mod min(Channels, h).
func (m Memory) ChannelCHMs(h int) [][]int {
	n := min(m.Channels, h)
	chs := make([][]int, n)
	for i := range h {
		chs[i%n] = append(chs[i%n], i)
	}
	return chs
}

// BlockCycles is the channel time of one b×b weight block, fractional.
func (m Memory) BlockCycles(b int) float64 {
	return float64(b*b) * m.BytesPerWeight * float64(m.Channels) / m.BytesPerCycle
}

// Config is the accelerator as the units see it.
type Config struct {
	Geometry Geometry
	// Block is the tile side b: activations and weights move in b×b blocks.
	Block  int
	Policy Policy
	// Free makes the special-function units, token dropping, patch
	// embedding and classifier cost nothing (ideal fidelity).
	Free bool
	// Streamed weights come from off-chip memory through a Loader; otherwise
	// they are on chip and cost nothing to fetch.
	Streamed                           bool
	Memory                             Memory
	Softmax, LayerNorm, GELU, Residual UnitCost
	TokenDrop                          TokenDropCost
	PatchEmbed, Classifier             MACCost
}

// Validate reports the first parameter out of range.
func (c Config) Validate() error {
	g := c.Geometry
	switch {
	case g.T < 1 || g.C < 1 || g.H < 1 || g.P < 1:
		return fmt.Errorf("accelerator: geometry t=%d c=%d h=%d p=%d must be positive", g.T, g.C, g.H, g.P)
	case c.Block < 1:
		return fmt.Errorf("accelerator: block size %d must be positive", c.Block)
	case c.Policy < Ideal || c.Policy > Balanced:
		return fmt.Errorf("accelerator: unknown policy %d", int(c.Policy))
	}
	if c.Streamed {
		m := c.Memory
		if !(m.BytesPerCycle > 0) || math.IsInf(m.BytesPerCycle, 0) || m.Channels < 1 || m.Latency < 0 ||
			!(m.BytesPerWeight > 0) || math.IsInf(m.BytesPerWeight, 0) {
			return fmt.Errorf("accelerator: memory %+v: bandwidth, channels and bytes per weight must be positive", m)
		}
		// The loader counts cycles in int64: a block must take a sane time.
		if bc := m.BlockCycles(c.Block); !(bc <= 1<<40) {
			return fmt.Errorf("accelerator: memory %+v: a %d×%d weight block takes %g cycles, more than 2^40", m, c.Block, c.Block, bc)
		}
	}
	if c.Free {
		return nil
	}
	for _, u := range []struct {
		name string
		u    UnitCost
	}{{"softmax", c.Softmax}, {"layernorm", c.LayerNorm}, {"gelu", c.GELU}, {"residual", c.Residual}} {
		if u.u.ElementsPerCycle < 1 || u.u.Latency < 0 {
			return fmt.Errorf("accelerator: %s: %d elements a cycle and latency %d", u.name, u.u.ElementsPerCycle, u.u.Latency)
		}
	}
	t := c.TokenDrop
	if t.ScoresPerCycle < 1 || t.Comparators < 1 || t.FusionMACsPerCycle < 1 || t.RepackElementsPerCycle < 1 || t.Latency < 0 {
		return fmt.Errorf("accelerator: token dropping %+v: rates must be positive", t)
	}
	for _, u := range []struct {
		name string
		u    MACCost
	}{{"patch embedding", c.PatchEmbed}, {"classifier", c.Classifier}} {
		if u.u.MACsPerCycle < 1 || u.u.Latency < 0 {
			return fmt.Errorf("accelerator: %s: %d MACs a cycle and latency %d", u.name, u.u.MACsPerCycle, u.u.Latency)
		}
	}
	return nil
}

// Model is a statically pruned ViT in the form the units compute with.
type Model struct {
	// TimingOnly says the model has its structure (shapes, token counts,
	// the weight matrices' stored blocks) but no values: no weight data,
	// biases, norms or embeddings. Its units compute nothing; they move
	// tiles of the right shape without Data and charge the same time as
	// with values, which in this model depends on shapes and counts alone
	// (see the topology package's doc).
	TimingOnly   bool
	Dim, HeadDim int
	// Tokens enter the first layer (patches, CLS and DIST if any).
	Tokens                        int
	ImageSize, PatchSize, InChans int
	NumClasses                    int
	LNEps                         float32
	PatchW, PatchB                []float32 // [PatchLen × Dim], [Dim]
	ClsToken, DistToken           []float32 // DistToken nil when absent
	PosEmbed                      []float32 // [Tokens × Dim]
	NormW, NormB                  []float32
	HeadW, HeadB                  []float32 // [Dim × NumClasses]
	Layers                        []Layer
}

// Layer is one encoder layer. Q, K and V are Dim × HeadDim*Heads, O is
// HeadDim*Heads × Dim, all packed to their non-zero blocks. FC1 (Dim × Hp)
// and FC2 (Hp × Dim) are dense over the kept neurons, padded with zero
// weights to Hp, the next multiple of the block size, so that they tile.
type Layer struct {
	Heads                int // kept heads
	Q, K, V, O, FC1, FC2 *kernels.BlockSparse
	QB, KB, VB, OB       []float32
	FC1B                 []float32 // [Hp], zero beyond Hidden
	FC2B                 []float32
	Hidden               int // kept neurons
	Norm1W, Norm1B       []float32
	Norm2W, Norm2B       []float32
	Drop                 bool // drops tokens
	Kept                 int  // patch tokens kept when dropping; TokensIn-2 still fuses one
	TokensIn, TokensOut  int
}

// Drops reports whether the layer really drops tokens: keeping all but one
// patch still fuses that one, so the length alone cannot tell.
func (l *Layer) Drops() bool { return l.Drop && l.Kept < l.TokensIn-1 }

// OpTokens is the length of the sequence op o works on: FC1 and FC2 run
// after token dropping, every other op before it.
func (l *Layer) OpTokens(o Op) int {
	if o == OpFC1 || o == OpFC2 {
		return l.TokensOut
	}
	return l.TokensIn
}

// Weight returns the weight matrix of a linear op (nil otherwise).
func (l *Layer) Weight(o Op) *kernels.BlockSparse {
	switch o {
	case OpQ:
		return l.Q
	case OpK:
		return l.K
	case OpV:
		return l.V
	case OpO:
		return l.O
	case OpFC1:
		return l.FC1
	case OpFC2:
		return l.FC2
	}
	return nil
}

func ceilDiv(a, b int) int { return (a + b - 1) / b }
