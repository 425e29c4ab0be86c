package vit

import (
	"cmp"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func randomImage(cfg Config, seed uint64) []float32 {
	rng := rand.New(rand.NewPCG(seed, 1))
	img := make([]float32, cfg.InChans*cfg.ImageSize*cfg.ImageSize)
	for i := range img {
		img[i] = float32(rng.NormFloat64())
	}
	return img
}

// sharpWeights are random weights whose attention is far from uniform, so
// that token scores are well separated and top-k is not decided by rounding.
func sharpWeights(cfg Config, seed uint64) *Weights {
	w := RandomWeights(cfg, seed)
	for i := range w.Layers {
		for j := range w.Layers[i].QW {
			w.Layers[i].QW[j] *= 8
			w.Layers[i].KW[j] *= 8
		}
	}
	return w
}

// randomPruning masks blocks and neurons at random (about 60% kept) and
// removes head 1 of layer 1 entirely.
func randomPruning(cfg Config, block int, keep float64, td []int, seed uint64) *Pruning {
	rng := rand.New(rand.NewPCG(seed, 2))
	nb := cfg.Dim / block
	mask := func(n int) []bool {
		m := make([]bool, n)
		for i := range m {
			m[i] = rng.Float64() < 0.6
		}
		return m
	}
	p := &Pruning{Block: block, Keep: keep, TDLayers: td, Layers: make([]LayerMask, cfg.Depth)}
	for l := range p.Layers {
		p.Layers[l] = LayerMask{Q: mask(nb * nb), K: mask(nb * nb), V: mask(nb * nb), Proj: mask(nb * nb), Neurons: mask(cfg.MLPHidden)}
	}
	hb := cfg.HeadDim() / block
	m := p.Layers[1]
	for i := range nb {
		for j := hb; j < 2*hb; j++ {
			m.Q[i*nb+j], m.K[i*nb+j], m.V[i*nb+j], m.Proj[j*nb+i] = false, false, false, false
		}
	}
	return p
}

// refForward is an independent float64 implementation of the paper's model
// and pruning (docs/DESIGN.md section 3) on the uncompacted weights: masks multiply the weights, removed heads
// and neurons are skipped. It returns the logits, each TD layer's kept tokens
// and the smallest gap between a kept and a dropped score.
func refForward(w *Weights, p *Pruning, img []float32) ([]float64, map[int][]int, float64) {
	cfg := w.Config
	d, hd, side, ps := cfg.Dim, cfg.HeadDim(), cfg.ImageSize, cfg.PatchSize
	grid := side / ps
	f := func(v float32) float64 { return float64(v) }
	var x [][]float64
	addToken := func(tok []float32) {
		row := make([]float64, d)
		for i, v := range tok {
			row[i] = f(v)
		}
		x = append(x, row)
	}
	addToken(w.ClsToken)
	if cfg.DistToken {
		addToken(w.DistToken)
	}
	for py := range grid {
		for px := range grid {
			tok := make([]float64, d)
			for o := range d {
				s := f(w.PatchB[o])
				k := 0
				for ch := range cfg.InChans {
					for r := range ps {
						for c := range ps {
							s += f(img[ch*side*side+(py*ps+r)*side+px*ps+c]) * f(w.PatchW[k*d+o])
							k++
						}
					}
				}
				tok[o] = s
			}
			x = append(x, tok)
		}
	}
	for tkn := range x {
		for o := range d {
			x[tkn][o] += f(w.PosEmbed[tkn*d+o])
		}
	}
	ln := func(v []float64, g, b []float32) []float64 {
		var mean, variance float64
		for _, a := range v {
			mean += a
		}
		mean /= float64(len(v))
		for _, a := range v {
			variance += (a - mean) * (a - mean)
		}
		variance /= float64(len(v))
		out := make([]float64, len(v))
		for i, a := range v {
			out[i] = (a-mean)/math.Sqrt(variance+f(cfg.LNEps))*f(g[i]) + f(b[i])
		}
		return out
	}
	nb := func(b int) int { return d / b }
	kept := map[int][]int{}
	minGap := math.Inf(1)
	for l, L := range w.Layers {
		var m LayerMask
		if p != nil && p.Layers != nil {
			m = p.Layers[l]
		}
		on := func(mask []bool, r, c int) float64 {
			if mask == nil || mask[(r/p.Block)*nb(p.Block)+c/p.Block] {
				return 1
			}
			return 0
		}
		n := len(x)
		xn := make([][]float64, n)
		for i := range x {
			xn[i] = ln(x[i], L.Norm1W, L.Norm1B)
		}
		proj := func(tok []float64, wm []float32, b []float32, mask []bool, col int) float64 {
			s := f(b[col])
			for i := range d {
				s += tok[i] * f(wm[i*d+col]) * on(mask, i, col)
			}
			return s
		}
		o := make([][]float64, n)
		for i := range o {
			o[i] = make([]float64, d)
		}
		scores := make([]float64, n)
		heads := 0
		for h := range cfg.Heads {
			if p != nil && p.Layers != nil && !m.HeadKept(cfg, p.Block, h) {
				continue
			}
			heads++
			q, k, v := make([][]float64, n), make([][]float64, n), make([][]float64, n)
			for i := range n {
				q[i], k[i], v[i] = make([]float64, hd), make([]float64, hd), make([]float64, hd)
				for j := range hd {
					q[i][j] = proj(xn[i], L.QW, L.QB, m.Q, h*hd+j)
					k[i][j] = proj(xn[i], L.KW, L.KB, m.K, h*hd+j)
					v[i][j] = proj(xn[i], L.VW, L.VB, m.V, h*hd+j)
				}
			}
			for i := range n {
				a := make([]float64, n)
				mx := math.Inf(-1)
				for j := range n {
					for e := range hd {
						a[j] += q[i][e] * k[j][e]
					}
					a[j] /= math.Sqrt(float64(hd))
					mx = max(mx, a[j])
				}
				var sum float64
				for j := range a {
					a[j] = math.Exp(a[j] - mx)
					sum += a[j]
				}
				for j := range a {
					a[j] /= sum
					if i == 0 {
						scores[j] += a[j]
					}
					for e := range hd {
						o[i][h*hd+e] += a[j] * v[j][e]
					}
				}
			}
		}
		for i := range n {
			for c := range d {
				s := f(L.ProjB[c])
				for r := range d {
					s += o[i][r] * f(L.ProjW[r*d+c]) * on(m.Proj, r, c)
				}
				x[i][c] += s
			}
		}
		if p != nil && p.Keep < 1 && slices.Contains(p.TDLayers, l) && KeptTokens(n, p.Keep) < n-1 {
			for j := range scores {
				scores[j] /= float64(heads)
			}
			order := make([]int, n-1)
			for j := range order {
				order[j] = j + 1
			}
			slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(scores[b], scores[a]) })
			nk := KeptTokens(n, p.Keep)
			minGap = min(minGap, scores[order[nk-1]]-scores[order[nk]])
			kept[l] = order[:nk]
			next := [][]float64{x[0]}
			fused := make([]float64, d)
			for _, j := range order[:nk] {
				next = append(next, x[j])
			}
			for _, j := range order[nk:] {
				for c := range d {
					fused[c] += scores[j] * x[j][c]
				}
			}
			x = append(next, fused)
		}
		for i := range x {
			tok := ln(x[i], L.Norm2W, L.Norm2B)
			out := make([]float64, d)
			for c := range d {
				out[c] = f(L.FC2B[c])
			}
			for j := range cfg.MLPHidden {
				if m.Neurons != nil && !m.Neurons[j] {
					continue
				}
				hsum := f(L.FC1B[j])
				for c := range d {
					hsum += tok[c] * f(L.FC1W[c*cfg.MLPHidden+j])
				}
				g := 0.5 * hsum * (1 + math.Erf(hsum/math.Sqrt2))
				for c := range d {
					out[c] += g * f(L.FC2W[j*d+c])
				}
			}
			for c := range d {
				x[i][c] += out[c]
			}
		}
	}
	cls := ln(x[0], w.NormW, w.NormB)
	logits := make([]float64, cfg.NumClasses)
	for c := range logits {
		logits[c] = f(w.HeadB[c])
		for i := range d {
			logits[c] += cls[i] * f(w.HeadW[i*cfg.NumClasses+c])
		}
	}
	return logits, kept, minGap
}

