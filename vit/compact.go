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
	// Workers is the goroutine count of the forward's matrix products and
	// attention heads (< 1: GOMAXPROCS). Results do not depend on it.
	Workers int

	// The layers' weight matrices packed for the GEMM kernels, on the
	// first Forward: the accelerator, which computes with Layers, never pays
	// for them. Forward does not see changes to Layers after its first call.
	packOnce sync.Once
	packed   []packedLayer
}

// CompactLayer is one encoder layer after static pruning: what it keeps,
// and its weight matrices cut to that. With W = HeadDim*len(Heads):
type CompactLayer struct {
	KeptLayer
	QW, KW, VW []float32 // [Dim × W]: the kept heads' columns, pruned blocks zeroed
	ProjW      []float32 // [W × Dim]: the kept heads' rows, pruned blocks zeroed
	FC1W       []float32 // [Dim × len(Neurons)]
	FC2W       []float32 // [len(Neurons) × Dim]
}

// KeptLayer is what static pruning keeps of one encoder layer, in the
// coordinates of the compacted matrices, with everything but the weight
// matrices. With W = HeadDim*len(Heads):
type KeptLayer struct {
	Heads []int // kept heads, ascending
	// Cols are the columns of the dense Q, K and V (rows of Proj) that the
	// kept heads own, ascending; nil when every head is kept.
	Cols           []int
	QB, KB, VB     []float32 // [W]
	ProjB          []float32 // [Dim]
	QMask, KMask   []bool    // (Dim/Block) × (W/Block) block masks, true = kept; nil = all kept
	VMask          []bool
	ProjMask       []bool    // (W/Block) × (Dim/Block)
	Neurons        []int     // kept MLP neurons, ascending
	FC1B           []float32 // [len(Neurons)]
	FC2B           []float32 // [Dim]
	Norm1W, Norm1B []float32 // [Dim]
	Norm2W, Norm2B []float32 // [Dim]
	Drop           bool      // the layer drops tokens (Pruning.Keep < 1 and a TD layer)
}

// Kept is a model's static pruning applied to its shapes only: which heads,
// columns and neurons every layer keeps, without copying a matrix. A packer
// that reads the kept weights straight from Weights (the accelerator's
// build) starts here rather than from Compact.
type Kept struct {
	// Weights are the model's; nil when only the shapes are known
	// (KeptShapes), and then the layers have no biases or norms either.
	Weights *Weights
	Config  Config
	Pruning *Pruning // validated, never nil
	Layers  []KeptLayer
}

// Compact applies p (nil = dense) to w. The dense parts are shared with w, not copied.
func (w *Weights) Compact(p *Pruning) (*Compacted, error) {
	if err := w.Validate(); err != nil {
		return nil, err
	}
	k, err := w.kept(p)
	if err != nil {
		return nil, err
	}
	c := &Compacted{Weights: w, Pruning: k.Pruning, Layers: make([]CompactLayer, len(k.Layers))}
	// Layers are independent: compact them on every core.
	forEach(len(w.Layers), func(l int) {
		c.Layers[l] = compactLayer(w.Config, &w.Layers[l], k.Pruning.layerMask(l), k.Pruning.Block, &k.Layers[l])
	})
	return c, nil
}

// Kept applies p (nil = dense) to w's shapes. It checks w's shapes and the
// values of every tensor but the layers' weight matrices, which are not
// read: a caller that reads them checks the values it uses.
func (w *Weights) Kept(p *Pruning) (*Kept, error) {
	if err := w.validate(false); err != nil {
		return nil, err
	}
	return w.kept(p)
}

func (w *Weights) kept(p *Pruning) (*Kept, error) { return kept(w.Config, w, p) }

// KeptShapes is Kept for a model known by its shape alone: what every
// layer keeps by the masks of p (nil = dense), with no weights, biases or
// norms. It is enough to plan and time the model, not to run it.
func KeptShapes(cfg Config, p *Pruning) (*Kept, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return kept(cfg, nil, p)
}

// kept applies p to cfg's shapes, taking the biases and norms from w
// unless it is nil.
func kept(cfg Config, w *Weights, p *Pruning) (*Kept, error) {
	if p == nil {
		p = &Pruning{Keep: 1}
	}
	if err := p.Validate(cfg); err != nil {
		return nil, err
	}
	k := &Kept{Weights: w, Config: cfg, Pruning: p, Layers: make([]KeptLayer, cfg.Depth)}
	for l := range k.Layers {
		var src *Layer
		if w != nil {
			src = &w.Layers[l]
		}
		k.Layers[l] = keptLayer(cfg, src, p, l)
	}
	return k, nil
}

