package vit

import (
	"fmt"
	"math"
	"runtime"
	"slices"
	"sync"

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

// packedLayer is one layer's weights packed for kernels.Packed.Mul, with
// Q, K and V side by side as one [Dim × 3W] product (each output value is
// computed as by three products) and their biases likewise.
type packedLayer struct {
	qkv, proj, fc1, fc2 *kernels.Packed
	qkvBias             []float32
}

// packLayers packs the layers' weights on first use.
func (c *Compacted) packLayers() []packedLayer {
	c.packOnce.Do(func() {
		d := c.Weights.Config.Dim
		c.packed = make([]packedLayer, len(c.Layers))
		forEach(len(c.Layers), func(l int) {
			L := &c.Layers[l]
			wk, kn := len(L.QB), len(L.Neurons)
			qkv := make([]float32, d*3*wk)
			for i := range d {
				row := qkv[i*3*wk : (i+1)*3*wk]
				copy(row, L.QW[i*wk:(i+1)*wk])
				copy(row[wk:], L.KW[i*wk:(i+1)*wk])
				copy(row[2*wk:], L.VW[i*wk:(i+1)*wk])
			}
			c.packed[l] = packedLayer{
				qkv:     kernels.PackB(qkv, d, 3*wk, 3*wk),
				proj:    kernels.PackB(L.ProjW, wk, d, d),
				fc1:     kernels.PackB(L.FC1W, d, kn, kn),
				fc2:     kernels.PackB(L.FC2W, kn, d, d),
				qkvBias: slices.Concat(L.QB, L.KB, L.VB),
			}
		})
	})
	return c.packed
}

// byRows runs f on ranges [lo, hi) of n rows split over the workers, 32
// rows at least to a worker: for the row-wise passes between products.
func (c *Compacted) byRows(n int, f func(lo, hi int)) {
	workers := min(c.workers(), max(1, n/32))
	var wg sync.WaitGroup
	for w := 1; w < workers; w++ {
		wg.Go(func() { f(w*n/workers, (w+1)*n/workers) })
	}
	f(0, n/workers)
	wg.Wait()
}

// workers is the number of goroutines Forward computes on.
func (c *Compacted) workers() int {
	if c.Workers < 1 {
		return runtime.GOMAXPROCS(0)
	}
	return c.Workers
}

// workspace holds one image's intermediate activations, reused layer after
// layer: fresh memory for each would cost more in page faults than in arithmetic.
type workspace struct {
	xn, qkv, o, hidden, mlp []float32
	probs                   [][]float32 // one n×n score matrix a worker
	scores                  []float32   // the heads' CLS attention rows, head after head
}

// newWorkspace sizes a workspace for layers of at most n tokens.
func (c *Compacted) newWorkspace(n int) *workspace {
	d := c.Weights.Config.Dim
	wk, kn, heads := 0, 0, 0
	for _, L := range c.Layers {
		wk = max(wk, len(L.QB))
		kn = max(kn, len(L.Neurons))
		heads = max(heads, len(L.Heads))
	}
	ws := &workspace{
		xn: make([]float32, n*d), qkv: make([]float32, n*3*wk), o: make([]float32, n*wk),
		hidden: make([]float32, n*kn), mlp: make([]float32, n*d), scores: make([]float32, heads*n),
	}
	for range min(c.workers(), max(heads, 1)) {
		ws.probs = append(ws.probs, make([]float32, n*n))
	}
	return ws
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

	P := &c.packLayers()[l]
	xn := ws.xn[:n*d]
	c.byRows(n, func(lo, hi int) {
		kernels.LayerNorm(xn[lo*d:hi*d], x[lo*d:hi*d], L.Norm1W, L.Norm1B, hi-lo, d, cfg.LNEps)
	})
	w3 := 3 * wk
	qkv := ws.qkv[:n*w3]
	P.qkv.Mul(c.Workers, n, xn, d, qkv, w3, &kernels.Epilogue{Bias: P.qkvBias})
	o := ws.o[:n*wk]
	c.attention(o, qkv, n, hd, len(L.Heads), ws, L.Drop)
	if L.Drop {
		// Summed head after head, in order.
		info.Scores = make([]float32, n-1)
		for i := range L.Heads {
			for j, a := range ws.scores[i*(n-1) : (i+1)*(n-1)] {
				info.Scores[j] += a
			}
		}
	}
	h := out[:n*d]
	P.proj.Mul(c.Workers, n, o, wk, h, d, &kernels.Epilogue{Bias: L.ProjB})
	c.byRows(n, func(lo, hi int) { kernels.Add(h[lo*d:hi*d], h[lo*d:hi*d], x[lo*d:hi*d]) })
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
	c.byRows(n, func(lo, hi int) {
		kernels.LayerNorm(xn[lo*d:hi*d], h[lo*d:hi*d], L.Norm2W, L.Norm2B, hi-lo, d, cfg.LNEps)
	})
	kn := len(L.Neurons)
	hidden := ws.hidden[:n*kn]
	P.fc1.Mul(c.Workers, n, xn, d, hidden, kn, &kernels.Epilogue{Bias: L.FC1B, GELU: true})
	mlp := ws.mlp[:n*d]
	P.fc2.Mul(c.Workers, n, hidden, kn, mlp, d, &kernels.Epilogue{Bias: L.FC2B})
	c.byRows(n, func(lo, hi int) { kernels.Add(h[lo*d:hi*d], h[lo*d:hi*d], mlp[lo*d:hi*d]) })
	if err := finiteStage(cfg, fmt.Sprintf("layer %d MLP", l), h); err != nil {
		return nil, info, err
	}
	return h, info, nil
}

// attention writes the heads' outputs into o (n×heads·hd) from the n×3W
// matrix qkv (Q, K, V side by side, W = heads·hd), the heads split over
// the workers: each head's products, softmax and output columns are its own.
// When scores is set, it keeps each head's CLS attention to tokens 1..n-1 in
// ws.scores.
func (c *Compacted) attention(o, qkv []float32, n, hd, heads int, ws *workspace, scores bool) {
	wk := hd * heads
	w3 := 3 * wk
	scale := float32(1 / math.Sqrt(float64(hd)))
	workers := min(len(ws.probs), heads)
	run := func(w int) {
		probs := ws.probs[w][:n*n]
		for i := w * heads / workers; i < (w+1)*heads/workers; i++ {
			q, k, v := qkv[i*hd:], qkv[wk+i*hd:], qkv[2*wk+i*hd:]
			kernels.Gemm(false, true, n, n, hd, scale, q, w3, k, w3, 0, probs, n)
			kernels.SoftmaxRows(probs, n, n)
			if scores {
				copy(ws.scores[i*(n-1):(i+1)*(n-1)], probs[1:n])
			}
			kernels.Gemm(false, false, n, hd, n, 1, probs, n, v, w3, 0, o[i*hd:], wk)
		}
	}
	var wg sync.WaitGroup
	for w := 1; w < workers; w++ {
		wg.Go(func() { run(w) })
	}
	if workers > 0 {
		run(0)
	}
	wg.Wait()
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
