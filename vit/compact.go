package vit

import (
	"fmt"
	"math"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"vitflow/kernels"
)

// Validate reports the first inconsistency of p with cfg. A nil p is the dense model.
func (p *Pruning) Validate(cfg Config) error {
	if p == nil {
		return nil
	}
	if !(p.Keep > 0 && p.Keep <= 1) {
		return fmt.Errorf("pruning: keep rate %v not in (0, 1]", p.Keep)
	}
	seen := make(map[int]bool, len(p.TDLayers))
	for _, l := range p.TDLayers {
		if l < 0 || l >= cfg.Depth {
			return fmt.Errorf("pruning: token-dropping layer %d outside 0..%d", l, cfg.Depth-1)
		}
		if seen[l] {
			return fmt.Errorf("pruning: token-dropping layer %d listed twice", l)
		}
		seen[l] = true
	}
	if err := p.checkKeptTokens(cfg); err != nil {
		return err
	}
	if p.Layers == nil {
		return nil
	}
	if len(p.Layers) != cfg.Depth {
		return fmt.Errorf("pruning: %d layer masks for %d layers", len(p.Layers), cfg.Depth)
	}
	if p.Block <= 0 || cfg.Dim%p.Block != 0 || cfg.HeadDim()%p.Block != 0 {
		return fmt.Errorf("pruning: block %d does not divide dim %d and head dim %d", p.Block, cfg.Dim, cfg.HeadDim())
	}
	nb := cfg.Dim / p.Block
	for i, m := range p.Layers {
		for _, mask := range []struct {
			name string
			m    []bool
		}{{"Q", m.Q}, {"K", m.K}, {"V", m.V}, {"Proj", m.Proj}} {
			if mask.m != nil && len(mask.m) != nb*nb {
				return fmt.Errorf("pruning: layer %d: %s mask has %d blocks, want %d×%d", i, mask.name, len(mask.m), nb, nb)
			}
		}
		if m.Neurons != nil && len(m.Neurons) != cfg.MLPHidden {
			return fmt.Errorf("pruning: layer %d: neuron mask has %d entries, want %d", i, len(m.Neurons), cfg.MLPHidden)
		}
		if p.Keep < 1 && seen[i] && len(keptHeads(cfg, p, i)) == 0 {
			return fmt.Errorf("pruning: layer %d drops tokens but all its heads are pruned", i)
		}
	}
	return nil
}

// checkKeptTokens follows the sequence through the layers and rejects a keep
// rate so small that a token-dropping layer would keep no patch token
// (KeptTokens 0): the reference would fuse every token into one, and the
// accelerator's token dropping module has no top-k of size 0. Every user of
// a pruning (reference, simulator, one-shot pruning) validates through here.
func (p *Pruning) checkKeptTokens(cfg Config) error {
	if p.Keep >= 1 || len(p.TDLayers) == 0 {
		return nil
	}
	n := cfg.Tokens()
	for l := range cfg.Depth {
		if !slices.Contains(p.TDLayers, l) {
			continue
		}
		if KeptTokens(n, p.Keep) < 1 {
			return fmt.Errorf("pruning: keep rate %v keeps none of the %d tokens after CLS entering token-dropping layer %d (keep*%d = %.3g rounds to 0); a keep rate of %.3g or more keeps at least one",
				p.Keep, n-1, l, n-1, p.Keep*float64(n-1), 1/float64(n-1))
		}
		n = TokensAfterDrop(n, p.Keep)
	}
	return nil
}

// dropsTokens reports whether layer l of a model pruned by p drops tokens.
func (p *Pruning) dropsTokens(l int) bool {
	return p != nil && p.Keep < 1 && slices.Contains(p.TDLayers, l)
}

func (p *Pruning) layerMask(l int) LayerMask {
	if p == nil || p.Layers == nil {
		return LayerMask{}
	}
	return p.Layers[l]
}

func keptHeads(cfg Config, p *Pruning, l int) []int {
	m := p.layerMask(l)
	var heads []int
	for h := range cfg.Heads {
		if p == nil || p.Layers == nil || m.HeadKept(cfg, p.Block, h) {
			heads = append(heads, h)
		}
	}
	return heads
}