func TestForwardMatchesFloat64Reference(t *testing.T) {
	cfg := mustPreset(t, "mnist-tiny")
	w := sharpWeights(cfg, 7)
	img := randomImage(cfg, 3)
	tests := []struct {
		name string
		p    *Pruning
	}{
		{"dense", nil},
		{"token dropping k=0.7", &Pruning{Keep: 0.7, TDLayers: []int{1, 2}}},
		{"block and neuron masks", randomPruning(cfg, 16, 1, nil, 5)},
		{"masks and token dropping k=0.5", randomPruning(cfg, 16, 0.5, []int{1, 3}, 6)},
		{"8x8 blocks, k=0.7 in every layer", randomPruning(cfg, 8, 0.7, []int{0, 1, 2, 3}, 8)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, info, err := w.Forward(img, tt.p)
			require.NoError(t, err)
			want, kept, gap := refForward(w, tt.p, img)
			require.Greater(t, gap, 1e-5, "scores too close for a float32 top-k to agree")
			var scale, diff float64
			for i := range want {
				scale = max(scale, math.Abs(want[i]))
				diff = max(diff, math.Abs(want[i]-float64(got[i])))
			}
			assert.Less(t, diff/scale, 1e-5, "max |logit difference| relative to the largest logit")
			for l, li := range info.Layers {
				assert.Equal(t, kept[l], li.Kept, "layer %d kept tokens", l)
			}
			if tt.p != nil && tt.p.Layers != nil {
				assert.Equal(t, []int{0, 2, 3}, info.Layers[1].Heads, "head 1 of layer 1 is removed")
			}
		})
	}
}

