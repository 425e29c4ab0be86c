package prune

import (
	"math"

	"vitflow/kernels"
	"vitflow/vit"
)

// stepModel is what one training forward pass runs: the masked ("effective")
// weights, the heads that survive the masks, and the token dropping.
type stepModel struct {
	w     *vit.Weights
	heads [][]bool // per layer, kept heads (token importance averages over them)
	keep  float64
	td    []bool // per layer, whether it drops tokens
}

// layerCache holds what the backward pass needs from one encoder layer.
type layerCache struct {
	n, nOut int  // tokens in and after token dropping
	drop    bool // whether this layer dropped tokens
	x       []float32
	xhat1   []float32
	rstd1   []float32
	h1      []float32
	q, k, v []float32
	p       []float32 // attention probabilities, [image][head][n×n]
	o       []float32
	x2      []float32 // after the attention residual
	score   []float32 // head-averaged CLS attention per token, [image][n]
	kept    []int     // kept token indices per image in output order, [image][nOut-2]
	isKept  []bool    // [image][n]
	x3      []float32 // after token dropping (x2 when nothing is dropped)
	xhat2   []float32
	rstd2   []float32
	h2      []float32
	slope   []float32 // GELU'(FC1 output)
	g       []float32 // GELU output
}

// net is one worker's forward and backward engine over a shard of images.
// Every activation buffer is sized once for the largest shard, so steps
// allocate only small bookkeeping (top-k indices).
type net struct {
	cfg     vit.Config
	patches []float32
	emb     []float32
	layers  []layerCache
	out     []float32 // last layer output
	clsXhat []float32
	clsRstd []float32
	clsLN   []float32
	logits  []float32
	// backward scratch
	dxA, dxB []float32
	dh       []float32
	dq, dk   []float32
	dv, do   []float32
	dP       []float32
	df       []float32
	dscore   []float32
	dcls     []float32
}

func newNet(cfg vit.Config, images int) *net {
	n, d, hid := cfg.Tokens(), cfg.Dim, cfg.MLPHidden
	rows := images * n
	f := func(size int) []float32 { return make([]float32, size) }
	nt := &net{cfg: cfg,
		patches: f(images * cfg.Patches() * cfg.PatchLen()), emb: f(images * cfg.Patches() * d),
		out: f(rows * d), clsXhat: f(images * d), clsRstd: f(images), clsLN: f(images * d), logits: f(images * cfg.NumClasses),
		dxA: f(rows * d), dxB: f(rows * d), dh: f(rows * d), dq: f(rows * d), dk: f(rows * d), dv: f(rows * d), do: f(rows * d),
		dP: f(n * n), df: f(rows * hid), dscore: f(images * n), dcls: f(images * d)}
	nt.layers = make([]layerCache, cfg.Depth)
	for i := range nt.layers {
		nt.layers[i] = layerCache{x: f(rows * d), xhat1: f(rows * d), rstd1: f(rows), h1: f(rows * d),
			q: f(rows * d), k: f(rows * d), v: f(rows * d), p: f(images * cfg.Heads * n * n), o: f(rows * d), x2: f(rows * d),
			score: f(images * n), kept: make([]int, images*n), isKept: make([]bool, images*n), x3: f(rows * d),
			xhat2: f(rows * d), rstd2: f(rows), h2: f(rows * d), slope: f(rows * hid), g: f(rows * hid)}
	}
	return nt
}

// prefix is the number of tokens before the patches (CLS, and DIST if any).
func prefix(cfg vit.Config) int { return cfg.Tokens() - cfg.Patches() }

