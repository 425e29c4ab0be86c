package vit

// Linear weights are stored row-major as [in × out], so y = x·W + b. Head h
// owns columns [h*HeadDim, (h+1)*HeadDim) of Q, K and V and the same rows of Proj.

// Layer holds the weights of one encoder layer.
type Layer struct {
	Norm1W, Norm1B []float32 // [Dim]
	QW, KW, VW     []float32 // [Dim × Dim]
	QB, KB, VB     []float32 // [Dim]
	ProjW          []float32 // [Dim × Dim] (W_O)
	ProjB          []float32 // [Dim]
	Norm2W, Norm2B []float32 // [Dim]
	FC1W           []float32 // [Dim × MLPHidden]
	FC1B           []float32 // [MLPHidden]
	FC2W           []float32 // [MLPHidden × Dim]
	FC2B           []float32 // [Dim]
}

// Weights is a whole model: its configuration and every parameter.
type Weights struct {
	Config    Config
	PatchW    []float32 // [PatchLen × Dim]; a patch is flattened in channel, row, column order
	PatchB    []float32 // [Dim]
	ClsToken  []float32 // [Dim]
	DistToken []float32 // [Dim], nil unless Config.DistToken
	PosEmbed  []float32 // [Tokens × Dim]
	Layers    []Layer
	NormW     []float32 // final LayerNorm [Dim]
	NormB     []float32
	HeadW     []float32 // [Dim × NumClasses]
	HeadB     []float32 // [NumClasses]
}

// Pruning says how a forward pass is pruned (see docs/DESIGN.md section 3). The zero
// value with Keep 1 (or a nil *Pruning) is the dense model.
type Pruning struct {
	// Block is the side b of the square blocks of the Q, K, V and Proj masks.
	Block int
	// Layers holds one mask set per encoder layer; nil means no static pruning.
	Layers []LayerMask
	// Keep is the token keep rate k in (0, 1]; 1 disables token dropping.
	Keep float64
	// TDLayers are the 0-indexed layers that drop tokens.
	TDLayers []int
}

// LayerMask holds the static pruning masks of one layer. A nil mask keeps everything.
type LayerMask struct {
	// Q, K, V and Proj are block masks over (Dim/Block) × (Dim/Block) blocks, row-major, true = kept.
	Q, K, V, Proj []bool
	// Neurons marks the kept MLP hidden neurons (a row of FC1 with its bias and the matching column of FC2).
	Neurons []bool
}

// HeadKept reports whether head h survives: a head is removed when every one of
// its blocks in Q, K, V (its columns) and Proj (its rows) is pruned.
func (m LayerMask) HeadKept(cfg Config, block, h int) bool {
	if m.Q == nil && m.K == nil && m.V == nil && m.Proj == nil {
		return true
	}
	nb := cfg.Dim / block
	hb := cfg.HeadDim() / block
	kept := func(mask []bool, br, bc int) bool { return mask == nil || mask[br*nb+bc] }
	for i := range nb {
		for j := h * hb; j < (h+1)*hb; j++ {
			if kept(m.Q, i, j) || kept(m.K, i, j) || kept(m.V, i, j) || kept(m.Proj, j, i) {
				return true
			}
		}
	}
	return false
}