// Compacted is a model with its static pruning applied, in the form both the
// reference forward pass and the simulated accelerator compute with: removed
// heads and neurons are cut out of the matrices, pruned blocks inside kept
// heads are zeroed (their masks say which). Slices may share memory with the
// Weights they came from: treat them as read-only. Forward may be called
// from several goroutines at once.
type Compacted struct {
	Weights *Weights // the dense weights: embeddings, final norm and classifier are used as they are
	// Pruning is the validated pruning (never nil: the dense model has Keep 1).
	Pruning *Pruning
	Layers  []CompactLayer
	// Workers is the goroutine count of large matrix products (< 1: GOMAXPROCS).
	// Results do not depend on it.
	Workers int
}

// CompactLayer is one encoder layer after static pruning. With W = HeadDim*len(Heads):
type CompactLayer struct {
	Heads          []int     // kept heads, ascending
	QW, KW, VW     []float32 // [Dim × W]: the kept heads' columns, pruned blocks zeroed
	QB, KB, VB     []float32 // [W]
	ProjW          []float32 // [W × Dim]: the kept heads' rows, pruned blocks zeroed
	ProjB          []float32 // [Dim]
	QMask, KMask   []bool    // (Dim/Block) × (W/Block) block masks, true = kept; nil = all kept
	VMask          []bool
	ProjMask       []bool    // (W/Block) × (Dim/Block)
	Neurons        []int     // kept MLP neurons, ascending
	FC1W           []float32 // [Dim × len(Neurons)]
	FC1B           []float32 // [len(Neurons)]
	FC2W           []float32 // [len(Neurons) × Dim]
	FC2B           []float32 // [Dim]
	Norm1W, Norm1B []float32 // [Dim]
	Norm2W, Norm2B []float32 // [Dim]
	Drop           bool      // the layer drops tokens (Pruning.Keep < 1 and a TD layer)
}

// Compact applies p (nil = dense) to w. The dense parts are shared with w, not copied.
func (w *Weights) Compact(p *Pruning) (*Compacted, error) {
	cfg := w.Config
	if err := w.Validate(); err != nil {
		return nil, err
	}
	if p == nil {
		p = &Pruning{Keep: 1}
	}
	if err := p.Validate(cfg); err != nil {
		return nil, err
	}
	c := &Compacted{Weights: w, Pruning: p, Layers: make([]CompactLayer, cfg.Depth)}
	// Layers are independent: compact them on every core.
	forEach(len(w.Layers), func(l int) { c.Layers[l] = compactLayer(cfg, &w.Layers[l], p, l) })
	return c, nil
}

func compactLayer(cfg Config, src *Layer, p *Pruning, l int) CompactLayer {
	m := p.layerMask(l)
	heads := keptHeads(cfg, p, l)
	d, hd := cfg.Dim, cfg.HeadDim()
	cols := make([]int, 0, len(heads)*hd) // the kept columns of Q/K/V, rows of Proj
	for _, h := range heads {
		for j := range hd {
			cols = append(cols, h*hd+j)
		}
	}
	allHeads := len(heads) == cfg.Heads
	out := CompactLayer{
		Heads: heads, ProjB: src.ProjB, FC2B: src.FC2B,
		Norm1W: src.Norm1W, Norm1B: src.Norm1B, Norm2W: src.Norm2W, Norm2B: src.Norm2B,
		Drop: p.dropsTokens(l),
	}
	// selectCols keeps the kept heads' columns of a [d × d] matrix and zeroes pruned blocks.
	selectCols := func(w []float32, mask []bool) ([]float32, []bool) {
		if allHeads && allTrue(mask) {
			return w, nil
		}
		// Kept columns come in whole blocks (b divides the head width), so
		// copy a block's row segment at a time.
		wk, b := len(cols), p.Block
		dst := make([]float32, d*wk)
		for i := range d {
			for j := 0; j < wk; j += b {
				c := cols[j]
				if mask == nil || mask[(i/b)*(d/b)+c/b] {
					copy(dst[i*wk+j:i*wk+j+b], w[i*d+c:i*d+c+b])
				}
			}
		}
		return dst, compactMask(mask, p.Block, d, cols, false)
	}
	out.QW, out.QMask = selectCols(src.QW, m.Q)
	out.KW, out.KMask = selectCols(src.KW, m.K)
	out.VW, out.VMask = selectCols(src.VW, m.V)
	out.QB, out.KB, out.VB = pick(src.QB, cols, allHeads), pick(src.KB, cols, allHeads), pick(src.VB, cols, allHeads)
	if allHeads && allTrue(m.Proj) {
		out.ProjW = src.ProjW
	} else {
		out.ProjW = make([]float32, len(cols)*d)
		b := p.Block
		for j, r := range cols {
			for i := 0; i < d; i += b {
				if m.Proj == nil || m.Proj[(r/b)*(d/b)+i/b] {
					copy(out.ProjW[j*d+i:j*d+i+b], src.ProjW[r*d+i:r*d+i+b])
				}
			}
		}
		out.ProjMask = compactMask(m.Proj, p.Block, d, cols, true)
	}

	hidden := cfg.MLPHidden
	for j := range hidden {
		if m.Neurons == nil || m.Neurons[j] {
			out.Neurons = append(out.Neurons, j)
		}
	}
	if len(out.Neurons) == hidden {
		out.FC1W, out.FC1B, out.FC2W = src.FC1W, src.FC1B, src.FC2W
		return out
	}
	kn := len(out.Neurons)
	out.FC1W = make([]float32, d*kn)
	for i := range d {
		for j, n := range out.Neurons {
			out.FC1W[i*kn+j] = src.FC1W[i*hidden+n]
		}
	}
	out.FC1B = pick(src.FC1B, out.Neurons, false)
	out.FC2W = make([]float32, 0, kn*d)
	for _, n := range out.Neurons {
		out.FC2W = append(out.FC2W, src.FC2W[n*d:(n+1)*d]...)
	}
	return out
}