// forward runs the images (each cfg-preprocessed CHW pixels) and returns
// their logits, [image × classes], valid until the next call.
func (nt *net) forward(m *stepModel, images [][]float32) []float32 {
	cfg, w := nt.cfg, m.w
	bsz, d, np, pl := len(images), cfg.Dim, cfg.Patches(), cfg.PatchLen()
	n, pre := cfg.Tokens(), prefix(cfg)
	for b, img := range images {
		kernels.Patches(nt.patches[b*np*pl:(b+1)*np*pl], img, cfg.InChans, cfg.ImageSize, cfg.PatchSize)
	}
	kernels.Gemm(false, false, bsz*np, d, pl, 1, nt.patches, pl, w.PatchW, d, 0, nt.emb, d)
	x := nt.layers[0].x[:bsz*n*d]
	for b := range bsz {
		xb := x[b*n*d : (b+1)*n*d]
		copy(xb[:d], w.ClsToken)
		if pre == 2 {
			copy(xb[d:2*d], w.DistToken)
		}
		copy(xb[pre*d:], nt.emb[b*np*d:(b+1)*np*d])
		kernels.AddBias(xb[pre*d:], w.PatchB, np, d)
		kernels.Add(xb, xb, w.PosEmbed)
	}
	for l := range nt.layers {
		next := nt.out
		if l+1 < len(nt.layers) {
			next = nt.layers[l+1].x
		}
		n = nt.layerForward(l, m, bsz, n, next)
	}
	// Final LayerNorm and classifier on the CLS rows only.
	for b := range bsz {
		copy(nt.clsXhat[b*d:(b+1)*d], nt.out[b*n*d:b*n*d+d])
	}
	layerNormForward(nt.clsLN[:bsz*d], nt.clsXhat[:bsz*d], nt.clsRstd[:bsz], nt.clsXhat[:bsz*d], w.NormW, w.NormB, bsz, d, cfg.LNEps)
	c := cfg.NumClasses
	logits := nt.logits[:bsz*c]
	kernels.Gemm(false, false, bsz, c, d, 1, nt.clsLN, d, w.HeadW, c, 0, logits, c)
	kernels.AddBias(logits, w.HeadB, bsz, c)
	return logits
}

func (nt *net) layerForward(l int, m *stepModel, bsz, n int, next []float32) int {
	cfg, lw, c := nt.cfg, &m.w.Layers[l], &nt.layers[l]
	d, hid, heads, hd := cfg.Dim, cfg.MLPHidden, cfg.Heads, cfg.HeadDim()
	rows := bsz * n
	c.n = n
	x := c.x[:rows*d]
	layerNormForward(c.h1[:rows*d], c.xhat1[:rows*d], c.rstd1[:rows], x, lw.Norm1W, lw.Norm1B, rows, d, cfg.LNEps)
	linear(c.q, c.h1, lw.QW, lw.QB, rows, d, d)
	linear(c.k, c.h1, lw.KW, lw.KB, rows, d, d)
	linear(c.v, c.h1, lw.VW, lw.VB, rows, d, d)
	scale := float32(1 / math.Sqrt(float64(hd)))
	for b := range bsz {
		for h := range heads {
			off := b*n*d + h*hd
			p := c.p[(b*heads+h)*n*n : (b*heads+h+1)*n*n]
			kernels.Gemm(false, true, n, n, hd, scale, c.q[off:], d, c.k[off:], d, 0, p, n)
			softmaxRows(p, n)
			kernels.Gemm(false, false, n, hd, n, 1, p, n, c.v[off:], d, 0, c.o[off:], d)
		}
	}
	x2 := c.x2[:rows*d]
	linear(x2, c.o, lw.ProjW, lw.ProjB, rows, d, d)
	kernels.Add(x2, x2, x)

	c.drop = m.td[l] && vit.KeptTokens(n, m.keep) < n-1
	c.nOut = n
	x3 := x2
	if c.drop {
		c.nOut = vit.TokensAfterDrop(n, m.keep)
		x3 = c.x3[:bsz*c.nOut*d]
		nt.dropTokens(c, m.heads[l], bsz, x3)
	}
	n = c.nOut
	rows = bsz * n
	layerNormForward(c.h2[:rows*d], c.xhat2[:rows*d], c.rstd2[:rows], x3, lw.Norm2W, lw.Norm2B, rows, d, cfg.LNEps)
	linear(c.slope, c.h2, lw.FC1W, lw.FC1B, rows, d, hid)
	geluAndSlope(c.g[:rows*hid], c.slope[:rows*hid], c.slope[:rows*hid])
	out := next[:rows*d]
	linear(out, c.g, lw.FC2W, lw.FC2B, rows, hid, d)
	kernels.Add(out, out, x3)
	return n
}

