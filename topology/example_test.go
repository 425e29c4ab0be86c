package topology_test

import (
	"context"
	"fmt"

	"vitflow/prune"
	"vitflow/topology"
	"vitflow/vit"
)

// SizeFIFOs finds how shallow the small preset's FIFOs can be for a pruned
// mnist-tiny image while the run stays within 2% of unbounded FIFOs;
// WriteText prints the table of depths and bytes, and the sized
// description is a TOML file to keep.
func ExampleSizeFIFOs() {
	cfg, err := vit.Preset("mnist-tiny")
	if err != nil {
		fmt.Println(err)
		return
	}
	w := vit.RandomWeights(cfg, 1)
	p, err := prune.Magnitude(w, 16, 0.5)
	if err != nil {
		fmt.Println(err)
		return
	}
	d, err := topology.Preset("small")
	if err != nil {
		fmt.Println(err)
		return
	}
	acc, err := topology.NewAccelerator(w, p, 0, d)
	if err != nil {
		fmt.Println(err)
		return
	}
	img := make([]float32, cfg.InChans*cfg.ImageSize*cfg.ImageSize)
	z, err := topology.SizeFIFOs(context.Background(), acc, [][]float32{img}, topology.SizeOptions{Tolerance: 0.02})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("%d FIFOs sized, within the bound: %v\n", len(z.Links), z.Cycles <= z.Bound)
	// z.WriteText(os.Stdout) prints the table, and
	// z.Description.WriteTOML(f) writes the sized accelerator to a file.

	// Output: 17 FIFOs sized, within the bound: true
}
