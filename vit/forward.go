package vit

import (
	"fmt"
	"math"
	"runtime"
	"slices"

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
	logits, infos, err := c.ForwardBatch([][]float32{img})
	if err != nil {
		return nil, nil, err
	}
	return logits[0], infos[0], nil
}

// ForwardBatch runs the reference forward pass on several images at once:
// each product multiplies every image's tokens together, which keeps the
// cores busier than one image at a time. Each image gets the same bits,
// logits and info, as Forward gives it alone.
func (c *Compacted) ForwardBatch(imgs [][]float32) ([][]float32, []*ForwardInfo, error) {
	cfg := c.Weights.Config
	b, n, d := len(imgs), cfg.Tokens(), cfg.Dim
	if b == 0 {
		return nil, nil, nil
	}
	x := make([]float32, 0, b*n*d)
	for i, img := range imgs {
		if want := cfg.InChans * cfg.ImageSize * cfg.ImageSize; len(img) != want {
			return nil, nil, fmt.Errorf("forward %s: %s has %d values, want %d (%d×%d×%d)",
				cfg.Name, imageName(b, i), len(img), want, cfg.InChans, cfg.ImageSize, cfg.ImageSize)
		}
		e := c.Embed(img)
		if err := finiteStage(cfg, stageName(b, i, "patch embedding"), e); err != nil {
			return nil, nil, err
		}
		x = append(x, e...)
	}
	infos := make([]*ForwardInfo, b)
	for i := range infos {
		infos[i] = &ForwardInfo{Layers: make([]LayerInfo, len(c.Layers))}
	}
	ws := c.newWorkspace(b, n)
	outs := [2][]float32{make([]float32, b*n*d), make([]float32, b*n*d)}
	for l := range c.Layers {
		// x is the previous layer's output (outs[(l-1)%2] or a fresh dropped sequence): never outs[l%2].
		layer, err := c.encoderLayer(l, x, b, n, ws, outs[l%2])
		if err != nil {
			return nil, nil, err
		}
		x = layer.out
		for i := range infos {
			infos[i].Layers[l] = layer.infos[i]
		}
		n = layer.infos[0].TokensOut
	}
	logits := make([][]float32, b)
	for i := range logits {
		logits[i] = c.Classify(x[i*n*d:])
		if err := finiteStage(cfg, stageName(b, i, "classifier"), logits[i]); err != nil {
			return nil, nil, err
		}
	}
	return logits, infos, nil
}

// imageName names image i of a batch of b in errors: "image" alone for one.
func imageName(b, i int) string {
	if b == 1 {
		return "image"
	}
	return fmt.Sprintf("image %d", i)
}

// stageName is a forward stage, prefixed by the image when the batch has more than one.
func stageName(b, i int, stage string) string {
	if b == 1 {
		return stage
	}
	return fmt.Sprintf("image %d: %s", i, stage)
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
	kernels.Parallel(workers, func(w int) { f(w*n/workers, (w+1)*n/workers) })
}

// workers is the number of goroutines Forward computes on.
func (c *Compacted) workers() int {
	if c.Workers < 1 {
		return runtime.GOMAXPROCS(0)
	}
	return c.Workers
}

// workspace holds a batch's intermediate activations, reused layer after
// layer: fresh memory for each would cost more in page faults than in arithmetic.
type workspace struct {
	xn, qkv, o, hidden, mlp []float32
	probs                   [][]float32 // one n×n score matrix a worker
	scores                  []float32   // each image's heads' CLS attention rows, head after head
}

