// Package vit describes Vision Transformer models: configurations and presets,
// weights and their safetensors I/O, image preprocessing, and the reference
// (golden) forward pass, dense and pruned, that simulated runs must match.
package vit

import (
	"fmt"
	"math"
	"slices"
	"strings"
)

// Config is the shape of a ViT (pre-LN encoder, exact GELU, qkv with bias,
// classifier on the final-LayerNorm CLS token only).
type Config struct {
	Name       string
	ImageSize  int // input is ImageSize×ImageSize
	PatchSize  int
	InChans    int
	Dim        int // embedding dimension D
	Depth      int // encoder layers
	Heads      int
	MLPHidden  int
	NumClasses int
	DistToken  bool // DeiT distilled layout: a DIST token after CLS, treated as an ordinary token
	LNEps      float32
	Mean, Std  []float32 // per-channel input normalisation
}

// HeadDim is the width of one attention head.
func (c Config) HeadDim() int { return c.Dim / c.Heads }

// Patches is the number of patch tokens.
func (c Config) Patches() int { n := c.ImageSize / c.PatchSize; return n * n }

// Tokens is the sequence length entering the first layer (patches, CLS, and DIST if any).
func (c Config) Tokens() int {
	if c.DistToken {
		return c.Patches() + 2
	}
	return c.Patches() + 1
}

// PatchLen is the length of one flattened patch (channel, row, column order).
func (c Config) PatchLen() int { return c.InChans * c.PatchSize * c.PatchSize }

var imagenetMean = []float32{0.485, 0.456, 0.406}
var imagenetStd = []float32{0.229, 0.224, 0.225}

func deit(name string, dim, heads int) Config {
	return Config{Name: name, ImageSize: 224, PatchSize: 16, InChans: 3, Dim: dim, Depth: 12,
		Heads: heads, MLPHidden: 4 * dim, NumClasses: 1000, DistToken: true, LNEps: 1e-6,
		Mean: imagenetMean, Std: imagenetStd}
}

var presets = []Config{
	// mnist-tiny: 49 patches of 4×4 plus CLS; 16×16 blocks tile every linear layer and each head.
	{Name: "mnist-tiny", ImageSize: 28, PatchSize: 4, InChans: 1, Dim: 64, Depth: 4, Heads: 4,
		MLPHidden: 256, NumClasses: 10, LNEps: 1e-6, Mean: []float32{0.1307}, Std: []float32{0.3081}},
	deit("deit-tiny", 192, 3),
	deit("deit-small", 384, 6),
	deit("deit-base", 768, 12),
}

// PresetNames lists the built-in model presets.
func PresetNames() []string {
	names := make([]string, len(presets))
	for i, p := range presets {
		names[i] = p.Name
	}
	return names
}

// Preset returns the built-in configuration called name.
func Preset(name string) (Config, error) {
	for _, p := range presets {
		if p.Name == name {
			p.Mean, p.Std = slices.Clone(p.Mean), slices.Clone(p.Std)
			return p, nil
		}
	}
	return Config{}, fmt.Errorf("unknown model %q (have %s)", name, strings.Join(PresetNames(), ", "))
}

// Validate reports the first inconsistency in c.
func (c Config) Validate() error {
	switch {
	case c.ImageSize <= 0 || c.PatchSize <= 0 || c.ImageSize%c.PatchSize != 0:
		return fmt.Errorf("model %s: patch size %d does not tile image size %d", c.Name, c.PatchSize, c.ImageSize)
	case c.InChans <= 0 || len(c.Mean) != c.InChans || len(c.Std) != c.InChans:
		return fmt.Errorf("model %s: %d channels need as many mean/std values", c.Name, c.InChans)
	case c.Dim <= 0 || c.Heads <= 0 || c.Dim%c.Heads != 0:
		return fmt.Errorf("model %s: %d heads do not divide dim %d", c.Name, c.Heads, c.Dim)
	case c.Depth <= 0 || c.MLPHidden <= 0 || c.NumClasses <= 0:
		return fmt.Errorf("model %s: depth, MLP width and classes must be positive", c.Name)
	}
	return nil
}

// KeptTokens is the number of patch tokens a token-dropping layer keeps out of
// n tokens (CLS included): ceil(keep*(n-1)). The small slack stops float error
// (0.7*130 = 91.00000000000001) from adding a token.
func KeptTokens(n int, keep float64) int {
	return min(n-1, int(math.Ceil(keep*float64(n-1)-1e-9)))
}

// TokensAfterDrop is the sequence length after a token-dropping layer:
// CLS, the kept tokens, and one fused token; n if nothing would be dropped.
func TokensAfterDrop(n int, keep float64) int {
	kept := KeptTokens(n, keep)
	if kept >= n-1 {
		return n
	}
	return kept + 2
}
