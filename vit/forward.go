package vit

import (
	"fmt"
	"math"

	"vitflow/kernels"
)

// ForwardInfo records what a forward pass did, layer by layer.
type ForwardInfo struct {
	Layers []LayerInfo
}

// LayerInfo records one encoder layer of a forward pass.
type LayerInfo struct {
	TokensIn, TokensOut int
	Heads               []int // the heads computed (kept), ascending
	Neurons             int   // kept MLP neurons
	// Scores is the kept-head average of the CLS attention to tokens
	// 1..TokensIn-1 (token-dropping layers only, else nil).
	Scores []float32
	// Kept lists the input positions of the kept tokens, in descending score
	// order, when the layer dropped tokens; nil when it dropped none.
	Kept []int
}

// Forward runs the reference forward pass on one preprocessed image (CHW,
// see DecodeImage), pruned by p (nil = dense), and returns the logits. It
// compacts w on every call; to run many images, Compact once and call
// Compacted.Forward.
func (w *Weights) Forward(img []float32, p *Pruning) ([]float32, *ForwardInfo, error) {
	c, err := w.Compact(p)
	if err != nil {
		return nil, nil, fmt.Errorf("forward: %w", err)
	}
	return c.Forward(img)
}

// Forward runs the reference forward pass (see docs/DESIGN.md section 3) on one
// preprocessed image and returns the logits. Every path, dense or pruned,
// makes the same kernel calls in the same order, so a pruning that removes
// nothing gives bit-identical logits.
func (c *Compacted) Forward(img []float32) ([]float32, *ForwardInfo, error) {
	cfg := c.Weights.Config
	if want := cfg.InChans * cfg.ImageSize * cfg.ImageSize; len(img) != want {
		return nil, nil, fmt.Errorf("forward %s: image has %d values, want %d (%d×%d×%d)",
			cfg.Name, len(img), want, cfg.InChans, cfg.ImageSize, cfg.ImageSize)
	}
	x, n := c.Embed(img), cfg.Tokens()
	if err := finiteStage(cfg, "patch embedding", x); err != nil {
		return nil, nil, err
	}
	info := &ForwardInfo{Layers: make([]LayerInfo, len(c.Layers))}
	ws := c.newWorkspace(n)
	outs := [2][]float32{make([]float32, n*cfg.Dim), make([]float32, n*cfg.Dim)}
	for l := range c.Layers {
		// x is the previous layer's output (outs[(l-1)%2] or a fresh dropped sequence): never outs[l%2].
		var err error
		if x, info.Layers[l], err = c.encoderLayer(l, x, n, ws, outs[l%2]); err != nil {
			return nil, nil, err
		}
		n = info.Layers[l].TokensOut
	}
	logits := c.Classify(x)
	if err := finiteStage(cfg, "classifier", logits); err != nil {
		return nil, nil, err
	}
	return logits, info, nil
}

// finiteStage reports activations that overflowed float32 (weights that are
// finite but huge, say 1e30, give infinities and then NaN), naming the stage
// where they first appear, instead of logits that argmax would read as class 0.
func finiteStage(cfg Config, stage string, v []float32) error {
	if err := checkFinite(v); err != nil {
		return fmt.Errorf("forward %s: %s: activations are not finite (%v): weights or inputs too large for float32", cfg.Name, stage, err)
	}
	return nil
}

// workspace holds one image's intermediate activations, reused layer after
// layer: fresh memory for each would cost more in page faults than in arithmetic.
type workspace struct {
	xn, q, k, v, o, probs, hidden, mlp []float32
}

// newWorkspace sizes a workspace for layers of at most n tokens.
func (c *Compacted) newWorkspace(n int) *workspace {
	d := c.Weights.Config.Dim
	wk, kn := 0, 0
	for _, L := range c.Layers {
		wk = max(wk, len(L.QB))
		kn = max(kn, len(L.Neurons))
	}
	return &workspace{
		xn: make([]float32, n*d), q: make([]float32, n*wk), k: make([]float32, n*wk), v: make([]float32, n*wk),
		o: make([]float32, n*wk), probs: make([]float32, n*n), hidden: make([]float32, n*kn), mlp: make([]float32, n*d),
	}
}

// Embed turns a preprocessed image into the first layer's input: the patch
// embeddings after CLS (and DIST), plus the position embeddings; [Tokens × Dim].
func (c *Compacted) Embed(img []float32) []float32 {
	cfg := c.Weights.Config
	d, np, plen := cfg.Dim, cfg.Patches(), cfg.PatchLen()
	patches := make([]float32, np*plen)
	kernels.Patches(patches, img, cfg.InChans, cfg.ImageSize, cfg.PatchSize)
	emb := c.linear(make([]float32, np*d), patches, np, plen, c.Weights.PatchW, c.Weights.PatchB, d)
	x := make([]float32, 0, cfg.Tokens()*d)
	x = append(x, c.Weights.ClsToken...)
	if cfg.DistToken {
		x = append(x, c.Weights.DistToken...)
	}
	x = append(x, emb...)
	kernels.Add(x, x, c.Weights.PosEmbed)
	return x
}