// dropTokens keeps, per image, the KeptTokens(n, keep) tokens with the largest
// head-averaged CLS attention (descending; ties to the lower index) and fuses
// the others into one token weighted by that attention: [CLS, kept..., fused].
func (nt *net) dropTokens(c *layerCache, heads []bool, bsz int, x3 []float32) {
	cfg := nt.cfg
	d, n, nh := cfg.Dim, c.n, cfg.Heads
	nk := c.nOut - 2
	kept := countKept(heads)
	for b := range bsz {
		s := c.score[b*n : (b+1)*n]
		clear(s)
		for h := range nh {
			if heads[h] {
				kernels.Add(s, s, c.p[(b*nh+h)*n*n:(b*nh+h)*n*n+n])
			}
		}
		for j := range s {
			s[j] /= kept
		}
		x2 := c.x2[b*n*d : (b+1)*n*d]
		out := x3[b*c.nOut*d : (b+1)*c.nOut*d]
		keptIdx := c.kept[b*nk : (b+1)*nk]
		copy(keptIdx, kernels.DropTokens(out, x2, n, d, s[1:], nk))
		// The backward pass tells kept from dropped tokens by these flags.
		isKept := c.isKept[b*n : (b+1)*n]
		clear(isKept)
		isKept[0] = true
		for _, t := range keptIdx {
			isKept[t] = true
		}
	}
}

// backward takes dlogits (gradient of the loss w.r.t. the logits of the last
// forward) and writes the gradient w.r.t. every weight of m.w into grad,
// overwriting it.
func (nt *net) backward(m *stepModel, bsz int, dlogits []float32, grad *vit.Weights) {
	cfg, w := nt.cfg, m.w
	d, c := cfg.Dim, cfg.NumClasses
	kernels.Gemm(true, false, d, c, bsz, 1, nt.clsLN, d, dlogits, c, 0, grad.HeadW, c)
	colSum(grad.HeadB, dlogits, bsz, c)
	dcls := nt.dcls[:bsz*d]
	kernels.Gemm(false, true, bsz, d, c, 1, dlogits, c, w.HeadW, c, 0, dcls, d)
	n := nt.layers[len(nt.layers)-1].nOut
	dx := nt.dxA[:bsz*n*d]
	clear(dx)
	layerNormBackward(nt.dh[:bsz*d], grad.NormW, grad.NormB, dcls, nt.clsXhat, nt.clsRstd, w.NormW, bsz, d)
	for b := range bsz {
		copy(dx[b*n*d:b*n*d+d], nt.dh[b*d:(b+1)*d])
	}
	other := nt.dxB
	for l := len(nt.layers) - 1; l >= 0; l-- {
		dx, other = nt.layerBackward(l, m, bsz, dx, other, &grad.Layers[l])
	}
	// Embedding.
	n, pre, np, pl := cfg.Tokens(), prefix(cfg), cfg.Patches(), cfg.PatchLen()
	clear(grad.PosEmbed)
	clear(grad.ClsToken)
	clear(grad.DistToken)
	for b := range bsz {
		db := dx[b*n*d : (b+1)*n*d]
		kernels.Add(grad.PosEmbed, grad.PosEmbed, db)
		kernels.Add(grad.ClsToken, grad.ClsToken, db[:d])
		if pre == 2 {
			kernels.Add(grad.DistToken, grad.DistToken, db[d:2*d])
		}
		copy(nt.emb[b*np*d:(b+1)*np*d], db[pre*d:])
	}
	colSum(grad.PatchB, nt.emb, bsz*np, d)
	kernels.Gemm(true, false, pl, d, bsz*np, 1, nt.patches, pl, nt.emb, d, 0, grad.PatchW, d)
}