func TestPrunedDensityOneIsBitIdentical(t *testing.T) {
	for _, name := range []string{"mnist-tiny", "deit-small"} {
		t.Run(name, func(t *testing.T) {
			cfg := mustPreset(t, name)
			w := RandomWeights(cfg, 11)
			img := randomImage(cfg, 12)
			dense, _, err := w.Forward(img, nil)
			require.NoError(t, err)
			nb := cfg.Dim / 16
			all := func(n int) []bool {
				m := make([]bool, n)
				for i := range m {
					m[i] = true
				}
				return m
			}
			p := &Pruning{Block: 16, Keep: 1, TDLayers: []int{0, 2}, Layers: make([]LayerMask, cfg.Depth)}
			for l := range p.Layers {
				p.Layers[l] = LayerMask{Q: all(nb * nb), K: all(nb * nb), V: all(nb * nb), Proj: all(nb * nb), Neurons: all(cfg.MLPHidden)}
			}
			pruned, info, err := w.Forward(img, p)
			require.NoError(t, err)
			require.Len(t, pruned, len(dense))
			for i := range dense {
				require.Equal(t, math.Float32bits(dense[i]), math.Float32bits(pruned[i]), "logit %d: %v vs %v", i, dense[i], pruned[i])
			}
			for _, li := range info.Layers {
				assert.Equal(t, cfg.Tokens(), li.TokensOut)
			}
		})
	}
}