// encoderLayer runs layer l on the n×Dim hidden states x (not modified) and
// returns the layer's output, n or fewer tokens (LayerInfo.TokensOut). It
// computes in ws and writes its output to out (n×Dim, not aliasing x) unless
// the layer drops tokens.
func (c *Compacted) encoderLayer(l int, x []float32, n int, ws *workspace, out []float32) ([]float32, LayerInfo, error) {
	cfg := c.Weights.Config
	L := &c.Layers[l]
	d, hd := cfg.Dim, cfg.HeadDim()
	wk := hd * len(L.Heads)
	info := LayerInfo{TokensIn: n, Heads: L.Heads, Neurons: len(L.Neurons)}

	xn := ws.xn[:n*d]
	kernels.LayerNorm(xn, x, L.Norm1W, L.Norm1B, n, d, cfg.LNEps)
	q := c.linear(ws.q[:n*wk], xn, n, d, L.QW, L.QB, wk)
	k := c.linear(ws.k[:n*wk], xn, n, d, L.KW, L.KB, wk)
	v := c.linear(ws.v[:n*wk], xn, n, d, L.VW, L.VB, wk)
	o, probs := ws.o[:n*wk], ws.probs[:n*n]
	if L.Drop {
		info.Scores = make([]float32, n-1)
	}
	scale := float32(1 / math.Sqrt(float64(hd)))
	for i := range L.Heads {
		kernels.GemmParallel(c.Workers, false, true, n, n, hd, scale, q[i*hd:], wk, k[i*hd:], wk, 0, probs, n)
		kernels.SoftmaxRows(probs, n, n)
		if info.Scores != nil {
			for j, a := range probs[1:n] {
				info.Scores[j] += a
			}
		}
		kernels.GemmParallel(c.Workers, false, false, n, hd, n, 1, probs, n, v[i*hd:], wk, 0, o[i*hd:], wk)
	}
	h := c.linear(out[:n*d], o, n, wk, L.ProjW, L.ProjB, d)
	kernels.Add(h, h, x)
	// Checked before token dropping, whose top-k must not see NaN scores (a
	// NaN in the attention reaches h through A·V).
	if err := finiteStage(cfg, fmt.Sprintf("layer %d attention", l), h); err != nil {
		return nil, info, err
	}

	if L.Drop {
		for j := range info.Scores {
			info.Scores[j] /= float32(len(L.Heads))
		}
		h, info.Kept = DropTokens(h, n, d, info.Scores, c.Pruning.Keep)
		n = len(h) / d
	}
	info.TokensOut = n

	xn = xn[:n*d]
	kernels.LayerNorm(xn, h, L.Norm2W, L.Norm2B, n, d, cfg.LNEps)
	kn := len(L.Neurons)
	hidden := c.linear(ws.hidden[:n*kn], xn, n, d, L.FC1W, L.FC1B, kn)
	kernels.GELU(hidden, hidden)
	mlp := c.linear(ws.mlp[:n*d], hidden, n, kn, L.FC2W, L.FC2B, d)
	kernels.Add(h, h, mlp)
	if err := finiteStage(cfg, fmt.Sprintf("layer %d MLP", l), h); err != nil {
		return nil, info, err
	}
	return h, info, nil
}

// Classify applies the final LayerNorm and the classifier to the CLS token
// (row 0) of the last layer's output.
func (c *Compacted) Classify(x []float32) []float32 {
	cfg := c.Weights.Config
	cls := make([]float32, cfg.Dim)
	kernels.LayerNorm(cls, x[:cfg.Dim], c.Weights.NormW, c.Weights.NormB, 1, cfg.Dim, cfg.LNEps)
	return c.linear(make([]float32, cfg.NumClasses), cls, 1, cfg.Dim, c.Weights.HeadW, c.Weights.HeadB, cfg.NumClasses)
}

// linear writes x·w + b into y and returns it, for x [m × in], w [in × out], y [m × out].
func (c *Compacted) linear(y, x []float32, m, in int, w, b []float32, out int) []float32 {
	if in > 0 && out > 0 && m > 0 {
		kernels.GemmParallel(c.Workers, false, false, m, out, in, 1, x, in, w, out, 0, y, out)
	} else {
		clear(y)
	}
	kernels.AddBias(y, b, m, out)
	return y
}

// DropTokens is the token dropping of the paper (docs/DESIGN.md section 3) on the n×dim hidden
// states x (CLS first), given scores, the head-averaged CLS attention to tokens
// 1..n-1. It keeps the KeptTokens(n, keep) best-scoring tokens (kernels.TopK:
// descending, ties to the lower index) and fuses the others into one token,
// sum of score×state (not renormalised): the result is [CLS, kept..., fused].
// kept holds the input positions of the kept tokens. When no token would be
// dropped, x is returned unchanged with kept == nil.
func DropTokens(x []float32, n, dim int, scores []float32, keep float64) (out []float32, kept []int) {
	nk := KeptTokens(n, keep)
	if nk >= n-1 {
		return x, nil
	}
	out = make([]float32, (nk+2)*dim)
	kept = kernels.DropTokens(out, x, n, dim, scores, nk)
	return out, kept
}