// layerBackward turns dx, the gradient w.r.t. layer l's output, into the
// gradient w.r.t. its input, returned with the free buffer.
func (nt *net) layerBackward(l int, m *stepModel, bsz int, dx, other []float32, g *vit.Layer) ([]float32, []float32) {
	cfg, lw, c := nt.cfg, &m.w.Layers[l], &nt.layers[l]
	d, hid, nh, hd := cfg.Dim, cfg.MLPHidden, cfg.Heads, cfg.HeadDim()
	n := c.nOut
	rows := bsz * n

	// MLP: out = x3 + FC2(GELU(FC1(LN2(x3)))).
	kernels.Gemm(true, false, hid, d, rows, 1, c.g, hid, dx, d, 0, g.FC2W, d)
	colSum(g.FC2B, dx, rows, d)
	df := nt.df[:rows*hid]
	kernels.Gemm(false, true, rows, hid, d, 1, dx, d, lw.FC2W, d, 0, df, hid)
	for i, s := range c.slope[:rows*hid] {
		df[i] *= s
	}
	kernels.Gemm(true, false, d, hid, rows, 1, c.h2, d, df, hid, 0, g.FC1W, hid)
	colSum(g.FC1B, df, rows, hid)
	dh := nt.dh[:rows*d]
	kernels.Gemm(false, true, rows, d, hid, 1, df, hid, lw.FC1W, hid, 0, dh, d)
	layerNormBackward(dh, g.Norm2W, g.Norm2B, dh, c.xhat2, c.rstd2, lw.Norm2W, rows, d)
	kernels.Add(dx, dx, dh)

	// Token dropping: kept tokens pass their gradient through; the fused token
	// sends a_j·dfused to each dropped x_j and dfused·x_j to a_j, hence to the
	// CLS attention row of every kept head.
	n = c.n
	rows = bsz * n
	dx2 := dx
	if c.drop {
		dx2, other = other[:rows*d], dx
		nt.undropTokens(c, bsz, dx, dx2)
	}

	// Attention: x2 = x + Proj(MSA(LN1(x))).
	kernels.Gemm(true, false, d, d, rows, 1, c.o, d, dx2, d, 0, g.ProjW, d)
	colSum(g.ProjB, dx2, rows, d)
	do := nt.do[:rows*d]
	kernels.Gemm(false, true, rows, d, d, 1, dx2, d, lw.ProjW, d, 0, do, d)
	kept := countKept(m.heads[l])
	scale := float32(1 / math.Sqrt(float64(hd)))
	dP := nt.dP[:n*n]
	dq, dk, dv := nt.dq[:rows*d], nt.dk[:rows*d], nt.dv[:rows*d]
	for b := range bsz {
		for h := range nh {
			off := b*n*d + h*hd
			p := c.p[(b*nh+h)*n*n : (b*nh+h+1)*n*n]
			kernels.Gemm(false, true, n, n, hd, 1, do[off:], d, c.v[off:], d, 0, dP, n)
			if c.drop && m.heads[l][h] {
				ds := nt.dscore[b*n : (b+1)*n]
				for j := 1; j < n; j++ {
					dP[j] += ds[j] / kept
				}
			}
			kernels.Gemm(true, false, n, hd, n, 1, p, n, do[off:], d, 0, dv[off:], d)
			softmaxBackward(dP, p, n)
			kernels.Gemm(false, false, n, hd, n, scale, dP, n, c.k[off:], d, 0, dq[off:], d)
			kernels.Gemm(true, false, n, hd, n, scale, dP, n, c.q[off:], d, 0, dk[off:], d)
		}
	}
	dh = nt.dh[:rows*d]
	for _, t := range []struct{ dy, w, gw, gb []float32 }{{dq, lw.QW, g.QW, g.QB}, {dk, lw.KW, g.KW, g.KB}, {dv, lw.VW, g.VW, g.VB}} {
		kernels.Gemm(true, false, d, d, rows, 1, c.h1, d, t.dy, d, 0, t.gw, d)
		colSum(t.gb, t.dy, rows, d)
	}
	kernels.Gemm(false, true, rows, d, d, 1, dq, d, lw.QW, d, 0, dh, d)
	kernels.Gemm(false, true, rows, d, d, 1, dk, d, lw.KW, d, 1, dh, d)
	kernels.Gemm(false, true, rows, d, d, 1, dv, d, lw.VW, d, 1, dh, d)
	layerNormBackward(dh, g.Norm1W, g.Norm1B, dh, c.xhat1, c.rstd1, lw.Norm1W, rows, d)
	kernels.Add(dx2, dx2, dh)
	return dx2, other
}

// countKept is the number of kept heads, the divisor of the head-averaged token scores.
func countKept(heads []bool) float32 {
	var n float32
	for _, k := range heads {
		if k {
			n++
		}
	}
	return n
}