// TestForwardWorkersAgree checks that the logits and what the layers did
// are the same bits on any number of workers: the products split by
// columns and the heads split over workers compute every value alike.
func TestForwardWorkersAgree(t *testing.T) {
	for _, name := range []string{"mnist-tiny", "deit-small"} {
		t.Run(name, func(t *testing.T) {
			cfg := mustPreset(t, name)
			w := RandomWeights(cfg, 21)
			img := randomImage(cfg, 22)
			for _, p := range []*Pruning{nil, randomPruning(cfg, 16, 0.7, []int{1, 2}, 23)} {
				c, err := w.Compact(p)
				require.NoError(t, err)
				var first []float32
				var firstInfo *ForwardInfo
				for _, workers := range []int{1, 2, 3, 7} {
					c.Workers = workers
					logits, info, err := c.Forward(img)
					require.NoError(t, err)
					if first == nil {
						first, firstInfo = logits, info
						continue
					}
					require.Equal(t, first, logits, "workers=%d", workers)
					require.Equal(t, firstInfo, info, "workers=%d", workers)
				}
			}
		})
	}
}

// TestForwardBatchMatchesForward checks that a batch gives each image the
// same bits, logits and info, as Forward gives it alone.
func TestForwardBatchMatchesForward(t *testing.T) {
	for _, name := range []string{"mnist-tiny", "deit-small"} {
		t.Run(name, func(t *testing.T) {
			cfg := mustPreset(t, name)
			w := RandomWeights(cfg, 31)
			imgs := [][]float32{randomImage(cfg, 32), randomImage(cfg, 33), randomImage(cfg, 34)}
			for _, p := range []*Pruning{nil, randomPruning(cfg, 16, 0.6, []int{0, 2}, 35)} {
				c, err := w.Compact(p)
				require.NoError(t, err)
				logits, infos, err := c.ForwardBatch(imgs)
				require.NoError(t, err)
				require.Len(t, logits, len(imgs))
				for i, img := range imgs {
					want, info, err := c.Forward(img)
					require.NoError(t, err)
					require.Equal(t, want, logits[i], "image %d", i)
					require.Equal(t, info, infos[i], "image %d", i)
				}
				if p != nil {
					assert.Less(t, infos[0].Layers[2].TokensOut, cfg.Tokens(), "tokens were dropped")
				}
			}
		})
	}
}

func TestForwardBatchBadInput(t *testing.T) {
	cfg := mustPreset(t, "mnist-tiny")
	c, err := RandomWeights(cfg, 1).Compact(nil)
	require.NoError(t, err)
	logits, infos, err := c.ForwardBatch(nil)
	require.NoError(t, err)
	assert.Nil(t, logits)
	assert.Nil(t, infos)
	_, _, err = c.ForwardBatch([][]float32{randomImage(cfg, 1), make([]float32, 5)})
	require.EqualError(t, err, "forward mnist-tiny: image 1 has 5 values, want 784 (1×28×28)")
}

func TestTokenCountsThroughDropLayers(t *testing.T) {
	cfg := mustPreset(t, "deit-small")
	w := RandomWeights(cfg, 21)
	img := randomImage(cfg, 22)
	for _, tt := range []struct {
		keep float64
		want []int // after layers 2, 6, 9
	}{{0.7, []int{140, 100, 72}}, {0.5, []int{101, 52, 28}}} {
		td := []int{2, 6, 9}
		n := 198
		for i, l := range td {
			n = TokensAfterDrop(n, tt.keep)
			assert.Equal(t, tt.want[i], n, "TokensAfterDrop, keep %v, layer %d", tt.keep, l)
		}
		_, info, err := w.Forward(img, &Pruning{Keep: tt.keep, TDLayers: td})
		require.NoError(t, err)
		n = 198
		for l, li := range info.Layers {
			require.Equal(t, n, li.TokensIn, "keep %v layer %d", tt.keep, l)
			if i := slices.Index(td, l); i >= 0 {
				assert.Equal(t, tt.want[i], li.TokensOut, "keep %v layer %d", tt.keep, l)
				assert.Len(t, li.Kept, li.TokensOut-2)
			} else {
				assert.Equal(t, n, li.TokensOut)
			}
			n = li.TokensOut
		}
	}
}

