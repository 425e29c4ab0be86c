package vit

import "fmt"

// MACs counts the multiply-accumulates of one image's forward pass.
type MACs struct {
	// Linear is what the paper's counts as computation: the patch
	// embedding and the linear layers (Q, K, V, Proj, FC1, FC2 and the
	// classifier), with zero blocks inside kept heads counted as dense.
	Linear int64
	// Attention is the products Q·K^T and A·V of the kept heads, which the
	// paper's count leaves out.
	Attention int64
}

// Total is Linear + Attention.
func (m MACs) Total() int64 { return m.Linear + m.Attention }

// CountMACs counts the MACs of one forward pass of cfg pruned by p (nil = dense),
// following the token counts that token dropping leaves (TokensAfterDrop).
func CountMACs(cfg Config, p *Pruning) (MACs, error) {
	if err := cfg.Validate(); err != nil {
		return MACs{}, err
	}
	if err := p.Validate(cfg); err != nil {
		return MACs{}, err
	}
	d, hd := int64(cfg.Dim), int64(cfg.HeadDim())
	m := MACs{Linear: int64(cfg.Patches())*int64(cfg.PatchLen())*d + d*int64(cfg.NumClasses)}
	n := cfg.Tokens()
	for l := range cfg.Depth {
		heads := int64(len(keptHeads(cfg, p, l)))
		w := heads * hd
		tin := int64(n)
		m.Linear += tin * d * w * 4 // Q, K, V and Proj
		m.Attention += 2 * heads * tin * tin * hd
		if p.dropsTokens(l) {
			n = TokensAfterDrop(n, p.Keep)
		}
		m.Linear += int64(n) * d * int64(keptNeurons(cfg, p, l)) * 2
	}
	return m, nil
}

// CountParams counts the parameters a model pruned by p (nil = dense) stores:
// the kept blocks of Q, K, V and Proj (b² weights each; all of them without
// block masks), the kept heads' Q/K/V biases, the kept neurons of the MLP,
// and every embedding, LayerNorm and classifier parameter.
func CountParams(cfg Config, p *Pruning) (int64, error) {
	if err := cfg.Validate(); err != nil {
		return 0, err
	}
	if err := p.Validate(cfg); err != nil {
		return 0, err
	}
	d, hd := int64(cfg.Dim), int64(cfg.HeadDim())
	extra := int64(0)
	if cfg.DistToken {
		extra = d
	}
	total := int64(cfg.PatchLen())*d + d + d + extra + int64(cfg.Tokens())*d + 2*d + d*int64(cfg.NumClasses) + int64(cfg.NumClasses)
	for l := range cfg.Depth {
		heads := int64(len(keptHeads(cfg, p, l)))
		m := p.layerMask(l)
		for _, mask := range [][]bool{m.Q, m.K, m.V, m.Proj} {
			if mask == nil {
				total += d * heads * hd
				continue
			}
			for _, kept := range mask {
				if kept {
					total += int64(p.Block * p.Block)
				}
			}
		}
		hidden := int64(keptNeurons(cfg, p, l))
		total += 3*heads*hd + d // Q/K/V biases of kept heads, Proj bias
		total += 4 * d          // LayerNorms
		total += 2*d*hidden + hidden + d
	}
	return total, nil
}

func keptNeurons(cfg Config, p *Pruning, l int) int {
	m := p.layerMask(l)
	if m.Neurons == nil {
		return cfg.MLPHidden
	}
	n := 0
	for _, k := range m.Neurons {
		if k {
			n++
		}
	}
	return n
}

// String formats m in GMACs.
func (m MACs) String() string {
	return fmt.Sprintf("%.3f GMACs linear + %.3f GMACs attention", float64(m.Linear)/1e9, float64(m.Attention)/1e9)
}