// undropTokens scatters dx3, the gradient w.r.t. the [CLS, kept..., fused]
// sequence, back onto the n tokens (dx2) and writes the gradient w.r.t. each
// dropped token's fusion weight a_j into nt.dscore.
func (nt *net) undropTokens(c *layerCache, bsz int, dx3, dx2 []float32) {
	d, n, no := nt.cfg.Dim, c.n, c.nOut
	nk := no - 2
	for b := range bsz {
		src, dst := dx3[b*no*d:(b+1)*no*d], dx2[b*n*d:(b+1)*n*d]
		ds := nt.dscore[b*n : (b+1)*n]
		clear(ds)
		copy(dst[:d], src[:d])
		for i, t := range c.kept[b*nk : (b+1)*nk] {
			copy(dst[t*d:(t+1)*d], src[(i+1)*d:(i+2)*d])
		}
		dfused := src[(no-1)*d:]
		x2, s, isKept := c.x2[b*n*d:(b+1)*n*d], c.score[b*n:(b+1)*n], c.isKept[b*n:(b+1)*n]
		for j := 1; j < n; j++ {
			if isKept[j] {
				continue
			}
			row := dst[j*d : (j+1)*d]
			for e, v := range dfused {
				row[e] = s[j] * v
			}
			ds[j] = dot(dfused, x2[j*d:(j+1)*d])
		}
	}
}

// linear computes y[rows×out] = x[rows×in]·w + bias.
func linear(y, x, w, bias []float32, rows, in, out int) {
	kernels.Gemm(false, false, rows, out, in, 1, x, in, w, out, 0, y, out)
	kernels.AddBias(y[:rows*out], bias, rows, out)
}

// colSum writes the sum over rows of x (rows×cols) into dst.
func colSum(dst, x []float32, rows, cols int) {
	clear(dst)
	for r := range rows {
		kernels.Add(dst, dst, x[r*cols:(r+1)*cols])
	}
}

func dot(a, b []float32) float32 {
	var s float32
	for i, v := range a {
		s += v * b[i]
	}
	return s
}

// layerNormForward is kernels.LayerNorm that also keeps the normalised rows
// (xhat) and the reciprocal standard deviations for the backward pass. xhat may alias x.
func layerNormForward(y, xhat, rstd, x, gamma, beta []float32, rows, cols int, eps float32) {
	for r := range rows {
		row, xh, out := x[r*cols:(r+1)*cols], xhat[r*cols:(r+1)*cols], y[r*cols:(r+1)*cols]
		var mean float32
		for _, v := range row {
			mean += v
		}
		mean /= float32(cols)
		var variance float32
		for _, v := range row {
			variance += (v - mean) * (v - mean)
		}
		variance /= float32(cols)
		inv := float32(1 / math.Sqrt(float64(variance+eps)))
		rstd[r] = inv
		for i, v := range row {
			xh[i] = (v - mean) * inv
			out[i] = xh[i]*gamma[i] + beta[i]
		}
	}
}

// layerNormBackward writes into dx (may alias dy) the gradient w.r.t. the
// LayerNorm input, and into dgamma and dbeta (overwritten) the parameter gradients.
func layerNormBackward(dx, dgamma, dbeta, dy, xhat, rstd, gamma []float32, rows, cols int) {
	clear(dgamma)
	clear(dbeta)
	inv := 1 / float32(cols)
	for r := range rows {
		g, xh, o := dy[r*cols:(r+1)*cols], xhat[r*cols:(r+1)*cols], dx[r*cols:(r+1)*cols]
		var m1, m2 float32
		for i, v := range g {
			dgamma[i] += v * xh[i]
			dbeta[i] += v
			t := v * gamma[i]
			m1 += t
			m2 += t * xh[i]
		}
		m1 *= inv
		m2 *= inv
		s := rstd[r]
		for i, v := range g {
			o[i] = s * (v*gamma[i] - m1 - xh[i]*m2)
		}
	}
}

// softmaxBackward turns dp, the gradient w.r.t. the softmax output p (rows of
// n), into the gradient w.r.t. its input, in place.
func softmaxBackward(dp, p []float32, n int) {
	for r := 0; r < len(p); r += n {
		g, pr := dp[r:r+n], p[r:r+n]
		s := dot(g, pr)
		for i, v := range pr {
			g[i] = v * (g[i] - s)
		}
	}
}