func TestDropTokens(t *testing.T) {
	// 5 tokens of width 2: CLS and four others scored 0.1, 0.4, 0.1, 0.3.
	x := []float32{9, 9, 1, 1, 2, 2, 3, 3, 4, 4}
	scores := []float32{0.1, 0.4, 0.1, 0.3}
	out, kept := DropTokens(x, 5, 2, scores, 0.5) // keep ceil(0.5*4) = 2
	assert.Equal(t, []int{2, 4}, kept)
	// fused = 0.1*[1,1] + 0.1*[3,3]
	assert.InDeltaSlice(t, []float32{9, 9, 2, 2, 4, 4, 0.4, 0.4}, out, 1e-6)

	// Ties go to the lower index.
	out, kept = DropTokens(x, 5, 2, []float32{0.2, 0.2, 0.2, 0.2}, 0.25)
	assert.Equal(t, []int{1}, kept)
	assert.InDeltaSlice(t, []float32{9, 9, 1, 1, 1.8, 1.8}, out, 1e-6)

	// Nothing to drop: the sequence is unchanged.
	out, kept = DropTokens(x, 5, 2, scores, 0.9)
	assert.Nil(t, kept)
	assert.Equal(t, x, out)
}

func TestPruningValidate(t *testing.T) {
	cfg := mustPreset(t, "mnist-tiny")
	full := randomPruning(cfg, 16, 0.7, []int{1}, 1)
	allHeadsGone := randomPruning(cfg, 16, 0.7, []int{2}, 1)
	for i := range allHeadsGone.Layers[2].Q {
		allHeadsGone.Layers[2].Q[i], allHeadsGone.Layers[2].K[i], allHeadsGone.Layers[2].V[i], allHeadsGone.Layers[2].Proj[i] = false, false, false, false
	}
	tests := []struct {
		name, want string
		p          *Pruning
	}{
		{"nil is dense", "", nil},
		{"valid", "", full},
		{"zero keep", "keep rate 0 not in (0, 1]", &Pruning{}},
		{"NaN keep", "keep rate NaN", &Pruning{Keep: math.NaN()}},
		{"keep above 1", "keep rate 1.5", &Pruning{Keep: 1.5}},
		{"TD layer out of range", "token-dropping layer 4 outside 0..3", &Pruning{Keep: 0.5, TDLayers: []int{4}}},
		{"TD layer twice", "listed twice", &Pruning{Keep: 0.5, TDLayers: []int{1, 1}}},
		{"layer count", "3 layer masks for 4 layers", &Pruning{Keep: 1, Block: 16, Layers: make([]LayerMask, 3)}},
		{"block does not divide", "block 12 does not divide", &Pruning{Keep: 1, Block: 12, Layers: make([]LayerMask, 4)}},
		{"block larger than head", "block 32 does not divide", &Pruning{Keep: 1, Block: 32, Layers: make([]LayerMask, 4)}},
		{"mask length", "layer 0: K mask has 3 blocks, want 4×4", &Pruning{Keep: 1, Block: 16, Layers: []LayerMask{{K: make([]bool, 3)}, {}, {}, {}}}},
		{"neuron mask length", "layer 3: neuron mask has 5 entries, want 256", &Pruning{Keep: 1, Block: 16, Layers: []LayerMask{{}, {}, {}, {Neurons: make([]bool, 5)}}}},
		{"TD layer without heads", "layer 2 drops tokens but all its heads are pruned", allHeadsGone},
		// A keep rate that passes (0, 1] but keeps no token: the simulator's
		// token dropping module has no top-0, so it is rejected here for all.
		{"keep keeps no token", "keep rate 1e-11 keeps none of the 49 tokens after CLS entering token-dropping layer 1 (keep*49 = 4.9e-10 rounds to 0); a keep rate of 0.0204 or more keeps at least one",
			&Pruning{Keep: 1e-11, TDLayers: []int{1}}},
		{"keep keeps no token, masks too", "keep rate 1e-11 keeps none", &Pruning{Keep: 1e-11, TDLayers: []int{3}, Block: 16, Layers: make([]LayerMask, 4)}},
		{"smallest keep keeps one token", "", &Pruning{Keep: 1.0 / 49, TDLayers: []int{0, 1, 2, 3}}},
		{"tiny keep without TD layers", "", &Pruning{Keep: 1e-11}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.p.Validate(cfg)
			if tt.want == "" {
				assert.NoError(t, err)
				return
			}
			assert.ErrorContains(t, err, tt.want)
		})
	}
}