// keptLayer is what layer l keeps; its biases and norms come from src,
// none when src is nil.
func keptLayer(cfg Config, src *Layer, p *Pruning, l int) KeptLayer {
	m := p.layerMask(l)
	heads := keptHeads(cfg, p, l)
	d, hd := cfg.Dim, cfg.HeadDim()
	out := KeptLayer{Heads: heads, Drop: p.dropsTokens(l)}
	allHeads := len(heads) == cfg.Heads
	cols := make([]int, 0, len(heads)*hd)
	for _, h := range heads {
		for j := range hd {
			cols = append(cols, h*hd+j)
		}
	}
	if !allHeads {
		out.Cols = cols
	}
	mask := func(mask []bool, rows bool) []bool {
		if allTrue(mask) {
			return nil
		}
		return compactMask(mask, p.Block, d, cols, rows)
	}
	out.QMask, out.KMask, out.VMask = mask(m.Q, false), mask(m.K, false), mask(m.V, false)
	out.ProjMask = mask(m.Proj, true)
	for j := range cfg.MLPHidden {
		if m.Neurons == nil || m.Neurons[j] {
			out.Neurons = append(out.Neurons, j)
		}
	}
	if src == nil {
		return out
	}
	out.ProjB, out.FC2B = src.ProjB, src.FC2B
	out.Norm1W, out.Norm1B, out.Norm2W, out.Norm2B = src.Norm1W, src.Norm1B, src.Norm2W, src.Norm2B
	out.QB, out.KB, out.VB = pick(src.QB, cols, allHeads), pick(src.KB, cols, allHeads), pick(src.VB, cols, allHeads)
	out.FC1B = pick(src.FC1B, out.Neurons, len(out.Neurons) == cfg.MLPHidden)
	return out
}

// compactLayer cuts layer src's matrices, masked by m with blocks of side
// block, to what k keeps.
func compactLayer(cfg Config, src *Layer, m LayerMask, block int, k *KeptLayer) CompactLayer {
	d, hidden := cfg.Dim, cfg.MLPHidden
	wk := len(k.Heads) * cfg.HeadDim()
	col := func(j int) int { // column j of the compacted Q/K/V in the dense one
		if k.Cols == nil {
			return j
		}
		return k.Cols[j]
	}
	out := CompactLayer{KeptLayer: *k}
	// selectCols keeps the kept heads' columns of a [d × d] matrix and zeroes pruned blocks.
	selectCols := func(w []float32, mask []bool) []float32 {
		if k.Cols == nil && allTrue(mask) {
			return w
		}
		// Kept columns come in whole blocks (the block divides the head
		// width), so copy a block's row segment at a time.
		dst := make([]float32, d*wk)
		for i := range d {
			for j := 0; j < wk; j += block {
				c := col(j)
				if mask == nil || mask[(i/block)*(d/block)+c/block] {
					copy(dst[i*wk+j:i*wk+j+block], w[i*d+c:i*d+c+block])
				}
			}
		}
		return dst
	}
	out.QW, out.KW, out.VW = selectCols(src.QW, m.Q), selectCols(src.KW, m.K), selectCols(src.VW, m.V)
	if k.Cols == nil && allTrue(m.Proj) {
		out.ProjW = src.ProjW
	} else {
		out.ProjW = make([]float32, wk*d)
		for j := range wk {
			r := col(j)
			for i := 0; i < d; i += block {
				if m.Proj == nil || m.Proj[(r/block)*(d/block)+i/block] {
					copy(out.ProjW[j*d+i:j*d+i+block], src.ProjW[r*d+i:r*d+i+block])
				}
			}
		}
	}
	if len(k.Neurons) == hidden {
		out.FC1W, out.FC2W = src.FC1W, src.FC2W
		return out
	}
	kn := len(k.Neurons)
	out.FC1W = make([]float32, d*kn)
	for i := range d {
		for j, n := range k.Neurons {
			out.FC1W[i*kn+j] = src.FC1W[i*hidden+n]
		}
	}
	out.FC2W = make([]float32, 0, kn*d)
	for _, n := range k.Neurons {
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
func (w *Weights) Validate() error { return w.validate(true) }

// validate checks the shapes of every tensor and the values of all but,
// unless matrices, the layers' weight matrices.
func (w *Weights) validate(matrices bool) error {
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
	forEach(len(tensors), func(i int) {
		if t := tensors[i]; matrices || !t.layerMatrix() {
			errs[i] = checkFinite(*t.data)
		}
	})
	for i, err := range errs {
		if err != nil {
			return fmt.Errorf("weights %s: tensor %s: %w", cfg.Name, tensors[i].name, err) // as NonFinite
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
	if i := kernels.FirstNonFinite(v); i >= 0 {
		return nonFiniteAt(i, v[i])
	}
	return nil
}

func nonFiniteAt(i int, x float32) error {
	if math.IsNaN(float64(x)) {
		return fmt.Errorf("NaN at index %d", i)
	}
	return fmt.Errorf("infinity at index %d", i)
}

// NonFinite is the error for the value x, not finite, at index i of the
// tensor called name (see LayerTensor) of the weights of cfg, worded as
// Validate words it: for a caller that checks the weights it reads.
func NonFinite(cfg Config, name string, i int, x float32) error {
	return fmt.Errorf("weights %s: tensor %s: %w", cfg.Name, name, nonFiniteAt(i, x))
}
