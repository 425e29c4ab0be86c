package benches

import (
	"testing"

	"vitflow/prune"
	"vitflow/topology"
	"vitflow/vit"
)

// prunedDeiTSmall is the model, pruning, image and machine of the DeiT-S
// benchmarks: random weights, one-shot magnitude pruning at b=16 and
// density 0.5, keep 0.7 in layers 2, 6 and 9, on u250.
func prunedDeiTSmall(b *testing.B) (*vit.Weights, *vit.Pruning, []float32, topology.Description) {
	cfg, err := vit.Preset("deit-small")
	if err != nil {
		b.Fatal(err)
	}
	w := vit.RandomWeights(cfg, 1)
	p, err := prune.Magnitude(w, 16, 0.5)
	if err != nil {
		b.Fatal(err)
	}
	p.Keep, p.TDLayers = 0.7, []int{2, 6, 9}
	img := make([]float32, cfg.InChans*cfg.ImageSize*cfg.ImageSize)
	for i := range img {
		img[i] = float32(i%97)/48 - 1
	}
	desc, err := topology.Preset("u250")
	if err != nil {
		b.Fatal(err)
	}
	return w, p, img, desc
}