func TestForwardBadInput(t *testing.T) {
	cfg := mustPreset(t, "mnist-tiny")
	w := RandomWeights(cfg, 1)
	_, _, err := w.Forward(make([]float32, 10), nil)
	assert.ErrorContains(t, err, "image has 10 values, want 784")
	_, _, err = w.Forward(make([]float32, 784), &Pruning{Keep: 2})
	assert.ErrorContains(t, err, "keep rate 2")
	w.Layers[2].FC1B = w.Layers[2].FC1B[:3]
	_, _, err = w.Forward(make([]float32, 784), nil)
	assert.ErrorContains(t, err, "tensor layers.2.fc1.bias has 3 values, want 256")
	w = RandomWeights(cfg, 1)
	w.Layers[1].VW[5] = float32(math.NaN())
	_, _, err = w.Forward(make([]float32, 784), nil)
	assert.ErrorContains(t, err, "tensor layers.1.v.weight: NaN at index 5")
}

// TestForwardNonFiniteActivations: finite weights so large that the
// activations overflow float32 fail with the stage where they first do,
// instead of NaN logits that argmax reads as class 0.
func TestForwardNonFiniteActivations(t *testing.T) {
	cfg := mustPreset(t, "mnist-tiny")
	img := randomImage(cfg, 3)
	tests := []struct {
		name  string
		spoil func(w *Weights)
		img   func([]float32)
		want  string
	}{
		{"every weight huge", func(w *Weights) {
			for _, t := range w.tensors() {
				fill(*t.data, 1e30)
			}
		}, nil,
			"forward mnist-tiny: layer 0 attention: activations are not finite"},
		{"huge patch weight rows", func(w *Weights) { hugeRows(w.PatchW, cfg.Dim) }, nil,
			"forward mnist-tiny: patch embedding: activations are not finite"},
		{"huge Q and K weights in layer 2", func(w *Weights) { fill(w.Layers[2].QW, 1e30); fill(w.Layers[2].KW, 1e30) }, nil,
			"forward mnist-tiny: layer 2 attention: activations are not finite"},
		{"huge FC1 rows in layer 1", func(w *Weights) { hugeRows(w.Layers[1].FC1W, cfg.MLPHidden) }, nil,
			"forward mnist-tiny: layer 1 MLP: activations are not finite"},
		{"huge classifier", func(w *Weights) { fill(w.HeadW, 1e38); fill(w.HeadB, 3e38) }, nil,
			"forward mnist-tiny: classifier: activations are not finite"},
		{"infinite pixel", nil, func(px []float32) { px[7] = float32(math.Inf(1)) },
			"forward mnist-tiny: patch embedding: activations are not finite"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := RandomWeights(cfg, 1)
			if tt.spoil != nil {
				tt.spoil(w)
			}
			px := slices.Clone(img)
			if tt.img != nil {
				tt.img(px)
			}
			for _, p := range []*Pruning{nil, {Keep: 0.5, TDLayers: []int{0, 1, 2}}} {
				logits, _, err := w.Forward(px, p)
				assert.Nil(t, logits)
				assert.ErrorContains(t, err, tt.want)
			}
		})
	}
}