// newWorkspace sizes a workspace for b images of at most n tokens.
func (c *Compacted) newWorkspace(b, n int) *workspace {
	d := c.Weights.Config.Dim
	wk, kn, heads := 0, 0, 0
	for _, L := range c.Layers {
		wk = max(wk, len(L.QB))
		kn = max(kn, len(L.Neurons))
		heads = max(heads, len(L.Heads))
	}
	rows := b * n
	ws := &workspace{
		xn: make([]float32, rows*d), qkv: make([]float32, rows*3*wk), o: make([]float32, rows*wk),
		hidden: make([]float32, rows*kn), mlp: make([]float32, rows*d), scores: make([]float32, b*heads*n),
	}
	for range min(c.workers(), max(b*heads, 1)) {
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

// layerResult is what encoderLayer returns: the layer's output and, for
// each image, what the layer did.
type layerResult struct {
	out   []float32
	infos []LayerInfo
}

// encoderLayer runs layer l on the hidden states x of b images, n tokens
// each (b·n × Dim, not modified). It computes in ws and writes its output
// to out (not aliasing x) unless the layer drops tokens; every image keeps
// the same number of tokens (LayerInfo.TokensOut).
func (c *Compacted) encoderLayer(l int, x []float32, b, n int, ws *workspace, out []float32) (layerResult, error) {
	cfg := c.Weights.Config
	L := &c.Layers[l]
	P := &c.packLayers()[l]
	d, hd, heads := cfg.Dim, cfg.HeadDim(), len(L.Heads)
	wk, w3 := hd*heads, 3*hd*heads
	infos := make([]LayerInfo, b)
	for i := range infos {
		infos[i] = LayerInfo{TokensIn: n, Heads: L.Heads, Neurons: len(L.Neurons)}
	}
	check := func(h []float32, n int, stage string) error {
		for i := range b {
			if err := finiteStage(cfg, stageName(b, i, fmt.Sprintf("layer %d %s", l, stage)), h[i*n*d:(i+1)*n*d]); err != nil {
				return err
			}
		}
		return nil
	}

	rows := b * n
	xn := ws.xn[:rows*d]
	c.byRows(rows, func(lo, hi int) {
		kernels.LayerNorm(xn[lo*d:hi*d], x[lo*d:hi*d], L.Norm1W, L.Norm1B, hi-lo, d, cfg.LNEps)
	})
	qkv := ws.qkv[:rows*w3]
	P.qkv.Mul(c.Workers, rows, xn, d, qkv, w3, &kernels.Epilogue{Bias: P.qkvBias})
	o := ws.o[:rows*wk]
	c.attention(o, qkv, b, n, hd, heads, ws, L.Drop)
	h := out[:rows*d]
	P.proj.Mul(c.Workers, rows, o, wk, h, d, &kernels.Epilogue{Bias: L.ProjB})
	c.byRows(rows, func(lo, hi int) { kernels.Add(h[lo*d:hi*d], h[lo*d:hi*d], x[lo*d:hi*d]) })
	// Checked before token dropping, whose top-k must not see NaN scores (a
	// NaN in the attention reaches h through A·V).
	if err := check(h, n, "attention"); err != nil {
		return layerResult{}, err
	}

	if L.Drop {
		for i := range infos {
			// Summed head after head, in order, then averaged.
			scores := make([]float32, n-1)
			for hh := range heads {
				for j, a := range ws.scores[(i*heads+hh)*(n-1) : (i*heads+hh+1)*(n-1)] {
					scores[j] += a
				}
			}
			for j := range scores {
				scores[j] /= float32(heads)
			}
			infos[i].Scores = scores
		}
		if KeptTokens(n, c.Pruning.Keep) < n-1 {
			var dropped []float32
			for i := range infos {
				out, kept := DropTokens(h[i*n*d:(i+1)*n*d], n, d, infos[i].Scores, c.Pruning.Keep)
				dropped, infos[i].Kept = append(dropped, out...), kept
			}
			h, n = dropped, len(dropped)/(b*d)
		}
	}
	for i := range infos {
		infos[i].TokensOut = n
	}

	rows = b * n
	xn = xn[:rows*d]
	c.byRows(rows, func(lo, hi int) {
		kernels.LayerNorm(xn[lo*d:hi*d], h[lo*d:hi*d], L.Norm2W, L.Norm2B, hi-lo, d, cfg.LNEps)
	})
	kn := len(L.Neurons)
	hidden := ws.hidden[:rows*kn]
	P.fc1.Mul(c.Workers, rows, xn, d, hidden, kn, &kernels.Epilogue{Bias: L.FC1B, GELU: true})
	mlp := ws.mlp[:rows*d]
	P.fc2.Mul(c.Workers, rows, hidden, kn, mlp, d, &kernels.Epilogue{Bias: L.FC2B})
	c.byRows(rows, func(lo, hi int) { kernels.Add(h[lo*d:hi*d], h[lo*d:hi*d], mlp[lo*d:hi*d]) })
	if err := check(h, n, "MLP"); err != nil {
		return layerResult{}, err
	}
	return layerResult{h, infos}, nil
}

// attention writes the heads' outputs into o (b·n × heads·hd) from the
// b·n × 3W matrix qkv (Q, K, V side by side, W = heads·hd) of b images, n
// tokens each, the (image, head) pairs split over the workers: each pair's
// products, softmax and output block are its own. When scores is set, it
// keeps each pair's CLS attention to tokens 1..n-1 in ws.scores.
func (c *Compacted) attention(o, qkv []float32, b, n, hd, heads int, ws *workspace, scores bool) {
	wk := hd * heads
	w3 := 3 * wk
	scale := float32(1 / math.Sqrt(float64(hd)))
	units := b * heads
	workers := min(len(ws.probs), units)
	run := func(w int) {
		probs := ws.probs[w][:n*n]
		for u := w * units / workers; u < (w+1)*units/workers; u++ {
			img, head := u/heads, u%heads
			base := img * n * w3
			q, k, v := qkv[base+head*hd:], qkv[base+wk+head*hd:], qkv[base+2*wk+head*hd:]
			kernels.Gemm(false, true, n, n, hd, scale, q, w3, k, w3, 0, probs, n)
			kernels.SoftmaxRows(probs, n, n)
			if scores {
				copy(ws.scores[u*(n-1):(u+1)*(n-1)], probs[1:n])
			}
			kernels.Gemm(false, false, n, hd, n, 1, probs, n, v, w3, 0, o[img*n*wk+head*hd:], wk)
		}
	}
	if workers > 0 {
		kernels.Parallel(workers, run)
	}
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
