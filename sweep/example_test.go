package sweep_test

import (
	"context"
	"fmt"
	"log"
	"os"

	"vitflow/models"
	"vitflow/sweep"
	"vitflow/topology"
)

// Sweep the number of CHMs and the token keep rate of mnist-tiny on two
// MNIST test images, timing only.
func ExampleRun() {
	w, _, _, err := models.Load("dense")
	if err != nil {
		log.Fatal(err)
	}
	u250, err := topology.Preset("u250")
	if err != nil {
		log.Fatal(err)
	}
	var axes []sweep.Axis
	for _, s := range []string{"mpca.h=2,4", "keep=0.5,1"} {
		a, err := sweep.ParseAxis(s)
		if err != nil {
			log.Fatal(err)
		}
		axes = append(axes, a)
	}
	spec := &sweep.Spec{
		Weights: w, WeightsID: "embedded dense", Base: u250,
		Pruning: sweep.PruningSettings{Block: 16, Density: 0.5, Keep: 0.5, TDLayers: []int{0, 1, 2}},
		Axes:    axes, Images: 2, InputsID: "two blank images", TimingOnly: true,
		Image: func(int) ([]float32, error) { return make([]float32, 28*28), nil },
	}
	points, err := sweep.Plan(spec)
	if err != nil {
		log.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "sweep")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	sw, err := sweep.Run(context.Background(), spec, points, sweep.Options{Dir: dir})
	if err != nil {
		log.Fatal(err)
	}
	for _, r := range sw.Rows {
		fmt.Printf("%-18s %5.0f cycles/image, %d KiB on chip\n", r.Name(), r.CyclesPerImage, r.Resources.OnChipBytes>>10)
	}
	// Output:
	// mpca.h=2 keep=0.5   8663 cycles/image, 1883 KiB on chip
	// mpca.h=2 keep=1     9606 cycles/image, 1883 KiB on chip
	// mpca.h=4 keep=0.5   8316 cycles/image, 2907 KiB on chip
	// mpca.h=4 keep=1     9318 cycles/image, 2907 KiB on chip
}