// hugeRows sets every other row of the row-major matrix v (cols wide) to
// 3e38, finite: its products with any input that is not zero overflow.
// (Uniform columns would not: LayerNorm's output sums to about zero.)
func hugeRows(v []float32, cols int) {
	for i := range v {
		if i/cols%2 == 0 {
			v[i] = 3e38
		}
	}
}

func fill(v []float32, x float32) {
	for i := range v {
		v[i] = x
	}
}

func TestCountMACs(t *testing.T) {
	cfg := mustPreset(t, "deit-small")
	dense, err := CountMACs(cfg, nil)
	require.NoError(t, err)
	// Patch embedding 196·768·384, classifier 384·1000, per layer 198·384·(4·384 + 2·1536).
	assert.Equal(t, int64(196*768*384+384*1000+12*198*384*(4*384+2*1536)), dense.Linear)
	assert.Equal(t, int64(12*2*6*198*198*64), dense.Attention)

	// k=0.5 in {2,6,9}: 198 tokens into layers 0-2, 101 after the drop in 2, and so on.
	p := &Pruning{Keep: 0.5, TDLayers: []int{2, 6, 9}}
	got, err := CountMACs(cfg, p)
	require.NoError(t, err)
	in := []int{198, 198, 198, 101, 101, 101, 101, 52, 52, 52, 28, 28}
	out := []int{198, 198, 101, 101, 101, 101, 52, 52, 52, 28, 28, 28}
	want := MACs{Linear: 196*768*384 + 384*1000}
	for l := range 12 {
		want.Linear += int64(in[l]*384*4*384 + out[l]*384*2*1536)
		want.Attention += int64(2 * 6 * in[l] * in[l] * 64)
	}
	assert.Equal(t, want, got)

	// Half the neurons and head 1 of layer 1 removed (mnist-tiny, so the masks are small).
	small := mustPreset(t, "mnist-tiny")
	pm := randomPruning(small, 16, 1, nil, 3)
	c, err := RandomWeights(small, 1).Compact(pm)
	require.NoError(t, err)
	got, err = CountMACs(small, pm)
	require.NoError(t, err)
	want = MACs{Linear: 49*16*64 + 64*10}
	for _, L := range c.Layers {
		w := int64(len(L.Heads) * 16)
		want.Linear += 50*64*w*4 + 50*64*int64(len(L.Neurons))*2
		want.Attention += 2 * 50 * 50 * w
	}
	assert.Equal(t, want, got)
	params, err := CountParams(small, pm)
	require.NoError(t, err)
	dparams, err := CountParams(small, nil)
	require.NoError(t, err)
	assert.Less(t, params, dparams)
	_, err = CountMACs(small, &Pruning{Keep: 0})
	assert.Error(t, err)
}

func TestCountParamsDense(t *testing.T) {
	// timm's deit_small_distilled_patch16_224 has 22,436,432 parameters, of
	// which head_dist (384·1000 + 1000) is not part of our model.
	n, err := CountParams(mustPreset(t, "deit-small"), nil)
	require.NoError(t, err)
	assert.Equal(t, int64(22436432-385000), n)
	cfg := mustPreset(t, "deit-small")
	w := &Weights{Config: cfg, Layers: make([]Layer, cfg.Depth)}
	var stored int64
	for _, p := range w.tensors() {
		stored += int64(p.size())
	}
	assert.Equal(t, stored, n)
}

