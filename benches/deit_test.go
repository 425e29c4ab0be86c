package benches

import (
	"testing"

	"vitflow/prune"
	"vitflow/topology"
	"vitflow/vit"
)

// deitSmallOnU250 is the workload of the DeiT-S benchmarks: random weights
// (seed 1), one-shot magnitude pruning at b=16 and density 0.5, keep 0.7
// in layers 2, 6 and 9, one fixed image, and the u250 description.
func deitSmallOnU250(b *testing.B) (*vit.Weights, *vit.Pruning, []float32, topology.Description) {
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