// compactMask restricts a (d/b)×(d/b) block mask to the block-columns (or,
// for rows, the block-rows) that hold the kept columns cols; nil stays nil.
func compactMask(mask []bool, b, d int, cols []int, rows bool) []bool {
	if mask == nil {
		return nil
	}
	nb, kb := d/b, len(cols)/b
	out := make([]bool, nb*kb)
	for k := range kb {
		src := cols[k*b] / b
		for i := range nb {
			if rows {
				out[k*nb+i] = mask[src*nb+i]
			} else {
				out[i*kb+k] = mask[i*nb+src]
			}
		}
	}
	return out
}

func pick(v []float32, idx []int, all bool) []float32 {
	if all {
		return v
	}
	out := make([]float32, len(idx))
	for i, j := range idx {
		out[i] = v[j]
	}
	return out
}

func allTrue(mask []bool) bool {
	return !slices.Contains(mask, false)
}

// Validate checks that every parameter has the length w.Config asks for and is finite.
func (w *Weights) Validate() error {
	cfg := w.Config
	if err := cfg.Validate(); err != nil {
		return err
	}
	if len(w.Layers) != cfg.Depth {
		return fmt.Errorf("weights %s: %d layers, want %d", cfg.Name, len(w.Layers), cfg.Depth)
	}
	tensors := w.tensors()
	for _, t := range tensors {
		if len(*t.data) != t.size() {
			return fmt.Errorf("weights %s: tensor %s has %d values, want %d (shape %v)", cfg.Name, t.name, len(*t.data), t.size(), t.shape)
		}
	}
	// The finite check reads every weight: on every core, the first bad
	// tensor in order reported whatever the timing.
	errs := make([]error, len(tensors))
	forEach(len(tensors), func(i int) { errs[i] = checkFinite(*tensors[i].data) })
	for i, err := range errs {
		if err != nil {
			return fmt.Errorf("weights %s: tensor %s: %w", cfg.Name, tensors[i].name, err)
		}
	}
	return nil
}

// forEach runs f(0..n-1) on every core.
func forEach(n int, f func(i int)) {
	var wg sync.WaitGroup
	var next atomic.Int64
	for range min(runtime.GOMAXPROCS(0), n) {
		wg.Go(func() {
			for i := int(next.Add(1) - 1); i < n; i = int(next.Add(1) - 1) {
				f(i)
			}
		})
	}
	wg.Wait()
}

// checkFinite reports the first NaN or infinity in v and its index.
func checkFinite(v []float32) error {
	switch i := kernels.FirstNonFinite(v); {
	case i < 0:
		return nil
	case math.IsNaN(float64(v[i])):
		return fmt.Errorf("NaN at index %d", i)
	default:
		return fmt.Errorf("infinity at index %d", i)
	}
}