func TestCompact(t *testing.T) {
	cfg := mustPreset(t, "mnist-tiny")
	w := RandomWeights(cfg, 4)
	for _, block := range []int{8, 16} {
		p := randomPruning(cfg, block, 1, nil, uint64(block))
		c, err := w.Compact(p)
		require.NoError(t, err)
		d, hd, nb := cfg.Dim, cfg.HeadDim(), cfg.Dim/block
		for l, L := range c.Layers {
			m, src := p.Layers[l], w.Layers[l]
			wk := hd * len(L.Heads)
			kb := wk / block
			for h := range cfg.Heads {
				assert.Equal(t, m.HeadKept(cfg, block, h), slices.Contains(L.Heads, h), "layer %d head %d", l, h)
			}
			for _, mat := range []struct {
				name     string
				got, src []float32
				mask     []bool
				gotMask  []bool
			}{{"Q", L.QW, src.QW, m.Q, L.QMask}, {"K", L.KW, src.KW, m.K, L.KMask}, {"V", L.VW, src.VW, m.V, L.VMask}} {
				require.Len(t, mat.got, d*wk)
				require.Len(t, mat.gotMask, nb*kb)
				for i := range d {
					for j := range wk {
						col := L.Heads[j/hd]*hd + j%hd
						kept := mat.mask[(i/block)*nb+col/block]
						require.Equal(t, kept, mat.gotMask[(i/block)*kb+j/block], "%s mask layer %d", mat.name, l)
						want := float32(0)
						if kept {
							want = mat.src[i*d+col]
						}
						require.Equal(t, want, mat.got[i*wk+j], "%s layer %d (%d,%d)", mat.name, l, i, j)
					}
				}
			}
			require.Len(t, L.ProjW, wk*d)
			for j := range wk {
				row := L.Heads[j/hd]*hd + j%hd
				for i := range d {
					kept := m.Proj[(row/block)*nb+i/block]
					require.Equal(t, kept, L.ProjMask[(j/block)*nb+i/block])
					want := float32(0)
					if kept {
						want = src.ProjW[row*d+i]
					}
					require.Equal(t, want, L.ProjW[j*d+i])
				}
			}
			for j, h := range L.Heads {
				assert.Equal(t, src.QB[h*hd:(h+1)*hd], L.QB[j*hd:(j+1)*hd])
				assert.Equal(t, src.VB[h*hd:(h+1)*hd], L.VB[j*hd:(j+1)*hd])
			}
			kn := len(L.Neurons)
			for j, n := range L.Neurons {
				require.True(t, m.Neurons[n])
				assert.Equal(t, src.FC1B[n], L.FC1B[j])
				assert.Equal(t, src.FC2W[n*d:(n+1)*d], L.FC2W[j*d:(j+1)*d])
				for i := range d {
					require.Equal(t, src.FC1W[i*cfg.MLPHidden+n], L.FC1W[i*kn+j])
				}
			}
			trues := 0
			for _, k := range m.Neurons {
				if k {
					trues++
				}
			}
			assert.Equal(t, trues, kn, "every kept neuron, ascending")
			assert.True(t, slices.IsSorted(L.Neurons))
		}
	}
}

// TestKeptShapes: what the shapes alone say a pruned model keeps is what
// the weights say, less the biases and norms, which only the weights have.
func TestKeptShapes(t *testing.T) {
	cfg := mustPreset(t, "mnist-tiny")
	w := RandomWeights(cfg, 4)
	for _, p := range []*Pruning{nil, randomPruning(cfg, 16, 0.7, []int{1}, 3), randomPruning(cfg, 8, 1, nil, 8)} {
		want, err := w.Kept(p)
		require.NoError(t, err)
		got, err := KeptShapes(cfg, p)
		require.NoError(t, err)
		assert.Nil(t, got.Weights)
		assert.Equal(t, want.Config, got.Config)
		assert.Equal(t, want.Pruning, got.Pruning)
		require.Len(t, got.Layers, len(want.Layers))
		for l, k := range want.Layers {
			shape := KeptLayer{Heads: k.Heads, Cols: k.Cols, QMask: k.QMask, KMask: k.KMask, VMask: k.VMask,
				ProjMask: k.ProjMask, Neurons: k.Neurons, Drop: k.Drop}
			assert.Equal(t, shape, got.Layers[l], "layer %d", l)
		}
	}
	_, err := KeptShapes(Config{Name: "bad"}, nil)
	assert.ErrorContains(t, err, "model bad")
	_, err = KeptShapes(cfg, &Pruning{Keep: 2})
	assert.ErrorContains(t, err, "keep rate")
}
